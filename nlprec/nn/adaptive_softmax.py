"""A tied adaptive softmax with one tail cluster, for the translation models' output layer.

Grave et al. 2017, "Efficient softmax approximation for GPUs": p(piece) = p_head(piece) for the
H pieces most frequent among the training targets, p_head(tail) * p_tail(piece) for the others.
Every position pays for H + 1 logits, only tail targets for the other V - H. Both factors use the
rows of the tied target embedding, so the layer adds one "tail" logit (d + 1 parameters), and
the NLL is exact. In fp32 on a CPU this is about 1.5x a Transformer training step over 8k pieces
(BENCHMARKS.md, "Transformer in fp32 with an adaptive softmax").

`TiedAdaptiveSoftmax` is a mixin for an nn.Module with `tgt_embed` (the tied embedding) and a
config with `adaptive_head` (H; 0 turns it off), `tgt_vocab` and `label_smoothing`. It keeps
its parameters on the model itself (`tail_logit`, the `piece_order` buffer) so that checkpoints
name them the same in every model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlprec.nn.losses import label_smoothed_cross_entropy


class TiedAdaptiveSoftmax:
    """Output-layer methods shared by the models that tie their output to `tgt_embed`."""

    tgt_embed: nn.Embedding
    tail_logit: nn.Linear
    piece_order: torch.Tensor

    def _add_adaptive_head(self, width: int) -> None:
        """Create the tail logit and the piece ranking when config.adaptive_head > 0 (call in __init__)."""
        if self.config.adaptive_head:
            self.tail_logit = nn.Linear(width, 1)  # the head's entry for "the target is in the tail"
            self.register_buffer("piece_order", torch.arange(self.config.tgt_vocab))  # (V,) most frequent first

    def order_output_pieces(self, counts: torch.Tensor) -> None:
        """Rank the target pieces by `counts` (V,), their frequency in the training targets, so
        that the adaptive softmax's head holds the most frequent; a no-op for the full softmax."""
        if self.config.adaptive_head:
            self.piece_order.copy_(torch.argsort(counts.double(), descending=True, stable=True))

    def output_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Label-smoothed cross-entropy and plain NLL of targets (N,) from output-layer inputs (N, d)."""
        smoothing = self.config.label_smoothing
        if not self.config.adaptive_head:
            logits = F.linear(hidden, self.tgt_embed.weight)  # (N, V)
            loss, nll = label_smoothed_cross_entropy(logits, targets, smoothing, ignore_index=-1)
            return {"loss": loss, "nll": nll}
        head_size = self.config.adaptive_head
        head_pieces, tail_pieces = self._head_tail_pieces()
        rank = torch.empty_like(self.piece_order)
        rank[self.piece_order] = torch.arange(len(rank), device=rank.device)  # (V,) inverse permutation
        target_rank = rank[targets]  # (N,)
        n = len(targets)
        # label smoothing spreads over the classes each position computes (the head, and the tail for tail targets)
        head_loss, head_nll = label_smoothed_cross_entropy(
            self._head_logits(hidden, head_pieces), target_rank.clamp(max=head_size), smoothing,
            ignore_index=-1, normalizer=n)  # (N, H + 1): tail targets count as the tail entry
        in_tail = target_rank >= head_size  # (N,)
        tail_logits = F.linear(hidden[in_tail], self.tgt_embed.weight.index_select(0, tail_pieces))  # (M, V - H)
        tail_loss, tail_nll = label_smoothed_cross_entropy(tail_logits, target_rank[in_tail] - head_size, smoothing,
                                                           ignore_index=-1, normalizer=n)
        return {"loss": head_loss + tail_loss, "nll": head_nll + tail_nll}

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every target piece in fp32: (N, d) -> (N, tgt_vocab)."""
        if not self.config.adaptive_head:
            return F.log_softmax(F.linear(hidden, self.tgt_embed.weight).float(), dim=-1)  # (N, V)
        head_pieces, tail_pieces = self._head_tail_pieces()
        head = F.log_softmax(self._head_logits(hidden, head_pieces).float(), dim=-1)  # (N, H + 1)
        tail_weight = self.tgt_embed.weight.index_select(0, tail_pieces)  # (V - H, d)
        tail = F.log_softmax(F.linear(hidden, tail_weight).float(), dim=-1)  # (N, V - H)
        out = head.new_empty(len(hidden), self.config.tgt_vocab)  # (N, V)
        out[:, head_pieces] = head[:, :-1]
        out[:, tail_pieces] = tail + head[:, -1:]
        return out

    def _head_tail_pieces(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.piece_order[:self.config.adaptive_head], self.piece_order[self.config.adaptive_head:]

    def _head_logits(self, hidden: torch.Tensor, head_pieces: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, H + 1): the head pieces' tied logits, then the tail's (one product)."""
        weight = torch.cat([self.tgt_embed.weight.index_select(0, head_pieces), self.tail_logit.weight])  # (H + 1, d)
        bias = F.pad(self.tail_logit.bias, (len(head_pieces), 0))  # (H + 1,): zeros, then the tail's bias
        return F.linear(hidden, weight, bias)


__all__ = ["TiedAdaptiveSoftmax"]
