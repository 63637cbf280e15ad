"""The Python half of benchmarks/gpu_check.sh: data, wheels, GPU side-by-side timings, the
CPU-only artifact check and the JSON summary. One sub-command per job; the shell script says
when each runs. Every sub-command writes what it measured as JSON and never raises past its own
sections: a failed section is an {"error": ...} entry, and the exit status is 0 unless the job
as a whole could not be done.

    python benchmarks/gpu_check_helper.py prepare-corpora SRC DEST          # on the CPU machine
    python benchmarks/gpu_check_helper.py install-wheels WHEELS TARGET       # on the GPU machine
    python benchmarks/gpu_check_helper.py expand-corpora SRC DEST
    python benchmarks/gpu_check_helper.py env OUT.json
    python benchmarks/gpu_check_helper.py make-data CORPORA W [--quick]
    python benchmarks/gpu_check_helper.py quality-data CORPORA W --what bert|translation [--quick]
    python benchmarks/gpu_check_helper.py bench-bert OUT.json --device cuda [--quick]
    python benchmarks/gpu_check_helper.py bench-translation W OUT.json --device cuda [--quick]
    python benchmarks/gpu_check_helper.py check-artifacts W OUT.json          # CUDA_VISIBLE_DEVICES=
    python benchmarks/gpu_check_helper.py speed-summary W OUT.json
    python benchmarks/gpu_check_helper.py summarize PART W OUT_DIR

Nothing here downloads anything; the corpora come from the folder given (the GPU machine gets
the gzipped copies that `prepare-corpora` wrote into the git-ignored .gpu-carry/, never a
commit of this project).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# ----- the corpus files the check reads, relative to a corpora folder ----------------------------
# (path, how): "gz" = stored gzipped and expanded on arrival, "copy" = stored as it is.
CORPUS_FILES = [
    ("ptb/ptb.train.txt", "gz"),
    ("fra-eng/fra.txt", "gz"),  # whole: BENCHMARKS.md's split is a permutation of every pair
    ("ml-100k/u.data", "gz"),
    ("ml-100k/u.item", "gz"),
    ("rt-polarity/rt-polarity.pos", "gz"),
    ("rt-polarity/rt-polarity.neg", "gz"),
    ("wikitext-2/wiki.valid.tokens", "gz"),
    ("wikitext-2/wiki.test.tokens", "gz"),
    ("wordeval/questions-words.txt", "gz"),
    ("wordeval/wordsim353.tsv", "gz"),
    ("imdb/imdb_train.tsv.gz", "copy"),
]
# bench_bert's held-out IMDb test reviews (2,000, a seed-1 permutation), in that order: the
# whole test file (12.5 MB) is not carried.
IMDB_HELDOUT = "imdb/imdb_test_heldout2000.tsv.gz"
MANIFEST = "MANIFEST.tsv"

# Wheels the GPU image may lack (KINDS.md lists what it has): faiss-cpu for every nearest-
# neighbour query, fastapi + uvicorn (and their own needs) for the serve tests. Others that the
# resolver brings along are kept only when small and harmless to add; numpy, packaging and click
# are never carried (the image's torch, numba and typer were built against its own).
WHEEL_ROOTS = ["faiss-cpu", "fastapi", "uvicorn"]
WHEEL_KEEP = {"faiss_cpu", "fastapi", "starlette", "pydantic", "pydantic_core", "annotated_types",
              "typing_inspection", "typing_extensions", "opentelemetry_api", "importlib_metadata", "zipp",
              "uvicorn", "h11", "anyio", "sniffio", "idna", "annotated_doc"}
NEVER_SHADOW = {"numpy", "packaging", "click", "torch", "setuptools", "pip"}


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def write_json(path: str | Path, value: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:300]}"


class Sections:
    """Named sections of a report, each timed and caught; the report is rewritten after each."""

    def __init__(self, out: Path, report: dict[str, Any] | None = None, deadline: float | None = None):
        self.out, self.report, self.deadline = out, report if report is not None else {}, deadline
        write_json(self.out, self.report)

    def run(self, name: str, fn: Callable[[], Any], needs_s: float = 0.0) -> Any:
        left = None if self.deadline is None else self.deadline - time.time()
        if left is not None and left < needs_s:
            self.report[name] = {"skipped": f"{left:.0f} s left, needs {needs_s:.0f}"}
            result = None
        else:
            started = time.time()
            try:
                result = self.report[name] = fn()
            except Exception as err:  # noqa: BLE001 - one broken section must not hide the others
                result = None
                self.report[name] = {"error": error_text(err)}
            if isinstance(self.report[name], dict):
                self.report[name]["wall_s"] = round(time.time() - started, 2)
        write_json(self.out, self.report)
        log(f"{name}: {json.dumps(self.report[name], default=str)[:400]}")
        return result


# ===== on the CPU machine: fill .gpu-carry/corpora ============================================
def prepare_corpora(src: Path, dest: Path) -> None:
    """Copy (gzipped) the few corpus files the check reads, plus bench_bert's 2,000 held-out IMDb
    test reviews, and a MANIFEST.tsv (stored name, original name, bytes, sha256 of the original)."""
    import numpy as np

    if not src.is_dir():
        raise SystemExit(f"corpora folder {src} not found: set NLPREC_CORPORA")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    rows = []
    for relative, how in CORPUS_FILES:
        original = src / relative
        if not original.is_file():
            raise SystemExit(f"missing {original}")
        stored = relative + (".gz" if how == "gz" else "")
        target = dest / stored
        target.parent.mkdir(parents=True, exist_ok=True)
        if how == "gz":
            with open(original, "rb") as raw, gzip.GzipFile(target, "wb", compresslevel=9, mtime=0) as packed:
                shutil.copyfileobj(raw, packed, 1 << 20)
        else:
            shutil.copyfile(original, target)
        rows.append((stored, relative, original.stat().st_size, sha256(original)))
    # the held-out reviews: bench_bert.py's test_order[:2000] with --seed 1, lines as they are
    test = src / "imdb" / "imdb_test.tsv.gz"
    if test.is_file():
        with gzip.open(test, "rt", encoding="utf-8", newline="\n") as handle:
            lines = [line for line in handle]
        order = np.random.default_rng(1).permutation(len(lines))[:2000]
        target = dest / IMDB_HELDOUT
        with gzip.GzipFile(target, "wb", compresslevel=9, mtime=0) as packed:
            packed.write("".join(lines[i] if lines[i].endswith("\n") else lines[i] + "\n"
                                 for i in order).encode("utf-8"))
        plain = sum(len(lines[i].encode("utf-8")) for i in order)
        rows.append((IMDB_HELDOUT, IMDB_HELDOUT, plain, "derived: bench_bert test_order[:2000], seed 1"))
    with open(dest / MANIFEST, "w", encoding="utf-8") as handle:
        handle.write("# stored\toriginal\tbytes\tsha256\n")
        for row in rows:
            handle.write("\t".join(str(x) for x in row) + "\n")
    total_stored = total_plain = 0
    print(f"{'stored file':48} {'stored MB':>10} {'original MB':>12}")
    for stored, _, plain, _ in rows:
        size = (dest / stored).stat().st_size
        total_stored += size
        total_plain += plain
        print(f"{stored:48} {size / 1e6:10.2f} {plain / 1e6:12.2f}")
    print(f"{'total':48} {total_stored / 1e6:10.2f} {total_plain / 1e6:12.2f}")


def expand_corpora(src: Path, dest: Path) -> None:
    """A corpora folder laid out as ../shared/corpora: the carried copy expanded (sha256 checked),
    or, for a folder without a MANIFEST.tsv (already plain), a link to it."""
    manifest = src / MANIFEST
    if not manifest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            dest.unlink() if dest.is_symlink() else shutil.rmtree(dest)
        dest.symlink_to(src.resolve())
        print(f"{dest} -> {src.resolve()} (plain folder, used as it is)")
        return
    bad = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        stored, original, size, digest = line.split("\t")
        source, target = src / stored, dest / original
        target.parent.mkdir(parents=True, exist_ok=True)
        if stored.endswith(".gz") and not original.endswith(".gz"):
            with gzip.open(source, "rb") as packed, open(target, "wb") as raw:
                shutil.copyfileobj(packed, raw, 1 << 20)
        else:
            shutil.copyfile(source, target)
        if not digest.startswith("derived") and sha256(target) != digest:
            bad.append(original)
    if bad:
        raise SystemExit(f"sha256 differs from the manifest for {bad}")
    print(f"expanded {src} into {dest} (sha256 checked)")


# ===== on the GPU machine: wheels it lacks ======================================================
def _wheel_name(path: Path) -> tuple[str, str]:
    parts = path.name.split("-")
    return parts[0].lower().replace("-", "_"), parts[1]


def install_wheels(wheels: Path, target: Path) -> None:
    """Install into `target` (put on PYTHONPATH by the caller) each carried wheel whose
    distribution this Python lacks, or has in a version that a wheel being installed does not
    accept; never numpy, packaging or click (see NEVER_SHADOW)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.version import Version

    files = sorted(wheels.glob("*.whl"))
    if not files:
        print(f"no wheels in {wheels}")
        return
    by_name = {_wheel_name(f)[0]: f for f in files}

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            try:
                return metadata.version(name.replace("_", "-"))
            except metadata.PackageNotFoundError:
                return None

    chosen = {name for name in by_name if name not in NEVER_SHADOW and installed(name) is None}
    changed = True
    while changed:  # a wheel being installed may need a newer version of one the image has
        changed = False
        for name in sorted(chosen):
            with zipfile.ZipFile(by_name[name]) as archive:
                meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                lines = archive.read(meta).decode("utf-8", "replace").splitlines()
            for line in lines:
                if not line.startswith("Requires-Dist:"):
                    continue
                requirement = Requirement(line.split(":", 1)[1].strip())
                if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                    continue
                dep = requirement.name.lower().replace("-", "_")
                have = installed(dep)
                if dep in chosen or dep in NEVER_SHADOW or dep not in by_name:
                    continue
                if have is None or Version(have) not in requirement.specifier:
                    chosen.add(dep)
                    changed = True
    skipped = sorted(set(by_name) - chosen)
    print("already present, not installed: " + ", ".join(f"{n} {installed(n)}" for n in skipped))
    if not chosen:
        return
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--upgrade", "--target", str(target), *(str(by_name[n]) for n in sorted(chosen))]
    print("installing: " + ", ".join(by_name[n].name for n in sorted(chosen)))
    subprocess.run(command, check=True)


