"""BERT checkpoints in the transformers format, in and out: `nlprec bert import` and `export`.

Import reads a folder as transformers (`save_pretrained`) or sentence-transformers (`save`)
writes it: config.json (model_type "bert"), the weights as model.safetensors (also sharded,
with model.safetensors.index.json; read by the `safetensors` library) or pytorch_model.bin
(read by nlprec.io.read_torch_file: weights_only unpickling, so no code from the file runs),
and the vocabulary as tokenizer.json or vocab.txt + tokenizer_config.json
(nlprec.data.wordpiece). BertModel, BertForMaskedLM and BertForPreTraining layouts are
recognised by their names ("bert." prefix or none; the older "LayerNorm.gamma/beta"); every
size comes from config.json and every tensor's shape is checked against it. The masked-LM and
next-sentence heads are imported when present; a missing MLM head or pooler is initialised at
random and said so in the report and config.json ("heads"). A sentence-transformers folder
keeps its pooling (1_Pooling: cls, mean or max) and its Normalize module.

The model is nlprec's Bert (post-norm, GELU, learned absolute positions, token types), which
computes what transformers' BertModel computes: the checks in tests/tasks/test_bert_checkpoints.py
hold hidden states and MLM logits to 1e-4 in fp32.

Export writes the reverse: config.json for BertForPreTraining (with an NSP head) or
BertForMaskedLM, model.safetensors under transformers' names with the decoder tied to the word
embeddings and so stored once (transformers ties it back on load), tokenizer.json +
tokenizer_config.json. nlprec's own sentencepiece model becomes a tokenizers Unigram model with
sentencepiece's own normalisation table (its precompiled charsmap), whitespace handling and
Metaspace pre-tokenizer, so AutoTokenizer gives the pieces sentencepiece gives.

Both write their folder under a temporary name and rename it into place: a bad input leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from nlprec.data.bert_data import CLS_PIECE, MASK_PIECE, SEP_PIECE, TOKENIZER_FILE
from nlprec.data.tokenize import SentencePieceTokenizer
from nlprec.data.wordpiece import WordPieceTokenizer
from nlprec.errors import NlprecError
from nlprec.io import read_json, read_torch_file, sha256_file, write_json, write_model_folder
from nlprec.models.bert import Bert, BertConfig
from nlprec.tasks.bert import FORMAT, WORDPIECE_FILE, PretrainedBert, read_config

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


# ----- names: nlprec's Bert <-> transformers' BertForPreTraining ------------------------------------
def layer_names(index: int) -> dict[str, str]:
    """nlprec name -> transformers name for encoder layer `index` (key/value are split there)."""
    ours, theirs = f"encoder.layers.{index}.", f"encoder.layer.{index}."
    pairs = {"attention.query": "attention.self.query", "attention.out": "attention.output.dense",
             "attention_block.norm": "attention.output.LayerNorm", "feed_forward.inner": "intermediate.dense",
             "feed_forward.outer": "output.dense", "feed_forward_block.norm": "output.LayerNorm"}
    return {f"{ours}{a}.{p}": f"{theirs}{b}.{p}" for a, b in pairs.items() for p in ("weight", "bias")}


def name_map(config: BertConfig) -> dict[str, str]:
    """nlprec parameter name -> transformers name (without the "bert." prefix of the body);
    "cls."/"mlm" entries are the heads. key_value is mapped separately (two tensors)."""
    names = {"encoder.token_embed.weight": "embeddings.word_embeddings.weight",
             "encoder.segment_embed.weight": "embeddings.token_type_embeddings.weight",
             "encoder.position_embed.weight": "embeddings.position_embeddings.weight",
             "encoder.embed_norm.weight": "embeddings.LayerNorm.weight",
             "encoder.embed_norm.bias": "embeddings.LayerNorm.bias",
             "encoder.pooler.weight": "pooler.dense.weight", "encoder.pooler.bias": "pooler.dense.bias",
             "mlm_dense.weight": "cls.predictions.transform.dense.weight",
             "mlm_dense.bias": "cls.predictions.transform.dense.bias",
             "mlm_norm.weight": "cls.predictions.transform.LayerNorm.weight",
             "mlm_norm.bias": "cls.predictions.transform.LayerNorm.bias",
             "mlm_bias": "cls.predictions.bias",
             "nsp.weight": "cls.seq_relationship.weight", "nsp.bias": "cls.seq_relationship.bias"}
    for index in range(config.layers):
        names.update(layer_names(index))
    return names


def config_from_transformers(hf: dict[str, Any], path: Path, next_sentence: bool) -> BertConfig:
    """nlprec's BertConfig from a transformers BERT config.json; anything BERT-unlike is refused."""
    architectures = hf.get("architectures") or []
    older_bert = "model_type" not in hf and architectures and all(str(a).startswith("Bert") for a in architectures)
    if hf.get("model_type") != "bert" and not older_bert:  # configs before model_type named only architectures
        raise NlprecError(f"{path}: not a BERT config (model_type {hf.get('model_type')!r}, expected 'bert')")
    for key, wanted in (("hidden_act", "gelu"), ("position_embedding_type", "absolute")):
        if hf.get(key, wanted) != wanted:
            raise NlprecError(f"{path}: {key} {hf[key]!r} is not supported; nlprec's BERT has {wanted!r}")
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise NlprecError(f"{path}: a decoder BERT (is_decoder/add_cross_attention) is not an encoder nlprec can load")
    sizes = {"vocab_size": "vocab_size", "hidden": "hidden_size", "layers": "num_hidden_layers",
             "heads": "num_attention_heads", "d_ff": "intermediate_size", "max_positions": "max_position_embeddings"}
    values: dict[str, Any] = {}
    for ours, theirs in sizes.items():
        value = hf.get(theirs)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise NlprecError(f"{path}: {theirs} must be a positive integer, got {value!r}")
        values[ours] = value
    try:
        return BertConfig(**values, segments=int(hf.get("type_vocab_size", 2)),
                          dropout=float(hf.get("hidden_dropout_prob", 0.1)),
                          attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
                          norm_eps=float(hf.get("layer_norm_eps", 1e-12)), pad_id=int(hf.get("pad_token_id") or 0),
                          objectives="mlm+nsp" if next_sentence else "mlm")
    except (NlprecError, TypeError, ValueError) as err:
        raise NlprecError(f"{path}: {err}") from None


