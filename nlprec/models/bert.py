"""BERT: a bidirectional Transformer encoder pretrained with masked LM and next-sentence prediction.

Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding". Token + segment + learned position embeddings, summed, LayerNorm, dropout
(section 3, figure 2); a stack of the encoder layers of nlprec.nn.transformer with GELU
(post-norm as the paper, pre-norm optional); a pooler (dense + tanh on the [CLS] state).

Heads, as in the reference implementation:
- masked LM: dense, GELU, LayerNorm, then a decoder tied to the token embeddings plus a bias.
  It runs only on the masked positions (gathered from the (B, T) grid first), about 15% of the
  tokens: the vocabulary projection is the largest matmul of a dense head, so this is the main
  saving over computing it everywhere. Cross-entropy through nlprec.nn.losses' CPU kernel.
- next-sentence prediction: a linear 2-way classifier on the pooled [CLS] state.

`loss(batch)` takes the batches of nlprec.data.bert_data and returns {"loss", "mlm", "nsp",
"mlm_accuracy", "nsp_accuracy"} (loss = mlm + nsp; without nsp_labels in the batch, loss = mlm).
`BertEncoder` is the body the fine-tuning classifier (nlprec.models.bert_classifier) reuses;
its `forward_packed` is the inference pass without padding that sentence embeddings run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nlprec.errors import NlprecError, require
from nlprec.nn.dropout import Dropout
from nlprec.nn.losses import label_smoothed_cross_entropy
from nlprec.nn.transformer import EncoderLayer, final_norm
from nlprec.registry import register


@dataclass(frozen=True)
class BertConfig:
    """Sizes of BERT; the defaults suit 2 CPU cores and half an hour (BERT-mini-like)."""

    vocab_size: int = 8000  # sentencepiece pieces (reserved ones included), >= 8
    hidden: int = 256  # model width, divisible by heads
    layers: int = 4  # encoder layers, >= 1
    heads: int = 4  # attention heads, >= 1
    d_ff: int = 1024  # feed-forward inner width, >= 1
    max_positions: int = 128  # longest input in pieces ([CLS] and [SEP]s included), >= 8
    segments: int = 2  # segment (token type) embeddings, >= 1
    dropout: float = 0.1  # on the embeddings and every sublayer output, in [0, 1)
    attention_dropout: float = 0.0  # on attention weights, in [0, 1) (BERT: 0.1; > 0 costs CPU time)
    norm_first: bool = False  # False: the paper's post-norm; True: pre-norm with a final LayerNorm
    objectives: Literal["mlm+nsp", "mlm"] = "mlm+nsp"  # pretraining heads: masked LM, plus NSP or not
    norm_eps: float = 1e-5  # every LayerNorm's epsilon (transformers' BERT checkpoints: 1e-12), > 0
    pad_id: int = 0  # the padding piece: never attended, its embedding row not trained, in [0, vocab_size)

    def __post_init__(self) -> None:
        require([
            (self.vocab_size >= 8, f"vocab_size must be >= 8, got {self.vocab_size}"),
            (self.heads >= 1 and self.hidden % self.heads == 0,
             f"hidden={self.hidden} must be divisible by heads={self.heads}"),
            (min(self.layers, self.d_ff, self.segments) >= 1, "layers, d_ff and segments must be >= 1"),
            (self.max_positions >= 8, f"max_positions must be >= 8, got {self.max_positions}"),
            (0 <= self.dropout < 1 and 0 <= self.attention_dropout < 1,
             f"dropouts must be in [0, 1), got {self.dropout}, {self.attention_dropout}"),
            (self.norm_eps > 0, f"norm_eps must be > 0, got {self.norm_eps}"),
            (0 <= self.pad_id < self.vocab_size, f"pad_id must be in [0, vocab_size), got {self.pad_id}"),
        ])


def set_norm_eps(module: nn.Module, eps: float) -> None:
    """Give every LayerNorm inside `module` the epsilon `eps` (the shared layers build theirs with
    torch's 1e-5; an imported checkpoint says its own, 1e-12 for transformers' BERT)."""
    for sub in module.modules():
        if isinstance(sub, nn.LayerNorm):
            sub.eps = eps


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, 0.02) truncated at 2 std for linear and embedding weights,
    zero biases, unit LayerNorms; the padding embedding row is zero."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(sub.weight, std=std, a=-2 * std, b=2 * std)
        if isinstance(sub, nn.Linear) and sub.bias is not None:
            nn.init.zeros_(sub.bias)
        if isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)


class BertEncoder(nn.Module):
    """Embeddings, encoder layers and pooler: (input_ids, segment_ids) -> hidden states."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        d = config.hidden
        self.token_embed = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_id)
        self.segment_embed = nn.Embedding(config.segments, d)
        self.position_embed = nn.Embedding(config.max_positions, d)
        self.embed_norm = nn.LayerNorm(d)
        self.dropout = Dropout(config.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d, config.heads, config.d_ff, config.dropout, config.norm_first, "gelu",
                         config.attention_dropout) for _ in range(config.layers))
        self.final_norm = final_norm(d, config.norm_first)
        self.pooler = nn.Linear(d, d)
        set_norm_eps(self, config.norm_eps)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None,
                columns: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids, segment_ids (B, T) -> hidden states (B, T, d); padding is never attended:
        `keep` (B, T) bool, True at real tokens, or where not given the ids other than config.pad_id.

        columns (B, Q) int64: return the states at those positions only, (B, Q, d), with the last
        layer computed there alone (`EncoderLayer.forward_at`); the result equals the full states
        gathered at `columns`.
        """
        length = input_ids.shape[1]
        if length > self.config.max_positions:
            raise NlprecError(f"input of {length} pieces exceeds max_positions={self.config.max_positions}")
        x = self.token_embed(input_ids) + self.position_embed.weight[:length]  # (B, T, d)
        if segment_ids is not None:
            x = x + self.segment_embed(segment_ids)  # (B, T, d)
        else:
            x = x + self.segment_embed.weight[0]  # (B, T, d): one segment
        x = self.dropout(self.embed_norm(x))  # (B, T, d)
        if keep is None:
            keep = input_ids != self.config.pad_id  # (B, T)
        if bool(keep.all()):
            keep = None  # most pretraining batches are full: no attention mask to apply or differentiate
        last = len(self.layers) - 1 if columns is not None else len(self.layers)
        for layer in self.layers[:last]:
            x = layer(x, keep)  # (B, T, d)
        if columns is not None:
            x = self.layers[last].forward_at(x, columns, keep)  # (B, Q, d)
        return self.final_norm(x)  # (B, T, d) or (B, Q, d)

    def forward_packed(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Inference without padding: ids (N,) the rows' ids end to end, lengths (B,) -> final
        states (N, d), equal to `forward` at the real tokens (one segment, no dropout).

        A batch of mixed lengths padded to its longest spends most of its work on padding; here the
        embeddings, every linear layer and every LayerNorm run over the N real tokens only, and
        attention scatters into the padded (B, heads, T, d_head) grid and back.
        """
        length = int(lengths.max())
        if length > self.config.max_positions:
            raise NlprecError(f"input of {length} pieces exceeds max_positions={self.config.max_positions}")
        keep = torch.arange(length, device=ids.device) < lengths[:, None]  # (B, T)
        index = keep.flatten().nonzero().squeeze(1)  # (N,) flat slot of each token in B x T
        x = self.token_embed(ids) + self.position_embed(index % length) + self.segment_embed.weight[0]  # (N, d)
        x = self.embed_norm(x)  # (N, d)
        for layer in self.layers:
            x = layer.forward_packed(x, keep, index)  # (N, d)
        return self.final_norm(x)  # (N, d)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """The pooled [CLS] state: tanh(W h_[CLS] + b), (B, T, d) -> (B, d)."""
        return torch.tanh(self.pooler(hidden[:, 0]))  # (B, d)