# ===== environment ==============================================================================
def env_report(out: Path) -> None:
    import importlib
    import platform

    report: dict[str, Any] = {"python": platform.python_version(), "executable": sys.executable,
                              "cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        import torch

        report["torch"] = torch.__version__
        report["torch_cuda"] = torch.version.cuda
        report["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            properties = torch.cuda.get_device_properties(0)
            report.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=round(properties.total_memory / 2**30, 1),
                          multiprocessors=properties.multi_processor_count, capability=list(
                              torch.cuda.get_device_capability(0)), bf16=torch.cuda.is_bf16_supported(),
                          cudnn=torch.backends.cudnn.version())
    except Exception as err:  # noqa: BLE001
        report["torch"] = error_text(err)
    modules = {}
    for name in ("nlprec", "nlprec_cli", "numba", "numpy", "scipy", "pandas", "pyarrow", "faiss", "sentencepiece",
                 "sacrebleu", "typer", "click", "transformers", "fastapi", "uvicorn", "pydantic", "pytest",
                 "xdist", "pytest_timeout"):
        try:
            module = importlib.import_module(name)
            modules[name] = str(getattr(module, "__version__", "present"))
        except Exception as err:  # noqa: BLE001
            modules[name] = "MISSING " + error_text(err)
    report["modules"] = modules
    try:
        report["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,"
             "temperature.gpu,power.draw", "--format=csv"], capture_output=True, text=True, timeout=20).stdout
    except Exception as err:  # noqa: BLE001
        report["nvidia_smi"] = error_text(err)
    with contextlib.suppress(OSError):
        report["meminfo_total_gib"] = round(int(next(line.split()[1] for line in open("/proc/meminfo")
                                                     if line.startswith("MemTotal"))) / 2**20, 1)
    report["disk_free_gib"] = round(shutil.disk_usage("/tmp").free / 2**30, 1)
    write_json(out, report)
    for key, value in report.items():
        print(f"{key}: {value}")