def config_to_transformers(config: BertConfig) -> dict[str, Any]:
    """transformers' config.json for nlprec's BertConfig."""
    return {"architectures": ["BertForPreTraining" if config.objectives == "mlm+nsp" else "BertForMaskedLM"],
            "model_type": "bert", "vocab_size": config.vocab_size, "hidden_size": config.hidden,
            "num_hidden_layers": config.layers, "num_attention_heads": config.heads,
            "intermediate_size": config.d_ff, "hidden_act": "gelu", "max_position_embeddings": config.max_positions,
            "type_vocab_size": config.segments, "hidden_dropout_prob": config.dropout,
            "attention_probs_dropout_prob": config.attention_dropout, "layer_norm_eps": config.norm_eps,
            "pad_token_id": config.pad_id, "position_embedding_type": "absolute", "initializer_range": 0.02,
            "tie_word_embeddings": True, "is_decoder": False, "add_cross_attention": False,
            "classifier_dropout": None, "dtype": "float32"}


# ----- reading a transformers folder ---------------------------------------------------------------
def read_weights_file(folder: Path) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """The tensors of a checkpoint folder by name (safetensors first), and the files read."""
    if (folder / "model.safetensors").is_file():
        files = [folder / "model.safetensors"]
    elif (folder / "model.safetensors.index.json").is_file():
        index = read_json(folder / "model.safetensors.index.json", dict)
        shards = sorted(set((index.get("weight_map") or {}).values()))
        if not shards or any(not isinstance(s, str) or "/" in s or s.startswith(".") for s in shards):
            raise NlprecError(f"{folder / 'model.safetensors.index.json'}: weight_map must name shard files in the "
                              "folder")
        files = [folder / shard for shard in shards]
    elif (folder / "pytorch_model.bin").is_file():
        path = folder / "pytorch_model.bin"
        state = read_torch_file(path, "transformers weights")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise NlprecError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
        return dict(state), [path]
    else:
        raise NlprecError(f"{folder}: no weights (expected one of {', '.join(WEIGHT_FILES)})")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(read_safetensors(path))
    return state, files


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of one .safetensors file (a format holding only tensors: nothing to execute)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise NlprecError("reading .safetensors needs the `safetensors` package: pip install 'nlprec[bert]'") from None
    if not path.is_file():
        raise NlprecError(f"{path}: no such weights file")
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises SafetensorError and others for damaged files
        raise NlprecError(f"{path}: not a readable safetensors file ({' '.join(str(err).split())[:160]})") from None