@register("bert", config=BertConfig, family="sequence",
          description="BERT encoder pretrained with masked LM and next-sentence prediction (Devlin et al. 2019)")
class Bert(nn.Module):
    """The encoder with its pretraining heads; `loss(batch)` takes nlprec.data.bert_data batches."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        d = config.hidden
        self.encoder = BertEncoder(config)
        self.mlm_dense = nn.Linear(d, d)
        self.mlm_norm = nn.LayerNorm(d)
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.nsp = nn.Linear(d, 2) if config.objectives == "mlm+nsp" else None
        set_norm_eps(self, config.norm_eps)
        init_bert_weights(self)
        with torch.no_grad():
            self.encoder.token_embed.weight[config.pad_id].zero_()

    def mlm_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Masked-LM scores of gathered states (M, d) -> (M, vocab), decoder tied to the token embeddings."""
        h = self.mlm_norm(F.gelu(self.mlm_dense(states)))  # (M, d)
        return F.linear(h, self.encoder.token_embed.weight, self.mlm_bias)  # (M, V)

    def nsp_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-sentence scores (B, 2) from the hidden states (B, T, d); class 0: B follows A."""
        if self.nsp is None:
            raise NlprecError("this BERT was pretrained without next-sentence prediction (objectives='mlm')")
        return self.nsp(self.encoder.pool(hidden))  # (B, 2)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, T, d)."""
        return self.encoder(input_ids, segment_ids)

    def loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Mean masked-LM cross-entropy (plus NSP cross-entropy), and both accuracies.

        The loss reads the final states at the masked positions and at [CLS] only, so the last
        layer runs at those positions alone (`query_columns`): the same loss and gradients for
        about a sixth less work per step (BENCHMARKS.md, BERT).
        """
        input_ids = batch["input_ids"]  # (B, T)
        columns, slots = query_columns(batch["mlm_positions"], *input_ids.shape)  # (B, Q), (M,)
        hidden = self.encoder(input_ids, batch["segment_ids"], columns)  # (B, Q, d); column 0 is [CLS]
        states = hidden.reshape(-1, hidden.shape[-1])[slots]  # (M, d): masked positions only
        logits = self.mlm_logits(states)  # (M, V)
        labels = batch["mlm_labels"]  # (M,)
        mlm, _ = label_smoothed_cross_entropy(logits, labels, 0.0, ignore_index=-1)
        with torch.no_grad():
            mlm_accuracy = (logits.argmax(-1) == labels).float().mean()
        parts = {"loss": mlm, "mlm": mlm.detach(), "mlm_accuracy": mlm_accuracy}
        if self.nsp is not None and "nsp_labels" in batch:
            nsp_logits = self.nsp_logits(hidden)  # (B, 2), from hidden[:, 0]
            nsp = F.cross_entropy(nsp_logits.float(), batch["nsp_labels"])
            with torch.no_grad():
                parts["nsp_accuracy"] = (nsp_logits.argmax(-1) == batch["nsp_labels"]).float().mean()
            parts.update(loss=mlm + nsp, nsp=nsp.detach())
        return parts

    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: weight decay on matrices, none on biases, LayerNorms and embeddings' norms
        (as BERT's optimizer excludes them)."""
        return decay_groups(self)