# ===== data for the two parts ===================================================================
def _head_lines(src: Path, dest: Path, n: int | None) -> None:
    """The first n lines of `src` (all when n is None), bytes as they are."""
    if n is None:
        shutil.copyfile(src, dest)
        return
    with open(src, "rb") as handle, open(dest, "wb") as out:
        for index, line in enumerate(handle):
            if index >= n:
                break
            out.write(line)


def _imdb_texts(path: Path, limit: int | None = None) -> list[str]:
    texts = []
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
        for line in handle:
            if limit is not None and len(texts) >= limit:
                break
            texts.append(line.rstrip("\n").split("\t", 1)[1])
    return texts


def make_data(corpora: Path, w: Path, quick: bool) -> None:
    """Inputs of the correctness part under W/data (tiny slices with --quick)."""
    import numpy as np

    data = w / "data"
    data.mkdir(parents=True, exist_ok=True)
    _head_lines(corpora / "ptb" / "ptb.train.txt", data / "ptb.txt", 600 if quick else None)
    _head_lines(corpora / "ml-100k" / "u.data", data / "u.data", 3000 if quick else None)
    for side in ("pos", "neg"):
        _head_lines(corpora / "rt-polarity" / f"rt-polarity.{side}", data / f"rt.{side}", 300 if quick else None)
    _head_lines(corpora / "wikitext-2" / "wiki.valid.tokens", data / "wiki_valid.tokens", 400 if quick else None)
    _head_lines(corpora / "wikitext-2" / "wiki.test.tokens", data / "wiki_test_small.tokens", 150 if quick else 500)
    # fra-eng: 40,000 random pairs to train on, 300 disjoint ones to score (seed 0)
    lines = [line for line in (corpora / "fra-eng" / "fra.txt").read_text(encoding="utf-8").split("\n")
             if line.count("\t") >= 1]
    order = np.random.default_rng(0).permutation(len(lines))
    n_train, n_test = (2000, 40) if quick else (40000, 300)
    (data / "fra_train.tsv").write_text("\n".join(lines[i] for i in order[:n_train]) + "\n", encoding="utf-8")
    (data / "fra_test.tsv").write_text("\n".join(lines[i] for i in order[n_train:n_train + n_test]) + "\n",
                                       encoding="utf-8")
    # word2vec speed corpus: IMDb train reviews as benchmarks/common.py tokenizes them
    token = re.compile(r"[a-z0-9']+")
    texts = _imdb_texts(corpora / "imdb" / "imdb_train.tsv.gz", 200 if quick else 12500)
    with open(data / "imdb_tokens.txt", "w", encoding="utf-8") as out:
        out.writelines(" ".join(token.findall(text.lower())) + "\n" for text in texts)
    # a tiny corpus that compiles the numba kernels once (NUMBA_CACHE_DIR keeps them)
    _head_lines(corpora / "ptb" / "ptb.train.txt", data / "ptb_tiny.txt", 300)
    for path in sorted(data.iterdir()):
        print(f"{path.name:24} {path.stat().st_size / 1e6:8.2f} MB")


def _write_sentences(documents: Any, path: Path) -> None:
    """Documents in the `sentences` format: one sentence per line, a blank line after each document."""
    starts = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for size in documents.doc_sizes.tolist():
            for sentence in documents.sentences[starts:starts + size]:
                out.write(sentence.replace("\r", " ").replace("\n", " ") + "\n")
            out.write("\n")
            starts += size


def quality_data(corpora: Path, w: Path, quick: bool, what: str) -> None:
    """what="bert": bench_bert's pretraining corpus (IMDb train reviews + WikiText-2 valid) and its
    held-out set (WikiText-2 test + the 2,000 held-out IMDb test reviews), both in the `sentences`
    format; what="translation": bench_translation's seed-1 split of fra.txt (2,000 test pairs, the
    rest to train on)."""
    import numpy as np

    data = w / "data"
    data.mkdir(parents=True, exist_ok=True)
    started = time.time()
    info: dict[str, Any] = {}
    if what == "bert":
        sys.path.insert(0, str(HERE))
        from bench_bert import as_documents, merge  # noqa: E402  (benchmarks/ on the path)

        from nlprec.data.bert_data import read_documents

        train_texts = _imdb_texts(corpora / "imdb" / "imdb_train.tsv.gz", 300 if quick else None)
        wiki_valid = corpora / "wikitext-2" / "wiki.valid.tokens"
        if quick:
            _head_lines(wiki_valid, data / "wiki_valid_quick.tokens", 300)
            wiki_valid = data / "wiki_valid_quick.tokens"
        corpus = merge(as_documents(train_texts, "imdb_train"), read_documents(wiki_valid, "wikitext"))
        _write_sentences(corpus, data / "bert_train.txt")
        full_test = corpora / "imdb" / "imdb_test.tsv.gz"
        if full_test.is_file():  # a plain corpora folder: bench_bert's choice, made here
            test_texts = _imdb_texts(full_test)
            held_texts = [test_texts[i] for i in np.random.default_rng(1).permutation(len(test_texts))[:2000]]
        else:  # the carried copy holds exactly those reviews, in that order
            held_texts = _imdb_texts(corpora / IMDB_HELDOUT)
        wiki_test = corpora / "wikitext-2" / "wiki.test.tokens"
        if quick:
            _head_lines(wiki_test, data / "wiki_test_quick.tokens", 200)
            wiki_test, held_texts = data / "wiki_test_quick.tokens", held_texts[:100]
        held = merge(read_documents(wiki_test, "wikitext"), as_documents(held_texts, "imdb_test_2000"))
        _write_sentences(held, data / "bert_heldout.txt")
        info = {"bert_train_documents": len(corpus), "bert_train_sentences": len(corpus.sentences),
                "bert_heldout_documents": len(held), "bert_heldout_sentences": len(held.sentences)}
    else:  # benchmarks/bench_translation.py split_files with --seed 1
        from nlprec.data.pairs import read_pairs, split_indices

        pairs = read_pairs(corpora / "fra-eng" / "fra.txt")
        train_idx, test_idx = split_indices(len(pairs.sources), 2000, 1)
        if quick:
            train_idx, test_idx = train_idx[:4000], test_idx[:100]
        with open(data / "fra_train.tsv", "w", encoding="utf-8") as handle:
            handle.writelines(f"{pairs.sources[i]}\t{pairs.targets[i]}\n" for i in train_idx)
        with open(data / "fra_test.tsv", "w", encoding="utf-8") as handle:
            handle.writelines(f"{pairs.sources[i]}\t{pairs.targets[i]}\n" for i in test_idx)
        info = {"translation_train_pairs": len(train_idx), "translation_test_pairs": len(test_idx)}
    info["seconds"] = round(time.time() - started, 1)
    write_json(w / f"quality_data_{what}.json", info)
    print(json.dumps(info))


