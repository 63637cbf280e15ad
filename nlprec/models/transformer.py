"""The Transformer encoder-decoder for translation.

Vaswani et al. 2017, "Attention Is All You Need": token embeddings scaled by sqrt(d_model) plus
fixed sinusoidal positions, a stack of self-attention + feed-forward encoder layers, a stack of
causal self-attention + cross-attention + feed-forward decoder layers (nlprec.nn.transformer),
and an output projection tied to the target embedding (section 3.4; with a joint vocabulary the
source embedding is the same matrix too). Pre-norm or post-norm is `norm_first`. Trained with
label-smoothed cross-entropy (section 5.4) computed on the non-padding positions only.

The default is a two-layer encoder and a one-layer decoder: the decoder runs once per output
piece when translating and its depth buys little (Kasai et al. 2021, "Deep Encoder, Shallow
Decoder"), so a shallower stack trains more tokens per second and scores as well in the same
minutes. The feed-forward is 2 x d_model wide rather than the paper's 4x: with an 8k vocabulary
the output layer and attention already carry much of a step's cost, and a narrower FFN buys
more updates in the same minutes. Measured: BENCHMARKS.md, section "Translation" (the layer and
feed-forward rows of its before/after table, and 3+1 against 3+3 layers).

`adaptive_head` > 0 replaces the full softmax by an adaptive one (Grave et al. 2017) with one
tail cluster (nlprec.nn.adaptive_softmax): the head holds that many of the most frequent training
targets (`order_output_pieces`) and every position computes only them, plus the tail for tail targets.
Translation in fp32 picks 2,000 of 8,000 (nlprec.tasks.translate.precision_defaults), because
there the tied output layer is the largest share of a step's FLOPs. Measured: BENCHMARKS.md,
sections "Transformer in fp32 (AVX2): where a training step goes" and "Transformer in fp32 with
an adaptive softmax".

Decoding interface (nlprec.decoding): `encode(src)` returns a state dict whose tensors are
batch-first; `decode_step(tokens, state, step)` returns log-probabilities of the next token
and the state with each decoder layer's self-attention key/value cache extended by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from nlprec.data.tokenize import PAD_ID
from nlprec.errors import NlprecError, require
from nlprec.nn.dropout import Dropout
from nlprec.nn.adaptive_softmax import TiedAdaptiveSoftmax
from nlprec.nn.transformer import DecoderLayer, EncoderLayer, final_norm, sinusoidal_positions
from nlprec.registry import register


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and regularisation of the Transformer; defaults suit a 2-core CPU and 30 minutes."""

    src_vocab: int = 8000  # source pieces, >= 4 (pad, unk, bos, eos)
    tgt_vocab: int = 8000  # target pieces, >= 4
    d_model: int = 256  # model width, divisible by heads
    heads: int = 4  # attention heads, >= 1
    encoder_layers: int = 2  # encoder depth, >= 1 (see the module docstring)
    decoder_layers: int = 1  # decoder depth, >= 1 (one layer: see the module docstring)
    d_ff: int = 512  # feed-forward inner width, >= 1 (2 x d_model: see the module docstring)
    dropout: float = 0.1  # on embeddings and sublayer outputs, in [0, 1)
    attention_dropout: float = 0.0  # on attention weights, in [0, 1) (> 0 disables fused CPU attention)
    activation_dropout: float = 0.0  # inside the feed-forward, after the activation, in [0, 1)
    activation: Literal["relu", "gelu"] = "relu"  # feed-forward non-linearity
    norm_first: bool = True  # True: pre-norm (stable with short warmup); False: the paper's post-norm
    share_embeddings: bool = True  # one matrix for source, target and output (needs src_vocab == tgt_vocab)
    label_smoothing: float = 0.1  # epsilon of the smoothed targets, in [0, 1)
    max_positions: int = 512  # longest source or target in pieces, >= 1
    adaptive_head: int = 0  # 0: full softmax; k: adaptive softmax, the k most frequent target pieces in its head

    def __post_init__(self) -> None:
        checks = [
            (self.src_vocab >= 4 and self.tgt_vocab >= 4, "vocabularies need at least 4 pieces"),
            (self.heads >= 1 and self.d_model % self.heads == 0,
             f"d_model={self.d_model} must be divisible by heads={self.heads}"),
            (min(self.encoder_layers, self.decoder_layers, self.d_ff, self.max_positions) >= 1,
             "encoder_layers, decoder_layers, d_ff and max_positions must be >= 1"),
            (all(0 <= p < 1 for p in (self.dropout, self.attention_dropout, self.activation_dropout)),
             f"dropouts must be in [0, 1), got {self.dropout}, {self.attention_dropout}, {self.activation_dropout}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (0 <= self.adaptive_head < self.tgt_vocab,
             f"adaptive_head must be in [0, tgt_vocab={self.tgt_vocab}), got {self.adaptive_head}"),
            (not self.share_embeddings or self.src_vocab == self.tgt_vocab,
             "share_embeddings needs src_vocab == tgt_vocab (a joint sentencepiece model)"),
        ]
        require(checks)


