"""`nlprec bert ...` (pretrain, fill, evaluate, embed): thin wrappers over nlprec.tasks.bert.

Nothing heavy is imported at module level: torch and the model load inside each command.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlprec.errors import NlprecError
from nlprec_cli.options import parse_overrides

app = typer.Typer(help="BERT: pretrain (masked LM + next-sentence prediction), fill-mask, evaluate, embed; import "
                       "and export transformers / sentence-transformers checkpoints.",
                  no_args_is_help=True)

ModelDir = Annotated[Path, typer.Argument(help="Model folder written by `nlprec bert pretrain` or `nlprec bert import`.",
                                          show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Format = Annotated[str, typer.Option("--format", help="auto, sentences (blank line between documents), documents "
                                                       "(one per line) or wikitext (= Heading = lines).")]
Column = Annotated[Optional[int], typer.Option(help="Read only this TAB-separated field (0-based), e.g. 1 for "
                                                    "label<TAB>text files.")]


@app.command()
def pretrain(
    corpus: Annotated[Path, typer.Argument(help="Text corpus (gzip allowed); see --format.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")] = Path("bert"),
    format: Format = "auto",
    column: Column = None,
    encoding: Annotated[str, typer.Option(help="Corpus encoding.")] = "utf-8",
    vocab_size: Annotated[int, typer.Option(help="Sentencepiece vocabulary size.")] = 8000,
    max_len: Annotated[int, typer.Option(help="Pieces per example, [CLS] and [SEP]s included (>= 8).")] = 128,
    no_nsp: Annotated[bool, typer.Option("--no-nsp", help="Masked LM only (no next-sentence prediction).")] = False,
    static_masking: Annotated[bool, typer.Option("--static-masking",
                                                 help="Draw the masks once instead of every epoch.")] = False,
    max_predictions: Annotated[int, typer.Option(help="Most masked positions per example.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, linear warmup and decay).")] = 5e-4,
    warmup_fraction: Annotated[float, typer.Option(help="Warmup as a share of the total steps.")] = 0.1,
    epochs: Annotated[int, typer.Option(help="Maximum passes over the examples.")] = 40,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Training time budget in minutes.")] = None,
    heldout_fraction: Annotated[float, typer.Option(help="Share of documents held out for scoring.")] = 0.02,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Model config override key=value, repeatable (e.g. --set layers=2).")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[str, typer.Option(
        help="Autocast: auto (bf16 on CPUs with bf16 units and on CUDA, else fp32), fp32, bf16 or fp16.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (split, sentencepiece, examples, masks, weights).")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUT/checkpoints.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line.")] = False,
) -> None:
    """Pretrain BERT with masked LM and next-sentence prediction (a corpus with one document needs --no-nsp)."""
    from nlprec.tasks.bert import PretrainOptions, train

    options = PretrainOptions(format=format, column=column, encoding=encoding, vocab_size=vocab_size,  # type: ignore[arg-type]
                              max_len=max_len, objectives="mlm" if no_nsp else "mlm+nsp",
                              masking="static" if static_masking else "dynamic", max_predictions=max_predictions,
                              batch_size=batch_size, lr=lr, warmup_fraction=warmup_fraction, epochs=epochs,
                              max_steps=max_steps, max_minutes=max_minutes, heldout_fraction=heldout_fraction,
                              threads=threads, device=device, precision=precision, seed=seed,  # type: ignore[arg-type]
                              progress=not quiet)
    log = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr))
    train(corpus, out, options, overrides=parse_overrides(set_ or []), resume=resume, log=log)


@app.command()
def fill(
    model: ModelDir,
    texts: Annotated[Optional[list[str]], typer.Argument(
        help="Texts with [MASK] where a piece is to be guessed; none: one per line from stdin.", show_default=False)
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Guesses per [MASK].")] = 5,
    as_json: AsJson = False,
) -> None:
    """The k most probable pieces for every [MASK] (several per text allowed)."""
    from nlprec.tasks.bert import PretrainedBert

    lines = list(texts) if texts else [line for line in sys.stdin.read().split("\n") if line.strip()]
    if not lines:
        raise NlprecError("no text given; pass texts with [MASK] as arguments or on stdin")
    bert = PretrainedBert.load(model)
    results = bert.fill(lines, k)
    if as_json:
        print(json.dumps([{"text": text, "filled": bert.filled_text(text, guesses),
                           "masks": [[{"piece": g.piece, "id": g.token_id, "probability": g.probability} for g in mask]
                                     for mask in guesses]} for text, guesses in zip(lines, results)], indent=2))
        return
    for text, guesses in zip(lines, results):
        print(bert.filled_text(text, guesses))
        for index, mask in enumerate(guesses, 1):
            print(f"  [MASK] {index}: " + "  ".join(f"{g.piece} {g.probability:.3f}" for g in mask))


@app.command()
def evaluate(
    model: ModelDir,
    heldout: Annotated[Path, typer.Argument(help="Held-out corpus, in a --format of pretraining.", show_default=False)],
    format: Format = "auto",
    column: Column = None,
    encoding: Annotated[str, typer.Option(help="Corpus encoding.")] = "utf-8",
    masking_seed: Annotated[Optional[int], typer.Option(help="Seed of the examples and masks (default: the "
                                                             "model's).")] = None,
    as_json: AsJson = False,
) -> None:
    """Masked-LM accuracy and perplexity and NSP accuracy on held-out text, masked with a fixed seed.

    The headline MLM accuracy counts every predicted position, 10% of which BERT leaves unchanged (the answer is in
    the input); the accuracy at the [MASK] positions alone, beside that of always answering the most frequent
    piece, is the honest figure. --json: {"mlm_accuracy", "mlm_accuracy_masked", "mlm_accuracy_random",
    "mlm_accuracy_kept", "masked_positions_by_kind", "majority_piece", "majority_accuracy_masked", "mlm_perplexity",
    "nsp_accuracy", "examples", "masking_seed", "mlm_loss", "nsp_loss", "masked_positions", "corpus", "data_sha256",
    "documents"}; nsp_accuracy is null for a one-document file or a model pretrained with --no-nsp.
    """
    from nlprec.tasks.bert import PretrainedBert

    report = PretrainedBert.load(model).evaluate(heldout, format, column, encoding, masking_seed)  # type: ignore[arg-type]
    if as_json:
        print(json.dumps(report, indent=2))
        return
    nsp = "n/a" if report["nsp_accuracy"] is None else f"{report['nsp_accuracy']:.4f}"
    kinds = report["masked_positions_by_kind"]
    print(f"MLM accuracy at [MASK] {report['mlm_accuracy_masked']:.4f} (always {report['majority_piece']!r}: "
          f"{report['majority_accuracy_masked']:.4f}; {kinds['masked']:,} positions)  at random pieces "
          f"{report['mlm_accuracy_random']:.4f} ({kinds['random']:,})  at kept pieces {report['mlm_accuracy_kept']:.4f} "
          f"({kinds['kept']:,})")
    print(f"MLM accuracy, all predicted positions {report['mlm_accuracy']:.4f}  perplexity {report['mlm_perplexity']:.2f}  "
          f"NSP accuracy {nsp}  ({report['examples']:,} examples, {report['masked_positions']:,} predicted, seed "
          f"{report['masking_seed']})")


@app.command()
def embed(
    model: ModelDir,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=".npy file to write (default: stdout).")] = None,
    pooling: Annotated[Optional[str], typer.Option(
        help="cls (last layer at [CLS]), mean or max over the tokens; default: the model's own (sentence-transformers "
             "folders keep theirs, nlprec's own: mean).")] = None,
    normalize: Annotated[Optional[bool], typer.Option(
        "--normalize/--no-normalize", help="L2-normalise the vectors; default: as the model does.")] = None,
    batch_tokens: Annotated[int, typer.Option(min=1, help="Padded tokens per forward pass (texts sorted by "
                                                          "length).")] = 1024,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads.")] = 2,
) -> None:
    """Sentence vectors of stdin's lines (one per line) as a float32 .npy array (N, dimensions); texts over the
    model's token limit are cut."""
    if pooling not in (None, "cls", "mean", "max"):
        raise NlprecError(f"--pooling must be cls, mean or max, got {pooling!r}")
    import numpy as np
    import torch

    from nlprec.io import atomic_write
    from nlprec.tasks.bert import PretrainedBert

    lines = sys.stdin.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise NlprecError("no sentences on stdin; pipe one sentence per line")
    torch.set_num_threads(threads)
    vectors = PretrainedBert.load(model).embed(lines, pooling, normalize, batch_tokens)
    buffer = io.BytesIO()
    np.save(buffer, vectors, allow_pickle=False)
    if out is None:
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return
    with atomic_write(out) as handle:
        handle.write(buffer.getvalue())


@app.command("import")
def import_(
    checkpoint: Annotated[Path, typer.Argument(help="A transformers BERT folder (config.json, model.safetensors or "
                                                    "pytorch_model.bin, vocab.txt or tokenizer.json) or a "
                                                    "sentence-transformers folder (modules.json).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="nlprec model folder to write (new or empty).")] = Path("bert"),
    seed: Annotated[int, typer.Option(help="Seed of any head the checkpoint lacks (initialised at random).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No report line.")] = False,
) -> None:
    """Import a BERT checkpoint: fill, embed, fine-tune (`classify train --model bert --init`) and serve it."""
    from nlprec.tasks.bert_checkpoints import import_checkpoint

    import_checkpoint(checkpoint, out, log=(lambda message: None) if quiet else
                      (lambda message: print(message, file=sys.stderr)), seed=seed)


@app.command()
def export(
    model: ModelDir,
    out: Annotated[Path, typer.Option("--out", "-o", help="transformers folder to write (new or empty).")] = Path("hf"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No report line.")] = False,
) -> None:
    """Export to a folder that transformers' AutoModelForMaskedLM and AutoTokenizer load."""
    from nlprec.tasks.bert_checkpoints import export_folder

    export_folder(model, out, log=(lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr)))