# ===== GPU timings, side by side ================================================================
def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _on(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    import torch

    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _step_timer(device: Any, precision: str) -> Callable:
    """A trainer-like step (autocast, backward, clip 1.0, optimizer step, the loss read back as
    the trainer reads it every step), timed with the device synchronized on both ends."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def timed(model: Any, optimizer: Any, batch: dict[str, Any], loss_of: Callable) -> float:
        _sync(device)
        started = time.perf_counter()
        context = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with context:
            loss = loss_of(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss.detach())
        _sync(device)
        return time.perf_counter() - started
    return timed


def _interleaved(models: dict[str, tuple[Any, Any, Callable]], batches: list[dict[str, Any]], timed: Callable,
                 warmup: int, deadline: float) -> dict[str, Any]:
    """Steps alternating between the tools on the same batches (the order flipped every step);
    tokens/s per tool as median of per-step rates and as total tokens / total seconds after
    `warmup` steps."""
    seconds: dict[str, list[float]] = {name: [] for name in models}
    tokens: list[int] = []
    for index, batch in enumerate(batches):
        if time.time() > deadline and index > warmup + 3:
            break
        names = list(models) if index % 2 == 0 else list(models)[::-1]
        for name in names:
            model, optimizer, loss_of = models[name]
            seconds[name].append(timed(model, optimizer, batch, loss_of))
        tokens.append(int(batch["n_tokens"]))
    report: dict[str, Any] = {}
    for name, times in seconds.items():
        used_t, used_n = times[warmup:], tokens[warmup:len(times)]
        if not used_t:
            report[name] = {"error": "no timed steps"}
            continue
        rates = [n / t for n, t in zip(used_n, used_t)]
        report[name] = {"tokens_per_s_median": round(statistics.median(rates)),
                        "tokens_per_s_mean": round(sum(used_n) / sum(used_t)),
                        "step_ms_median": round(1000 * statistics.median(used_t), 3), "timed_steps": len(used_t)}
    return report


def bench_bert(out: Path, device_name: str, quick: bool, budget_s: float) -> None:
    """nlprec's Bert against transformers' BertForPreTraining at bench_bert's sizes (4 x 256, 4
    heads, FFN 1,024, vocabulary 8,000, 128 positions) on the same full batches (bench_bert_step's
    random 15%-masked batches without padding: the implementations alone), fused AdamW for both,
    steps interleaved; batches of 32 (the CPU reference) and 256, bf16 autocast (what the trainer
    uses on CUDA) and fp32."""
    import torch

    sys.path.insert(0, str(HERE))
    from bench_bert_step import full_batch  # noqa: E402

    from nlprec.models.bert import Bert, BertConfig

    device = torch.device(device_name)
    deadline = time.time() + budget_s
    report: dict[str, Any] = {"device": device_name, "sizes": None, "protocol": (
        "same full batch for both tools (random ids, 15% masked, no padding; benchmarks/bench_bert_step.py), "
        "trainer-like step: autocast, backward, clip 1.0, fused AdamW, loss read back; steps alternate between "
        "the tools; tokens/s after warm-up")}
    sections = Sections(out, report, deadline)
    try:
        from bench_bert import SIZES, PeerBert  # noqa: E402
        import transformers

        report["transformers"] = transformers.__version__
    except Exception as err:  # noqa: BLE001
        from bench_bert import SIZES  # noqa: E402

        PeerBert = None
        report["transformers"] = "MISSING " + error_text(err)
    report["sizes"] = SIZES
    vocab, length = (1000, 64) if quick else (8000, 128)
    configs = [(32, "bf16"), (256, "bf16"), (32, "fp32"), (256, "fp32")]
    if quick:
        configs = [(8, "bf16"), (8, "fp32")]
    steps, warmup = (4, 1) if quick else (16, 4)

    def one(batch_size: int, precision: str) -> dict[str, Any]:
        batches = [_on(full_batch(batch_size, length, vocab, seed=s), device) for s in range(steps)]
        models = {}
        torch.manual_seed(0)
        nlprec_model = Bert(BertConfig(vocab_size=vocab, max_positions=length, **SIZES)).to(device).train()
        models["nlprec"] = (nlprec_model, torch.optim.AdamW(nlprec_model.param_groups(), lr=1e-4, weight_decay=0.01,
                                                            fused=True), lambda m, b: m.loss(b)["loss"])
        if PeerBert is not None:
            torch.manual_seed(0)
            peer = PeerBert(vocab, length).to(device).train()
            models["transformers"] = (peer, torch.optim.AdamW(peer.param_groups(), lr=1e-4, weight_decay=0.01,
                                                              fused=True), lambda m, b: m.loss(b)["loss"])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        result = _interleaved(models, batches, _step_timer(device, precision), warmup, deadline)
        if "transformers" in result and "tokens_per_s_median" in result.get("transformers", {}):
            result["nlprec_over_transformers"] = round(result["nlprec"]["tokens_per_s_median"]
                                                       / result["transformers"]["tokens_per_s_median"], 3)
        if device.type == "cuda":
            result["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        result.update(batch=batch_size, length=length, vocab=vocab, precision=precision)
        del models
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return result

    for batch_size, precision in configs:
        sections.run(f"batch{batch_size}_{precision}", lambda b=batch_size, p=precision: one(b, p), needs_s=8)


def bench_translation(w: Path, out: Path, device_name: str, quick: bool, budget_s: float) -> None:
    """nlprec's Transformer (the CLI's configuration at this precision) against bench_translation's
    Marian peer (transformers MarianMTModel, d_model 256, 3+3 layers, 4 heads, FFN 1,024) on the same
    token-budget batches of the correctness part's fra-eng pairs and the same joint sentencepiece
    model (the one `nlprec translate train` wrote, else one trained here), AdamW for both, steps
    interleaved; training tokens/s = non-padding source + target tokens per second."""
    import torch

    from nlprec.data.pairs import PairsData, PairsTokenizer, encode_pairs, read_pairs
    from nlprec.registry import build_config, get_model
    from nlprec.tasks.translate import precision_defaults
    from nlprec.train.trainer import resolve_precision

    device = torch.device(device_name)
    deadline = time.time() + budget_s
    report: dict[str, Any] = {"device": device_name}
    sections = Sections(out, report, deadline)
    folder = w / "tr" / "tfm"
    pairs = read_pairs(w / "data" / "fra_train.tsv")
    if (folder / "config.json").is_file():
        tokenizer = PairsTokenizer.load(folder)
        report["tokenizer"] = str(folder)
    else:
        tokenizer = PairsTokenizer.train(w / "bench_spm", pairs.sources, pairs.targets, 1000 if quick else 8000,
                                         True, 1)
        report["tokenizer"] = "trained here"
    encoded = encode_pairs(tokenizer, pairs.sources, pairs.targets, 100)
    vocab = tokenizer.source.vocab_size
    precision = resolve_precision("auto", device)
    report.update(vocab=vocab, pairs=len(encoded), precision=precision)
    steps, warmup = (6, 2) if quick else (60, 10)

    def nlprec_model() -> Any:
        entry = get_model("transformer")
        config = build_config(entry.config_cls, {"src_vocab": vocab, "tgt_vocab": tokenizer.target.vocab_size,
                                                 "share_embeddings": tokenizer.joint,
                                                 **precision_defaults("transformer", precision, vocab)})
        torch.manual_seed(1)
        model = entry.model_cls(config)
        if hasattr(model, "order_output_pieces"):
            from nlprec.data.pairs import target_piece_counts

            model.order_output_pieces(target_piece_counts(encoded, tokenizer.target.vocab_size))
        report["nlprec_config"] = {k: getattr(config, k) for k in (
            "d_model", "heads", "encoder_layers", "decoder_layers", "d_ff", "adaptive_head")}
        return model.to(device).train()

    def marian_model() -> Any:
        from transformers import MarianConfig, MarianMTModel

        config = MarianConfig(vocab_size=vocab, decoder_vocab_size=vocab, d_model=256, encoder_layers=3,
                              decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4,
                              encoder_ffn_dim=1024, decoder_ffn_dim=1024, max_position_embeddings=512,
                              pad_token_id=0, eos_token_id=3, bos_token_id=2, decoder_start_token_id=2,
                              share_encoder_decoder_embeddings=True, scale_embedding=True)
        torch.manual_seed(1)
        return MarianMTModel(config).to(device).train()

    def marian_loss(model: Any, batch: dict[str, Any]) -> Any:
        labels = batch["tgt_out"].masked_fill(batch["tgt_out"] == 0, -100)
        return model(input_ids=batch["src"], attention_mask=batch["src"] != 0, decoder_input_ids=batch["tgt_in"],
                     labels=labels).loss

    def one(max_tokens: int) -> dict[str, Any]:
        data = PairsData(encoded, None, max_tokens, 1)
        batches = []
        for epoch in range(100):
            for batch in data.train_dataloader(epoch):
                batches.append(_on(batch, device))
                if len(batches) >= steps:
                    break
            if len(batches) >= steps:
                break
        models: dict[str, Any] = {}
        ours = nlprec_model()
        models["nlprec"] = (ours, torch.optim.AdamW(ours.parameters(), lr=1e-4, betas=(0.9, 0.98)),
                            lambda m, b: m.loss(b)["loss"])
        try:
            peer = marian_model()
            models["marian"] = (peer, torch.optim.AdamW(peer.parameters(), lr=1e-4, betas=(0.9, 0.98)), marian_loss)
        except ImportError as err:
            report["marian"] = "skipped: " + error_text(err)
        result = _interleaved(models, batches, _step_timer(device, precision), warmup, deadline)
        if "tokens_per_s_median" in result.get("marian", {}):
            result["nlprec_over_marian"] = round(result["nlprec"]["tokens_per_s_median"]
                                                 / result["marian"]["tokens_per_s_median"], 3)
        result["max_tokens"] = max_tokens
        del models
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return result

    for max_tokens in ((2000,) if quick else (6000, 16000)):  # 6,000: bench_translation's peer batches
        sections.run(f"max_tokens_{max_tokens}", lambda m=max_tokens: one(m), needs_s=10)
    cli = read_json(folder / "metrics.json")
    if cli:
        report["cli_run_train_tokens_per_s"] = cli.get("train_tokens_per_s")
        report["cli_run_note"] = "nlprec translate train in the correctness part (GPU shared with other steps)"
    write_json(out, report)


# ===== the CPU-only artifact check ================================================================
def loss_trend(path: Path) -> dict[str, Any]:
    """First vs last logged training loss in a metrics.jsonl (step records, else epoch records)."""
    steps, epochs = [], []
    if not path.is_file():
        return {"loss_falls": None, "metrics": "absent"}
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record.get("loss"), (int, float)):
                (epochs if record.get("event") == "epoch" else steps).append(record)
    seq = steps if len(steps) >= 2 else epochs
    if len(seq) < 2:
        return {"records": len(seq), "loss_falls": None}
    return {"records": len(seq), "loss_first": round(seq[0]["loss"], 5), "loss_last": round(seq[-1]["loss"], 5),
            "loss_falls": seq[-1]["loss"] < seq[0]["loss"], "last_step": seq[-1].get("step")}


def plain_torch_load(path: Path) -> Any:
    """Does the weights file load with no map_location in this CPU-only process (no CUDA storages)?"""
    import torch

    try:
        torch.load(path, weights_only=True)
        return True
    except Exception as err:  # noqa: BLE001
        return error_text(err)


def check_artifacts(w: Path, out: Path, threads: int) -> None:
    """Everything the correctness part trained on the GPU, loaded and queried in this process,
    which must see no GPU (CUDA_VISIBLE_DEVICES=)."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    report: dict[str, Any] = {"cuda_visible": torch.cuda.is_available()}
    sections = Sections(out, report)
    if torch.cuda.is_available():
        report["error"] = "a GPU is visible: run with CUDA_VISIBLE_DEVICES="
        write_json(out, report)

    def embeddings(path: Path) -> dict[str, Any]:
        from nlprec.subword_vectors import load_vectors
        from nlprec.tasks.embeddings import checkpoint_dir_for

        vectors = load_vectors(path)
        matrix = np.asarray(vectors.matrix)
        probe = next(word for word in ("money", "market", "the") if word in vectors)
        meta = vectors.meta or {}
        per_epoch = meta.get("loss_per_epoch") or []
        return {"words": len(vectors), "finite": bool(np.isfinite(matrix).all()),
                f"neighbours_of_{probe}": [w for w, _ in vectors.most_similar(probe, 5)[0]],
                "trained_on": meta.get("device"), "backend": meta.get("backend"),
                "loss_per_epoch": per_epoch, **loss_trend(checkpoint_dir_for(path) / "metrics.jsonl")}

    for name in ("sg.npz", "cbow_hs.bin", "ft.npz", "glove.vec"):
        if (w / "emb" / name).exists():
            sections.run(f"emb_{name}", lambda n=name: embeddings(w / "emb" / n))

    def recommender(folder: Path) -> dict[str, Any]:
        from nlprec.tasks.recommender import Recommender

        rec = Recommender.load(folder)
        cpu = rec.evaluate()["metrics"]
        trained = (read_json(folder / "metrics.json") or {}).get("metrics", {})
        diff = {k: abs(float(cpu[k]) - float(trained[k])) for k in cpu
                if k in trained and isinstance(cpu[k], (int, float)) and isinstance(trained[k], (int, float))}
        answer = rec.recommend(rec.user_ids[0], k=5)
        similar = rec.similar_items(rec.item_ids[0], 3)
        return {"cpu_metrics": cpu, "gpu_vs_cpu_max_abs_diff": max(diff.values()) if diff else None,
                "top5": [item for item, _ in answer.items], "similar_items": [i for i, _ in similar],
                "trained_precision": rec.info.get("precision"),
                "plain_torch_load": plain_torch_load(folder / "model.pt"), **loss_trend(folder / "metrics.jsonl")}

    for name in ("mf", "autorec", "neumf"):
        if (w / "rec" / name).is_dir():
            sections.run(f"rec_{name}", lambda n=name: recommender(w / "rec" / n))

    def translation(folder: Path) -> dict[str, Any]:
        from nlprec.tasks.translate import Translator

        translator = Translator.load(folder)
        outputs = translator.translate(["Go away.", "I am very busy today."], beam=5)
        metrics = read_json(folder / "metrics.json") or {}
        return {"translations": [o[0].text for o in outputs], "best_val_bleu": metrics.get("best_val_bleu"),
                "train_tokens_per_s": metrics.get("train_tokens_per_s"),
                "precision": (read_json(folder / "config.json") or {}).get("precision"),
                "plain_torch_load": plain_torch_load(folder / "model.pt"), **loss_trend(folder / "metrics.jsonl")}

    for name in ("tfm", "gru"):
        if (w / "tr" / name).is_dir():
            sections.run(f"tr_{name}", lambda n=name: translation(w / "tr" / n))

    def bert(folder: Path) -> dict[str, Any]:
        from nlprec.tasks.bert import PretrainedBert

        model = PretrainedBert.load(folder)
        guesses = model.fill(["the [MASK] of the city ."], k=3)
        vectors = model.embed(["a sentence .", "another one ."])
        config = read_json(folder / "config.json") or {}
        return {"fill": [g.piece for g in guesses[0][0]], "embed_shape": list(vectors.shape),
                "heldout": config.get("heldout"), "precision": config.get("precision"),
                "planned_total_steps": (config.get("trainer_config") or {}).get("max_steps"),
                "plain_torch_load": plain_torch_load(folder / "model.pt"), **loss_trend(folder / "metrics.jsonl")}

    if (w / "bert" / "mlm").is_dir():
        sections.run("bert_mlm", lambda: bert(w / "bert" / "mlm"))

    def classifier(folder: Path) -> dict[str, Any]:
        from nlprec.tasks.classify import Classifier

        model = Classifier.load(folder)
        proba = model.predict_proba(["a moving , beautifully acted film", "dull , lifeless and far too long"])
        metrics = read_json(folder / "metrics.json") or {}
        validation = metrics.get("validation") if isinstance(metrics.get("validation"), dict) else {}
        return {"classes": model.classes, "proba": np.round(proba, 3).tolist(),
                "valid_accuracy": validation.get("accuracy"),
                "precision": (read_json(folder / "config.json") or {}).get("precision"),
                "plain_torch_load": plain_torch_load(folder / "model.pt"), **loss_trend(folder / "metrics.jsonl")}

    for name in ("textcnn", "birnn", "bert"):
        if (w / "cls" / name).is_dir():
            sections.run(f"cls_{name}", lambda n=name: classifier(w / "cls" / n))
    failed = sorted(k for k, v in report.items() if isinstance(v, dict) and ("error" in v or v.get("loss_falls") is False
                                                                            or v.get("plain_torch_load") not in (None, True)))
    report["failed"] = failed
    write_json(out, report)
    print(f"artifact checks: {sum(isinstance(v, dict) for v in report.values())} run, failed or loss did not fall: "
          f"{failed}")