@register("transformer", config=TransformerConfig, family="sequence",
          description="Transformer encoder-decoder for translation (Vaswani et al. 2017)")
class Transformer(TiedAdaptiveSoftmax, nn.Module):
    """Encoder-decoder Transformer; `loss(batch)` takes the batches of nlprec.data.pairs."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.tgt_embed = nn.Embedding(config.tgt_vocab, d, padding_idx=PAD_ID)
        self.src_embed = self.tgt_embed if config.share_embeddings else nn.Embedding(config.src_vocab, d,
                                                                                     padding_idx=PAD_ID)
        self.register_buffer("positions", sinusoidal_positions(config.max_positions, d), persistent=False)
        self.dropout = Dropout(config.dropout)
        layer_args = (d, config.heads, config.d_ff, config.dropout, config.norm_first, config.activation,
                      config.attention_dropout, config.activation_dropout)
        self.encoder = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(config.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(*layer_args) for _ in range(config.decoder_layers))
        self.encoder_norm = final_norm(d, config.norm_first)
        self.decoder_norm = final_norm(d, config.norm_first)
        self._add_adaptive_head(d)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform linear layers; embeddings N(0, d^-1/2), as fairseq's Transformer."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for embedding in {self.src_embed, self.tgt_embed}:
            nn.init.normal_(embedding.weight, std=self.config.d_model ** -0.5)
            with torch.no_grad():
                embedding.weight[PAD_ID].zero_()

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        length = ids.shape[1]
        if offset + length > self.config.max_positions:
            raise NlprecError(f"sequence of {offset + length} pieces exceeds max_positions={self.config.max_positions}")
        scaled = embedding(ids) * math.sqrt(self.config.d_model)  # (B, T, d)
        return self.dropout(scaled + self.positions[offset:offset + length])  # (B, T, d)

    def encode(self, src: torch.Tensor) -> dict[str, Any]:
        """src (B, S) -> decoding state: keep mask, cross-attention keys/values and empty caches."""
        keep = src != PAD_ID  # (B, S)
        x = self._embed(self.src_embed, src)  # (B, S, d)
        for layer in self.encoder:
            x = layer(x, keep)
        memory = self.encoder_norm(x)  # (B, S, d)
        empty = memory.new_zeros(src.shape[0], self.config.heads, 0, self.config.d_model // self.config.heads)
        return {"keep": keep,
                "memory_kv": [layer.cross_attention.keys_values(memory) for layer in self.decoder],
                "cache": [(empty, empty) for _ in self.decoder]}

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoder states (B, T, d) before the output projection."""
        state = self.encode(src)
        x = self._embed(self.tgt_embed, tgt_in)  # (B, T, d)
        for layer, memory_kv in zip(self.decoder, state["memory_kv"]):
            x = layer(x, memory_kv, state["keep"])
        return self.decoder_norm(x)  # (B, T, d)

    def loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Label-smoothed cross-entropy of `tgt_out` given `src` and `tgt_in`, plus the plain NLL."""
        hidden = self(batch["src"], batch["tgt_in"])  # (B, T, d)
        counted = batch["tgt_out"] != PAD_ID  # (B, T): no output layer for padding positions
        return self.output_loss(hidden[counted], batch["tgt_out"][counted])

    def decode_step(self, tokens: torch.Tensor, state: dict[str, Any], step: int
                    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """tokens (N,) at position `step` -> log-probabilities (N, tgt_vocab) and the extended state.

        When the state holds "return_attention": True (greedy(..., return_attention=True) sets it),
        the new state also holds "attention": every decoder layer's cross-attention weights of this
        position, (N, layers, heads, S); otherwise none are computed.
        """
        x = self._embed(self.tgt_embed, tokens[:, None], offset=step)  # (N, 1, d)
        caches, weights = [], []
        record = bool(state.get("return_attention", False))
        for layer, cache, memory_kv in zip(self.decoder, state["cache"], state["memory_kv"]):
            out = layer.step(x, cache, memory_kv, state["keep"], return_attention=record)
            x, kv = out[0], out[1]  # (N, 1, d), 2 x (N, heads, step + 1, d_head)
            caches.append(kv)
            if record:
                weights.append(out[2][:, :, 0])  # (N, heads, S)
        log_probs = self.log_probs(self.decoder_norm(x[:, 0]))  # (N, V)
        new_state = {**state, "cache": caches}
        if record:
            new_state["attention"] = torch.stack(weights, dim=1)  # (N, layers, heads, S)
        return log_probs, new_state


__all__ = ["Transformer", "TransformerConfig"]
