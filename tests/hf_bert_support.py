"""Small random BERT checkpoints written by transformers and sentence-transformers themselves,
with a WordPiece vocabulary trained by `tokenizers` on real IMDb reviews: what `nlprec bert
import` is checked against (no network: everything is built in the test)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal

import torch


def imdb_texts(corpora_dir: Path, n: int, start: int = 0) -> list[str]:
    """`n` review texts of the IMDb training file from line `start` (split on "\\n" only)."""
    texts: list[str] = []
    with gzip.open(corpora_dir / "imdb" / "imdb_train.tsv.gz", "rt", encoding="utf-8", newline="\n") as handle:
        for index, line in enumerate(handle):
            if index >= start:
                texts.append(line.rstrip("\n").split("\t", 1)[1])
            if len(texts) == n:
                break
    return texts


def train_wordpiece(texts: list[str], vocab_size: int, lowercase: bool = True, strip_accents: bool | None = None):
    """A WordPiece tokenizer trained on `texts`, specials first ([PAD] = 0)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=strip_accents)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                                              "[MASK]"], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def write_vocab(folder: Path, texts: list[str], vocab_size: int, lowercase: bool = True,
                strip_accents: bool | None = None, as_json: bool = False) -> int:
    """vocab.txt (+ tokenizer_config.json) or, with `as_json`, transformers' own save of the fast
    tokenizer (tokenizer.json); returns the vocabulary size."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    trained = train_wordpiece(texts, vocab_size, lowercase, strip_accents)
    pieces = [piece for piece, _ in sorted(trained.get_vocab().items(), key=lambda item: item[1])]
    (folder / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=lowercase,
                                  strip_accents=strip_accents)
    tokenizer.save_pretrained(str(folder))
    if not as_json:
        (folder / "tokenizer.json").unlink()
    else:
        (folder / "vocab.txt").unlink(missing_ok=True)
    return len(pieces)


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter drawn at random (LayerNorms and biases too), so a misplaced tensor shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            base = 1.0 if name.endswith("LayerNorm.weight") else 0.0
            parameter.copy_(base + 0.1 * torch.randn(parameter.shape, generator=generator))


def write_bert(folder: Path, texts: list[str], kind: Literal["pretraining", "masked", "model"] = "pretraining",
               vocab_size: int = 300, hidden: int = 32, layers: int = 2, heads: int = 4, d_ff: int = 48,
               positions: int = 64, type_vocab: int = 2, lowercase: bool = True, strip_accents: bool | None = None,
               tokenizer_json: bool = False, torch_bin: bool = False, seed: int = 0):
    """A random transformers BERT saved in `folder` (returns the model, in eval mode)."""
    from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, BertModel

    size = write_vocab(folder, texts, vocab_size, lowercase, strip_accents, tokenizer_json)
    config = BertConfig(vocab_size=size + 3, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=d_ff, max_position_embeddings=positions, type_vocab_size=type_vocab)
    torch.manual_seed(seed)
    model = {"pretraining": BertForPreTraining, "masked": BertForMaskedLM, "model": BertModel}[kind](config)
    randomise(model, seed)
    if kind != "model":
        model.tie_weights()
    model.eval()
    if torch_bin:
        config.architectures = [type(model).__name__]
        config.save_pretrained(str(folder))
        state = {name: value for name, value in model.state_dict().items() if "decoder" not in name}
        state = {name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
                 for name, v in state.items()}  # the older names
        torch.save(state, folder / "pytorch_model.bin")
    else:
        model.save_pretrained(str(folder))
    return model


def write_sentence_transformer(folder: Path, texts: list[str], pooling: str = "mean", normalize: bool = True,
                               max_seq_length: int = 48, **sizes):
    """A sentence-transformers model over a random BertModel, saved in `folder` (returns it)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    body = folder.parent / f"{folder.name}-body"
    write_bert(body, texts, "model", **sizes)
    transformer = Transformer(str(body), max_seq_length=max_seq_length)
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling)]
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu")
    model.save(str(folder))
    return model