# ===== speed runs made through the CLI: read their logs ==========================================
def _epochs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == "epoch":
                records.append(record)
    return records


def speed_summary(w: Path, out: Path) -> None:
    """word2vec words/s (torch backend on the GPU vs the numba kernel on every core) and NeuMF
    epoch seconds (GPU vs CPU) from the metrics.jsonl the CLI runs wrote."""
    report: dict[str, Any] = {}
    for name in ("w2v_gpu", "w2v_gpu64k", "w2v_numba"):
        epochs = _epochs(w / "speed" / f"{name}.npz.run" / "metrics.jsonl")
        meta = read_json(w / "speed" / f"{name}.npz.meta.json") or {}
        report[name] = {"words_per_s": [round(e.get("words_per_s", 0)) for e in epochs],
                        "epoch_s": [round(e.get("seconds", 0), 2) for e in epochs],
                        "loss": [e.get("loss") for e in epochs]} if epochs else {"error": "no epoch records"}
        if meta:
            report[name]["backend"] = meta.get("backend")
            report[name]["device"] = meta.get("device")
    cpu = report.get("w2v_numba", {}).get("words_per_s")
    for name in ("w2v_gpu", "w2v_gpu64k"):
        gpu = report.get(name, {}).get("words_per_s")
        if gpu and cpu:
            report[f"{name}_over_numba"] = round(gpu[-1] / max(cpu[-1], 1), 3)
    for name in ("neumf_gpu", "neumf_cpu"):
        epochs = _epochs(w / "speed" / name / "metrics.jsonl")
        metrics = (read_json(w / "speed" / name / "metrics.json") or {}).get("metrics", {})
        report[name] = {"epoch_s": [round(e.get("seconds", 0), 3) for e in epochs],
                        "examples_per_s": [round(e.get("examples_per_s", 0)) for e in epochs],
                        "hr@10": metrics.get("hr@10"), "ndcg@10": metrics.get("ndcg@10")} if epochs \
            else {"error": "no epoch records"}
    g, c = report.get("neumf_gpu", {}).get("epoch_s"), report.get("neumf_cpu", {}).get("epoch_s")
    if g and c:
        report["neumf_cpu_over_gpu_epoch_s"] = round(c[-1] / max(g[-1], 1e-9), 3)
    write_json(out, report)
    print(json.dumps(report)[:1500])