def query_columns(positions: torch.Tensor, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The columns each row's loss reads, and where each masked position lands among them.

    positions (M,) int64 row-major flat indices into a (batch, length) grid (sorted, none in
    column 0). Returns columns (batch, Q) int64, Q = 1 + the most masks in a row: column 0
    ([CLS]) first, then the row's masked columns in order, padded with 0 (repeats of [CLS],
    computed and ignored); and slots (M,) int64 flat indices into (batch, Q) of the positions.
    """
    rows, cols = positions // length, positions % length  # (M,), (M,)
    counts = torch.bincount(rows, minlength=batch)  # (batch,)
    width = 1 + int(counts.max()) if len(positions) else 1
    starts = torch.cumsum(counts, 0) - counts  # (batch,) first masked position of each row
    rank = torch.arange(len(positions), device=positions.device) - starts[rows]  # (M,) index within its row
    columns = torch.zeros(batch, width, dtype=torch.int64, device=positions.device)  # (batch, Q)
    columns[rows, rank + 1] = cols
    return columns, rows * width + rank + 1


def decay_groups(model: nn.Module, lr_scales: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Parameter groups without weight decay for 1-d parameters (biases, LayerNorm); `lr_scales`
    maps a name prefix to a learning-rate multiplier (the trainer reads "lr_scale")."""
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        scale = next((s for prefix, s in (lr_scales or {}).items() if name.startswith(prefix)), 1.0)
        groups.setdefault((scale, parameter.dim() > 1), []).append(parameter)
    return [{"params": params, "lr_scale": scale, **({} if decay else {"weight_decay": 0.0})}
            for (scale, decay), params in groups.items()]


__all__ = ["BertConfig", "BertEncoder", "Bert", "init_bert_weights", "set_norm_eps", "decay_groups", "query_columns"]