def canonical_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Names as transformers' BertForPreTraining has them without the "bert." prefix of the body:
    the older "LayerNorm.gamma/beta" spellings become "weight/bias"."""
    renamed = {}
    for name, value in state.items():
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))
        renamed[name[len("bert."):] if name.startswith("bert.") else name] = value
    return renamed


def convert_state(state: dict[str, torch.Tensor], config: BertConfig, weights: str
                  ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """nlprec's state dict from transformers tensors, with the heads' origin ("imported" or
    "random"); the random ones are filled by the caller from a fresh model."""
    if "embeddings.word_embeddings.weight" not in state:
        raise NlprecError(f"{weights}: not a BERT checkpoint (no embeddings.word_embeddings.weight among "
                          f"{len(state)} tensors)")
    model = Bert(config)
    expected = model.state_dict()
    names = name_map(config)
    ours: dict[str, torch.Tensor] = {}
    for mine, theirs in names.items():
        if theirs in state:
            ours[mine] = state[theirs]
    for index in range(config.layers):
        key, value = (f"encoder.layer.{index}.attention.self.{part}" for part in ("key", "value"))
        for param in ("weight", "bias"):
            if f"{key}.{param}" in state and f"{value}.{param}" in state:
                ours[f"encoder.layers.{index}.attention.key_value.{param}"] = torch.cat(
                    [state[f"{key}.{param}"], state[f"{value}.{param}"]])
    decoder = state.get("cls.predictions.decoder.weight")
    if decoder is not None and not torch.equal(decoder, state["embeddings.word_embeddings.weight"]):
        raise NlprecError(f"{weights}: cls.predictions.decoder.weight differs from the word embeddings; nlprec's "
                          "BERT ties them (an untied masked-LM decoder is not supported)")
    heads = {"mlm": "imported" if "mlm_dense.weight" in ours else "random",
             "nsp": "imported" if "nsp.weight" in ours else "none",
             "pooler": "imported" if "encoder.pooler.weight" in ours else "random"}
    for name, value in expected.items():
        if name not in ours:
            if name.startswith("encoder.") and not name.startswith("encoder.pooler."):
                missing = names.get(name, name)
                raise NlprecError(f"{weights}: {missing} is missing; config.json says {config.layers} layers")
            ours[name] = value  # a head the checkpoint lacks: the fresh model's random initialisation
        elif tuple(ours[name].shape) != tuple(value.shape):
            raise NlprecError(f"{weights}: {names.get(name, name)} has shape {tuple(ours[name].shape)}, config.json "
                              f"implies {tuple(value.shape)}")
        ours[name] = ours[name].to(torch.float32).contiguous()
        if not bool(torch.isfinite(ours[name]).all()):
            raise NlprecError(f"{weights}: {names.get(name, name)} holds NaN or infinite values")
    return ours, heads


def sentence_transformers_layout(folder: Path) -> dict[str, Any] | None:
    """{"body": folder of the Transformer module, "pooling", "normalize", "max_tokens"} of a
    sentence-transformers folder (modules.json), or None for a plain transformers folder."""
    path = folder / "modules.json"
    if not path.is_file():
        return None
    modules = read_json(path, list)
    kinds = {}
    for module in modules:
        if not isinstance(module, dict) or not isinstance(module.get("type"), str) or not isinstance(
                module.get("path", ""), str):
            raise NlprecError(f"{path}: each module needs a type and a path")
        kind = module["type"].rsplit(".", 1)[-1]
        if kind not in ("Transformer", "Pooling", "Normalize"):
            raise NlprecError(f"{path}: module {module['type']!r} is not supported (nlprec keeps Transformer, "
                              "Pooling and Normalize)")
        kinds[kind] = module.get("path", "")
    if "Transformer" not in kinds or "Pooling" not in kinds:
        raise NlprecError(f"{path}: a sentence-transformers BERT needs a Transformer and a Pooling module")
    body = (folder / kinds["Transformer"]).resolve()
    if folder.resolve() not in (body, *body.parents):
        raise NlprecError(f"{path}: the Transformer path leaves the folder")
    pooling = _pooling_mode(folder / kinds["Pooling"] / "config.json")
    settings_path = body / "sentence_bert_config.json"
    settings = read_json(settings_path, dict) if settings_path.is_file() else {}
    if settings.get("do_lower_case"):
        raise NlprecError(f"{settings_path}: do_lower_case=true (lower-casing outside the tokenizer) is not supported")
    max_tokens = settings.get("max_seq_length")
    if max_tokens is None:
        tokenizer_config = body / "tokenizer_config.json"
        max_tokens = read_json(tokenizer_config, dict).get("model_max_length") if tokenizer_config.is_file() else None
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 3):
        max_tokens = None
    return {"body": body, "pooling": pooling, "normalize": "Normalize" in kinds, "max_tokens": max_tokens}


def _pooling_mode(path: Path) -> str:
    """cls, mean or max from a Pooling config.json (the `pooling_mode` key or the older booleans)."""
    settings = read_json(path, dict)
    mode = settings.get("pooling_mode")
    if mode is None:
        legacy = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
                  "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                  "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
        modes = [name for key, name in legacy.items() if settings.get(key)]
        mode = modes if modes else "mean"
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode not in ("cls", "mean", "max"):
        raise NlprecError(f"{path}: pooling {mode!r} is not supported; expected one of cls, mean, max")
    if settings.get("include_prompt") is False:
        raise NlprecError(f"{path}: include_prompt=false is not supported")
    return mode


# ----- import --------------------------------------------------------------------------------------
def import_checkpoint(source: str | Path, out: str | Path, log: Callable[[str], Any] = print,
                      seed: int = 0) -> PretrainedBert:
    """Convert a transformers / sentence-transformers BERT folder into an nlprec BERT folder `out`
    (config.json, model.pt, tokenizer.json). Every check runs before anything is written."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise NlprecError(f"{source}: no such checkpoint folder")
    _check_out(out)
    layout = sentence_transformers_layout(source)
    body = layout["body"] if layout else source
    hf = read_json(body / "config.json", dict)
    state, files = read_weights_file(body)
    state = canonical_names(state)
    weights = ", ".join(str(f) for f in files)
    config = config_from_transformers(hf, body / "config.json", "cls.seq_relationship.weight" in state)
    tokenizer = WordPieceTokenizer.from_checkpoint(body)
    if tokenizer.vocab_size > config.vocab_size:
        raise NlprecError(f"{body}: the vocabulary has {tokenizer.vocab_size:,} pieces, more than config.json's "
                          f"vocab_size {config.vocab_size:,}")
    torch.manual_seed(seed)
    converted, heads = convert_state(state, config, weights)
    model = Bert(config)
    model.load_state_dict(converted)
    embedding = {"pooling": layout["pooling"], "normalize": layout["normalize"],
                 "max_tokens": min(layout["max_tokens"] or config.max_positions, config.max_positions)} if layout else {
                 "pooling": "mean", "normalize": False, "max_tokens": config.max_positions}
    provenance = {"source": str(source), "architectures": hf.get("architectures"), "layout":
                  "sentence-transformers" if layout else "transformers",
                  "files_sha256": {f.name: sha256_file(f) for f in files}, "heads": heads}
    folder_config = {"format": FORMAT, "model_config": dataclasses.asdict(config), "tokenizer": WORDPIECE_FILE,
                     "embedding": embedding, "imported": provenance, "seed": seed,
                     "data_sha256": provenance["files_sha256"][files[0].name]}
    with _staged(out) as staging:
        tokenizer.save(staging / WORDPIECE_FILE)
        write_model_folder(staging, folder_config, model)
    random = [name for name, origin in heads.items() if origin == "random"]
    log(f"imported {source} ({provenance['layout']}, {', '.join(hf.get('architectures') or ['BertModel'])}): "
        f"{config.layers} layers x {config.hidden}, vocabulary {tokenizer.vocab_size:,}; embeddings: "
        f"{embedding['pooling']} pooling{', normalised' if embedding['normalize'] else ''}, at most "
        f"{embedding['max_tokens']} tokens" + (f"; no {' or '.join(random)} head in the checkpoint: initialised at "
                                               "random" if random else "") + f" -> {out}")
    return PretrainedBert.load(out)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NlprecError(f"{out} already exists and is not an empty folder; choose another --out")


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out`, renamed to `out` when the block succeeds, removed if not."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield staging
        if out.is_dir():
            out.rmdir()  # empty (checked before): replaced by the finished folder
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ----- export --------------------------------------------------------------------------------------
def export_folder(folder: str | Path, out: str | Path, log: Callable[[str], Any] = print) -> Path:
    """Write an nlprec BERT folder (pretrained or imported) as a transformers folder `out` that
    AutoModelForMaskedLM and AutoTokenizer load."""
    folder, out = Path(folder), Path(out)
    read_config(folder)
    _check_out(out)
    bert = PretrainedBert.load(folder)
    config = bert.model.config
    if config.norm_first:
        raise NlprecError(f"{folder}: a pre-norm BERT (norm_first) has no transformers BertModel equivalent")
    names = name_map(config)
    state = bert.model.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for mine, value in state.items():
        if ".attention.key_value." in mine:
            index, param = mine.split(".")[2], mine.rsplit(".", 1)[1]
            key, value_part = value.chunk(2, dim=0)
            tensors[f"bert.encoder.layer.{index}.attention.self.key.{param}"] = key
            tensors[f"bert.encoder.layer.{index}.attention.self.value.{param}"] = value_part
            continue
        theirs = names[mine]
        tensors[theirs if theirs.startswith("cls.") else f"bert.{theirs}"] = value
    tensors = {name: value.detach().to(torch.float32).contiguous().clone() for name, value in tensors.items()}
    with _staged(out) as staging:
        from safetensors.torch import save_file

        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        write_json(staging / "config.json", config_to_transformers(config))
        _export_tokenizer(bert, folder, staging)
    log(f"exported {folder} -> {out} ({config_to_transformers(config)['architectures'][0]}, "
        f"{len(tensors)} tensors, the decoder tied to the word embeddings)")
    return out


def _export_tokenizer(bert: PretrainedBert, folder: Path, out: Path) -> None:
    """tokenizer.json (+ tokenizer_config.json naming the special pieces) for AutoTokenizer."""
    if isinstance(bert.tokenizer, SentencePieceTokenizer):
        tokenizer = unigram_from_sentencepiece(folder / TOKENIZER_FILE)
        specials = {"pad": "<pad>", "unk": "<unk>", "cls": CLS_PIECE, "sep": SEP_PIECE, "mask": MASK_PIECE}
        wrapped = WordPieceTokenizer(tokenizer, specials, str(folder / TOKENIZER_FILE))
    else:
        wrapped = bert.tokenizer
    wrapped.save(out / "tokenizer.json")
    write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": bert.max_tokens,
        **{f"{role}_token": piece for role, piece in wrapped.specials.items()}})


def unigram_from_sentencepiece(path: Path) -> Any:
    """A tokenizers Unigram tokenizer equal to a sentencepiece unigram model: its pieces and
    scores, its normalisation table (precompiled charsmap), extra whitespace removed, "▁"
    prepended to each stretch of text and marking spaces (Metaspace)."""
    import sentencepiece as spm
    import tokenizers
    from tokenizers import decoders, normalizers, pre_tokenizers

    data = path.read_bytes()
    processor = spm.SentencePieceProcessor(model_proto=data)
    if processor.get_piece_size() == 0:
        raise NlprecError(f"{path}: an empty sentencepiece model")
    spec = _proto_field(data, 2, 3)  # TrainerSpec.model_type: 1 unigram (default), 2 bpe
    if spec not in (None, 1):
        raise NlprecError(f"{path}: only sentencepiece unigram models export (this one is type {spec})")
    vocab = [(processor.id_to_piece(i), float(processor.get_score(i))) for i in range(processor.get_piece_size())]
    tokenizer = tokenizers.Tokenizer(tokenizers.models.Unigram(vocab, unk_id=processor.unk_id(), byte_fallback=False))
    charsmap = _proto_field(data, 3, 2)  # NormalizerSpec.precompiled_charsmap
    steps = [normalizers.Precompiled(charsmap)] if charsmap else []
    tokenizer.normalizer = normalizers.Sequence([*steps, normalizers.Replace(tokenizers.Regex(" {2,}"), " "),
                                                 normalizers.Strip()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    special = [processor.id_to_piece(i) for i in range(processor.get_piece_size())
               if processor.is_control(i) or processor.is_unknown(i)]
    tokenizer.add_special_tokens([*special, CLS_PIECE, SEP_PIECE, MASK_PIECE])
    return tokenizer


def _proto_field(data: bytes, message: int, field: int) -> Any:
    """Field `field` of the sub-message `message` of a serialized sentencepiece ModelProto
    (protobuf wire format, read here so that protobuf is not needed): bytes or an int, None if absent."""
    sub = _wire_fields(data).get(message)
    if not isinstance(sub, bytes):
        return None
    return _wire_fields(sub).get(field)


def _wire_fields(data: bytes) -> dict[int, Any]:
    """The last value of each field of one protobuf message: varints as int, length-delimited as bytes."""
    fields: dict[int, Any] = {}
    position = 0

    def varint() -> int:
        nonlocal position
        value, shift = 0, 0
        while True:
            if position >= len(data):
                raise NlprecError("a damaged sentencepiece model (truncated protobuf)")
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while position < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number] = varint()
        elif wire == 2:
            length = varint()
            fields[number] = data[position:position + length]
            position += length
        elif wire == 5:
            position += 4
        elif wire == 1:
            position += 8
        else:
            raise NlprecError(f"a damaged sentencepiece model (protobuf wire type {wire})")
    return fields


__all__ = ["import_checkpoint", "export_folder", "name_map", "config_from_transformers", "unigram_from_sentencepiece"]