# ===== the part's summary ===================================================================
def _status(w: Path) -> list[dict[str, Any]]:
    rows = []
    path = w / "status.tsv"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split("\t")
            if len(fields) >= 4:
                rows.append({"step": fields[0], "rc": fields[1], "seconds": float(fields[2]), "limit_s": int(fields[3]),
                             "note": fields[4] if len(fields) > 4 else ""})
    return rows


def _figure(value: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def summarize(part: str, w: Path, out_dir: Path) -> int:
    """$OUT/<part>.json (steps, measured figures, checks, bars, env, settings) and the table."""
    rows = _status(w)
    settings = read_json(w / "settings.json") or {}
    summary: dict[str, Any] = {"part": part, "settings": settings, "env": read_json(w / "env.json"),
                               "steps": {row["step"]: {k: v for k, v in row.items() if k != "step"} for row in rows}}
    figures: dict[str, Any] = {}
    bars: dict[str, Any] = {}
    if part == "correctness":
        summary["pytest_gpu"] = (w / "logs" / "pytest_gpu.log").read_text(errors="replace")[-3000:] \
            if (w / "logs" / "pytest_gpu.log").is_file() else None
        checks = read_json(w / "checks.json")
        bench_bert_report = read_json(w / "bench_bert.json")
        bench_tr = read_json(w / "bench_translation.json")
        speed = read_json(w / "speed.json")
        summary.update(checks=checks, bench_bert=bench_bert_report, bench_translation=bench_tr, speed=speed)
        for key in ("batch32_bf16", "batch256_bf16", "batch32_fp32", "batch256_fp32", "batch8_bf16", "batch8_fp32"):
            section = (bench_bert_report or {}).get(key)
            if isinstance(section, dict) and "nlprec" in section:
                figures[f"bert_{key}_tokens_per_s"] = {
                    "nlprec": _figure(section, "nlprec.tokens_per_s_median"),
                    "transformers": _figure(section, "transformers.tokens_per_s_median"),
                    "ratio": section.get("nlprec_over_transformers")}
        for key, section in (bench_tr or {}).items():
            if key.startswith("max_tokens_") and isinstance(section, dict) and "nlprec" in section:
                figures[f"transformer_{key}_tokens_per_s"] = {
                    "nlprec": _figure(section, "nlprec.tokens_per_s_median"),
                    "marian": _figure(section, "marian.tokens_per_s_median"), "ratio": section.get("nlprec_over_marian")}
        if speed:
            figures["word2vec_words_per_s"] = {"gpu_torch": _figure(speed, "w2v_gpu.words_per_s"),
                                               "gpu_torch_chunk_65536": _figure(speed, "w2v_gpu64k.words_per_s"),
                                               "cpu_numba_all_cores": _figure(speed, "w2v_numba.words_per_s"),
                                               "ratio": speed.get("w2v_gpu_over_numba"),
                                               "ratio_chunk_65536": speed.get("w2v_gpu64k_over_numba")}
            figures["neumf_epoch_s"] = {"gpu": _figure(speed, "neumf_gpu.epoch_s"), "cpu": _figure(speed, "neumf_cpu.epoch_s"),
                                        "cpu_over_gpu": speed.get("neumf_cpu_over_gpu_epoch_s")}
        if checks:
            figures["artifact_checks_failed"] = checks.get("failed")
            for name, check in checks.items():
                if isinstance(check, dict) and check.get("train_tokens_per_s"):
                    figures[f"{name}_cli_train_tokens_per_s"] = round(check["train_tokens_per_s"])
    else:
        bert_eval = read_json(w / "bert_eval.json")
        bleu = read_json(w / "translate_eval.json")
        tr_metrics = read_json(w / "q" / "tr" / "metrics.json") or {}
        tr_config = read_json(w / "q" / "tr" / "config.json") or {}
        bert_metrics = read_json(w / "q" / "bert" / "metrics.json") or {}
        bert_config = read_json(w / "q" / "bert" / "config.json") or {}
        summary.update(quality_data={what: read_json(w / f"quality_data_{what}.json") for what in ("bert", "translation")},
                       bert_eval=bert_eval, translate_eval=bleu)
        history = bert_metrics.get("epochs") or []
        figures["bert"] = {"heldout_mlm_accuracy": (bert_eval or {}).get("mlm_accuracy"),
                           "heldout_mlm_perplexity": (bert_eval or {}).get("mlm_perplexity"),
                           "heldout_nsp_accuracy": (bert_eval or {}).get("nsp_accuracy"),
                           "heldout_examples": (bert_eval or {}).get("examples"),
                           "train_tokens_per_s": bert_metrics.get("train_tokens_per_s"),
                           "train_seconds": bert_metrics.get("train_seconds"),
                           "steps": history[-1].get("step") if history else None, "epochs": len(history),
                           "step_cap": (bert_config.get("trainer_config") or {}).get("max_steps"),
                           "plan": bert_config.get("plan"),
                           "precision": bert_config.get("precision"),
                           "internal_heldout": bert_config.get("heldout")}
        tr_history = tr_metrics.get("epochs") or []
        figures["translation"] = {"test_bleu": (bleu or {}).get("bleu"), "test_chrf": (bleu or {}).get("chrf"),
                                  "bleu_signature": (bleu or {}).get("bleu_signature"),
                                  "test_sentences": (bleu or {}).get("sentences"),
                                  "decode_sentences_per_s": (bleu or {}).get("sentences_per_s"),
                                  "best_val_bleu": tr_metrics.get("best_val_bleu"),
                                  "train_tokens_per_s": tr_metrics.get("train_tokens_per_s"),
                                  "epochs": len(tr_history), "steps": tr_history[-1].get("step") if tr_history else None,
                                  "precision": tr_config.get("precision"), "plan": tr_config.get("plan"),
                                  "val_bleu_by_epoch": [round(r.get("val_bleu", 0), 2) for r in tr_history]}
        mlm = figures["bert"]["heldout_mlm_accuracy"]
        test_bleu = figures["translation"]["test_bleu"]
        bars = {"bert_heldout_mlm_accuracy_ge_0.35": None if mlm is None else mlm >= 0.35,
                "translation_test_bleu_about_40 (>= 38)": None if test_bleu is None else test_bleu >= 38.0}
        if settings.get("quick"):
            bars["note"] = "QUICK smoke run: tiny data and budgets, the bars do not apply"
    summary["figures"] = figures
    summary["bars"] = bars
    failed = [row["step"] for row in rows if row["rc"] not in ("0", "5", "skip")]
    summary["failed_steps"] = failed
    write_json(out_dir / f"{part}.json", summary)
    print(f"\n{'step':26} {'rc':>5} {'s':>7} {'limit':>6}  note")
    for row in rows:
        print(f"{row['step']:26} {row['rc']:>5} {row['seconds']:7.1f} {row['limit_s']:6d}  {row['note'][:90]}")
    print("\nfigures:")
    for key, value in figures.items():
        print(f"  {key}: {json.dumps(value, default=str)[:300]}")
    if bars:
        print("bars: " + json.dumps(bars))
    print(f"failed steps: {failed or 'none'}")
    print(f"wrote {out_dir / (part + '.json')}")
    return 0


# ===== entry ====================================================================================
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare-corpora")
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p = sub.add_parser("expand-corpora")
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p = sub.add_parser("install-wheels")
    p.add_argument("wheels", type=Path)
    p.add_argument("target", type=Path)
    p = sub.add_parser("env")
    p.add_argument("out", type=Path)
    for name in ("make-data", "quality-data"):
        p = sub.add_parser(name)
        p.add_argument("corpora", type=Path)
        p.add_argument("w", type=Path)
        p.add_argument("--quick", action="store_true")
        if name == "quality-data":
            p.add_argument("--what", choices=["bert", "translation"], required=True)
    p = sub.add_parser("bench-bert")
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--budget-s", type=float, default=40.0)
    p = sub.add_parser("bench-translation")
    p.add_argument("w", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--budget-s", type=float, default=40.0)
    p = sub.add_parser("check-artifacts")
    p.add_argument("w", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--threads", type=int, default=4)
    p = sub.add_parser("speed-summary")
    p.add_argument("w", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("summarize")
    p.add_argument("part", choices=["correctness", "quality"])
    p.add_argument("w", type=Path)
    p.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    if args.command == "prepare-corpora":
        prepare_corpora(args.src, args.dest)
    elif args.command == "expand-corpora":
        expand_corpora(args.src, args.dest)
    elif args.command == "install-wheels":
        install_wheels(args.wheels, args.target)
    elif args.command == "env":
        env_report(args.out)
    elif args.command == "make-data":
        make_data(args.corpora, args.w, args.quick)
    elif args.command == "quality-data":
        quality_data(args.corpora, args.w, args.quick, args.what)
    elif args.command == "bench-bert":
        bench_bert(args.out, args.device, args.quick, args.budget_s)
    elif args.command == "bench-translation":
        bench_translation(args.w, args.out, args.device, args.quick, args.budget_s)
    elif args.command == "check-artifacts":
        check_artifacts(args.w, args.out, args.threads)
    elif args.command == "speed-summary":
        speed_summary(args.w, args.out)
    elif args.command == "summarize":
        return summarize(args.part, args.w, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
