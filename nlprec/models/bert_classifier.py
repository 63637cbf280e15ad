"""BERT fine-tuned for text classification.

Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", section 4 / figure 4(b): the pooled [CLS] state of the pretrained encoder
(nlprec.models.bert.BertEncoder, pooler included), dropout, one linear layer to the classes;
everything is trained, the encoder at `encoder_lr_scale` times the head's rate (the head starts
from scratch, the encoder from pretraining: a smaller rate keeps what it learned), through the
trainer's `param_groups()` hook. Weight decay is off for biases and LayerNorms, as in BERT.

Batches are those of nlprec.tasks.classify: {"tokens" (B, T) with [CLS] ... [SEP] and padding id 0,
"labels" (B,)}; the attention mask is `tokens != 0`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nlprec.errors import require
from nlprec.models.bert import BertConfig, BertEncoder, decay_groups, init_bert_weights
from nlprec.nn.dropout import Dropout
from nlprec.registry import register


@dataclass(frozen=True)
class BertClassifierConfig:
    """The encoder's sizes (as the pretrained model's config) plus the classification head."""

    n_classes: int = 2  # classes, >= 2
    vocab_size: int = 8000  # sentencepiece pieces of the pretrained tokenizer, >= 8
    hidden: int = 256  # model width, divisible by heads
    layers: int = 4  # encoder layers, >= 1
    heads: int = 4  # attention heads, >= 1
    d_ff: int = 1024  # feed-forward inner width, >= 1
    max_positions: int = 128  # longest input in pieces, >= 8
    segments: int = 2  # segment embeddings (kept to load the pretrained weights), >= 1
    dropout: float = 0.1  # inside the encoder, in [0, 1)
    attention_dropout: float = 0.0  # on attention weights, in [0, 1)
    norm_first: bool = False  # as the pretrained encoder
    norm_eps: float = 1e-5  # LayerNorm epsilon, as the pretrained encoder (imported checkpoints: 1e-12), > 0
    classifier_dropout: float = 0.1  # on the pooled [CLS] state, in [0, 1)
    encoder_lr_scale: float = 0.2  # the encoder's learning rate / the head's, in (0, 1]
    pooling: Literal["cls", "mean"] = "cls"  # pooled [CLS] state (BERT) or mean of the last layer

    def __post_init__(self) -> None:
        require([
            (self.n_classes >= 2, f"n_classes must be >= 2, got {self.n_classes}"),
            (0 <= self.classifier_dropout < 1, f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}"),
            (0 < self.encoder_lr_scale <= 1, f"encoder_lr_scale must be in (0, 1], got {self.encoder_lr_scale}"),
        ])
        self.encoder_config()  # checks the encoder's sizes

    def encoder_config(self) -> BertConfig:
        return BertConfig(vocab_size=self.vocab_size, hidden=self.hidden, layers=self.layers, heads=self.heads,
                          d_ff=self.d_ff, max_positions=self.max_positions, segments=self.segments,
                          dropout=self.dropout, attention_dropout=self.attention_dropout, norm_first=self.norm_first,
                          norm_eps=self.norm_eps, objectives="mlm")

    @classmethod
    def from_pretrained(cls, model_config: dict[str, Any], **head: Any) -> BertClassifierConfig:
        """The classifier config matching a pretrained BERT's `model_config` (its config.json)."""
        shared = {key: model_config[key] for key in ("vocab_size", "hidden", "layers", "heads", "d_ff",
                                                     "max_positions", "segments", "dropout", "attention_dropout",
                                                     "norm_first")}
        shared["norm_eps"] = model_config.get("norm_eps", 1e-5)  # folders from before the field: torch's default
        return cls(**{**shared, **head})


@register("bert-classifier", config=BertClassifierConfig, family="classification",
          description="pretrained BERT fine-tuned on the [CLS] state (Devlin et al. 2019)")
class BertClassifier(nn.Module):
    """Pooled encoder output -> dropout -> linear; `loss(batch)` is cross-entropy."""

    def __init__(self, config: BertClassifierConfig):
        super().__init__()
        self.config = config
        self.encoder = BertEncoder(config.encoder_config())
        self.dropout = Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden, config.n_classes)
        init_bert_weights(self)

    def load_pretrained(self, state: dict[str, torch.Tensor]) -> None:
        """Copy the encoder weights of a pretrained `Bert` state dict (its "encoder." entries)."""
        encoder = {key[len("encoder."):]: value for key, value in state.items() if key.startswith("encoder.")}
        self.encoder.load_state_dict(encoder)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Class logits (B, n_classes)."""
        tokens = batch["tokens"]  # (B, T)
        if self.config.pooling == "cls":  # only [CLS] is read: the last layer runs there alone
            cls_column = torch.zeros(tokens.shape[0], 1, dtype=torch.int64, device=tokens.device)  # (B, 1)
            pooled = self.encoder.pool(self.encoder(tokens, columns=cls_column))  # (B, d)
        else:
            hidden = self.encoder(tokens)  # (B, T, d)
            keep = (tokens != 0).to(hidden.dtype)[..., None]  # (B, T, 1)
            pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)  # (B, d)
        return self.classifier(self.dropout(pooled))  # (B, C)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean cross-entropy of the logits against batch["labels"]."""
        return F.cross_entropy(self(batch).float(), batch["labels"])

    @torch.no_grad()
    def predict_proba(self, batch: dict[str, Any]) -> torch.Tensor:
        """Softmax class probabilities (B, n_classes)."""
        return torch.softmax(self(batch).float(), dim=-1)

    def param_groups(self) -> list[dict[str, Any]]:
        """The encoder at `encoder_lr_scale` x the rate, the head at the rate; no decay on 1-d weights."""
        return decay_groups(self, {"encoder.": self.config.encoder_lr_scale})


__all__ = ["BertClassifier", "BertClassifierConfig"]
