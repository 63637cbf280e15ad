"""`nlprec translate ...` (train, run, evaluate) and `nlprec bleu`: thin wrappers over nlprec.tasks.translate.

Every score is sacrebleu's, printed with its signature.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlprec.errors import NlprecError
from nlprec_cli.options import parse_overrides

# torch, sentencepiece and sacrebleu load inside the commands, so `--help` stays instant.

app = typer.Typer(help="Translation: train, run, evaluate.", no_args_is_help=True)

ModelDir = Annotated[Path, typer.Argument(help="Model folder written by `nlprec translate train`.",
                                          show_default=False)]
Beam = Annotated[int, typer.Option("--beam", min=1, help="Beam size (1: greedy).")]
Alpha = Annotated[float, typer.Option("--alpha", min=0.0,
                                      help="GNMT length penalty ((5+len)/6)^alpha; 0 disables it.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command()
def train(
    pairs: Annotated[Path, typer.Argument(help="source<TAB>target per line (extra columns ignored).",
                                          show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path("translation-model"),
    arch: Annotated[str, typer.Option(help="transformer or gru-attention.")] = "transformer",
    vocab_size: Annotated[int, typer.Option(help="Sentencepiece vocabulary size.")] = 8000,
    per_side_vocab: Annotated[bool, typer.Option(
        "--per-side-vocab", help="One sentencepiece model per side instead of a joint one.")] = False,
    max_len: Annotated[int, typer.Option(help="Drop training pairs with a side longer than this (pieces).")] = 100,
    valid_size: Annotated[int, typer.Option(help="Held-out validation pairs (at most 10%).")] = 2000,
    max_tokens: Annotated[Optional[int], typer.Option(
        help="Padded source+target tokens per batch (default 4000 transformer, 6000 GRU).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default 1e-3).")] = None,
    warmup: Annotated[Optional[int], typer.Option(help="Warmup steps (default 400 transformer, 200 GRU).")] = None,
    epochs: Annotated[int, typer.Option(help="Maximum passes over the pairs.")] = 100,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop after this many minutes.")] = None,
    patience: Annotated[int, typer.Option(help="Epochs without better val BLEU before stopping.")] = 5,
    reverse: Annotated[bool, typer.Option("--reverse", help="Translate the second column into the first.")] = False,
    target_lang: Annotated[Optional[str], typer.Option(help="Target language code (BLEU tokenizer).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Model config override key=value, repeatable (e.g. --set d_model=128).")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[str, typer.Option(
        help="Autocast: auto (bf16 on CPUs with bf16 units, else fp32; bf16/fp16 on CUDA), fp32, bf16 or fp16. "
             "In fp32 both models default to an adaptive softmax (adaptive_head=2000) and the GRU's "
             "decoder to 256 wide instead of 512.")
    ] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (split, sentencepiece, batches, weights).")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUT/checkpoints.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line.")] = False,
) -> None:
    """Train a translation model; validation BLEU picks the best checkpoint."""
    if arch not in ("transformer", "gru-attention"):
        raise NlprecError(f"--arch must be transformer or gru-attention; got {arch!r}")
    from nlprec.tasks.translate import TranslateOptions, train

    options = TranslateOptions(arch=arch, vocab_size=vocab_size, joint_vocab=not per_side_vocab, max_len=max_len,
                               valid_size=valid_size, max_tokens=max_tokens, lr=lr, warmup_steps=warmup,
                               epochs=epochs, max_steps=max_steps, max_minutes=max_minutes, patience=patience,
                               reverse=reverse, target_lang=target_lang, threads=threads, device=device,
                               precision=precision, seed=seed, progress=not quiet)  # type: ignore[arg-type]
    train(pairs, out, options, parse_overrides(set_ or []), resume=resume)


@app.command()
def run(
    model: ModelDir,
    sentences: Annotated[Optional[list[str]], typer.Argument(
        help="Sentences to translate; none: read one per line from stdin.", show_default=False)] = None,
    beam: Beam = 5,
    nbest: Annotated[int, typer.Option("--nbest", min=1, help="Hypotheses per sentence (<= --beam).")] = 1,
    alpha: Alpha = 0.6,
    batch_size: Annotated[int, typer.Option(min=1, help="Sentences decoded together.")] = 64,
    show_attention: Annotated[bool, typer.Option(
        "--show-attention", help="Print the attention table of the first sentence (greedy decoding; gru-attention: "
                                 "its additive attention, transformer: decoder cross-attention).")] = False,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="With --show-attention: also draw it as a heat map (.png, .svg or .pdf).",
        show_default=False)] = None,
    layer: Annotated[Optional[str], typer.Option(
        "--layer", help="Transformer: decoder layer, 0-based (negative from the end) or mean. Default: the last.",
        show_default=False)] = None,
    head: Annotated[str, typer.Option(
        "--head", help="Transformer: attention head, 0-based, mean (default) or all (--plot: one panel per head).")
    ] = "mean",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
) -> None:
    """Translate: one line in, one line out; with --nbest N, N lines `index<TAB>score<TAB>text` per input."""
    if plot is not None and not show_attention:
        raise NlprecError("--plot draws the attention: add --show-attention")
    if show_attention:
        layer_index, head_index = _index_option("--layer", layer, -1), _index_option("--head", head, None)
        if plot is not None:
            from nlprec.plot import check_output

            check_output(plot)
    from nlprec.tasks.translate import Translator

    translator = Translator.load(model, device)
    texts = list(sentences) if sentences else sys.stdin.read().split("\n")
    if not sentences and texts and texts[-1] == "":
        texts.pop()
    if show_attention:
        if not texts or not texts[0].strip():
            raise NlprecError("--show-attention needs a non-empty sentence")
        _show_attention(translator, texts[0], layer_index, head_index, head == "all", plot)
        return
    for index, hypotheses in enumerate(translator.translate(texts, beam=beam, nbest=nbest, alpha=alpha,
                                                            batch_size=batch_size)):
        if nbest == 1:
            print(hypotheses[0].text)
        else:
            for hypothesis in hypotheses:
                print(f"{index}\t{hypothesis.score:.4f}\t{hypothesis.text}")
    sys.stdout.flush()


def _index_option(flag: str, text: str | None, default: int | None) -> int | None:
    """--layer/--head: an integer, "mean" (None: averaged) or, for --head, "all"."""
    if text is None:
        return default
    if text in ("mean", "all"):
        if text == "all" and flag != "--head":
            raise NlprecError(f"{flag} all: only --head takes all")
        return None
    try:
        return int(text)
    except ValueError:
        raise NlprecError(f"{flag} {text!r}: expected an integer index or mean") from None


def _show_attention(translator, sentence: str, layer: int | None, head: int | None, all_heads: bool,
                    plot: Path | None) -> None:
    """Print the (averaged or chosen) attention table; with `plot`, draw it, or every head of the layer."""
    source, output, weights = translator.attention(sentence, layer=layer, head=head)
    _print_attention(source, output, weights)
    if plot is None:
        return
    from nlprec import plot as plots

    arch = translator.config["arch"]
    if arch == "gru-attention":
        what = "additive attention"
    else:
        layers = len(translator.model.decoder)
        layer_name = "mean over layers" if layer is None else f"decoder layer {layer % layers + 1} of {layers}"
        what = f"cross-attention, {layer_name}, " + ("mean over heads" if head is None else f"head {head}")
    title = f"{arch} {what}: " + plots.run_title(plots.describe(translator.config), arch)
    if all_heads and arch != "gru-attention":
        _, _, per_head = translator.attention_heads(sentence)  # (layers, heads, T, S)
        picked = per_head.mean(axis=0) if layer is None else per_head[layer]  # (heads, T, S)
        title = title.replace("mean over heads", "every head")
        figure = plots.attention_figure(source, output, picked, title, [f"head {h}" for h in range(len(picked))])
    else:
        figure = plots.attention_figure(source, output, weights, title)
    plots.save(figure, plot)
    print(f"wrote {plot}", file=sys.stderr)


def _print_attention(source: list[str], output: list[str], weights) -> None:
    """Rows: output pieces; columns: source pieces; cells: attention weight x 100."""
    width = max(4, *(len(piece) for piece in source))
    label = max(len(piece) for piece in output)
    print(" " * label + " " + " ".join(piece.rjust(width) for piece in source))
    for piece, row in zip(output, weights):
        print(piece.ljust(label) + " " + " ".join(f"{100 * value:{width}.0f}" for value in row))


@app.command()
def evaluate(
    model: ModelDir,
    pairs: Annotated[Path, typer.Argument(help="Test pairs, source<TAB>target per line.", show_default=False)],
    beam: Beam = 5,
    alpha: Alpha = 0.6,
    batch_size: Annotated[int, typer.Option(min=1, help="Sentences decoded together.")] = 64,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    as_json: AsJson = False,
) -> None:
    """BLEU and chrF (sacrebleu, with signatures) and decoding speed on a pairs file.

    --json: {"bleu", "bleu_signature", "chrf", "chrf_signature", "sentences", "tokenize", "bleu_detail",
    "beam", "alpha", "decode_seconds", "sentences_per_s", "pairs", "data_sha256"}.
    """
    from nlprec.tasks.translate import Translator, evaluate as evaluate_pairs

    report = evaluate_pairs(Translator.load(model, device), pairs, beam, alpha, batch_size)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(f"BLEU = {report['bleu']:.2f}  {report['bleu_signature']}")
    print(f"chrF = {report['chrf']:.2f}  {report['chrf_signature']}")
    print(f"{report['sentences']:,} sentences, beam {beam}, {report['sentences_per_s']:.1f} sentences/s")


def bleu(
    hypotheses: Annotated[Path, typer.Argument(help="Detokenised system output, one line per sentence.",
                                               show_default=False)],
    references: Annotated[Path, typer.Argument(help="References, same number of lines.", show_default=False)],
    tokenize: Annotated[Optional[str], typer.Option(help="sacrebleu tokenizer (default from --target-lang, else 13a).")
                        ] = None,
    target_lang: Annotated[Optional[str], typer.Option(help="Target language code, e.g. fr, zh, ja.")] = None,
    as_json: AsJson = False,
) -> None:
    """Corpus BLEU and chrF of a hypotheses file against a references file (sacrebleu), with signatures."""
    from nlprec.metrics import bleu_files

    report = bleu_files(hypotheses, references, target_lang, tokenize)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(f"BLEU = {report['bleu']:.2f}  {report['bleu_signature']}")
    print(f"chrF = {report['chrf']:.2f}  {report['chrf_signature']}")
