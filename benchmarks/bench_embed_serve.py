"""Sentence-embedding serving: `nlprec serve`'s POST /v1/embeddings against a minimal FastAPI app
that calls `SentenceTransformer.encode` per request, side by side, at 1, 16 and 64 clients.

    python benchmarks/bench_embed_serve.py --out benchmarks/results/embed_serve.json
    python benchmarks/bench_embed_serve.py --quick          # a smoke run (few seconds per level)
    python benchmarks/bench_embed_serve.py passes --threads 1   # in-process: what a pass and a token cost

The model is MiniLM-L6-shaped (6 layers, hidden 384, 12 heads, FFN 1,536, 30,522 pieces, 512
positions: the cost of sentence-transformers/all-MiniLM-L6-v2) with random weights made here:
a transformers `BertModel` (seed 0) and an uncased WordPiece vocabulary of 30,522 pieces trained by
`tokenizers` on the IMDb train reviews, saved as a sentence-transformers folder (mean pooling,
L2-normalised, as all-MiniLM-L6-v2) that the peer loads, and imported by `nlprec bert import`
into the nlprec folder that `nlprec serve` serves: the same weights and tokenizer on both sides
(checked: the two servers' vectors for the same sentences agree to 1e-4).

Requests: one IMDb test-set sentence each (3 to 150 words, their natural mix of lengths),
`encoding_format` "float". The peer is the app users write: a FastAPI `def` route (run in
FastAPI's thread pool) calling `model.encode([text])` and returning OpenAI's JSON; both servers
run in one uvicorn process with 2 torch threads. The two servers run at the same time and are
measured in turns (round r: one, then the other; the order alternates), so load from other work
on the machine falls on both alike. The load generator is one asyncio process with N clients,
each with one keep-alive connection, each sending its next request when the last is answered.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import Process, metrics_batches  # noqa: E402
from common import REPO, corpora_dir, write_json  # noqa: E402

CLIENTS = (1, 16, 64)
SIZES = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
         "intermediate_size": 1536, "max_position_embeddings": 512}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


# --- the model, built once into --work ------------------------------------------------------------


def imdb_texts(corpora: Path, split: str) -> list[str]:
    """The reviews of imdb_{split}.tsv.gz (label<TAB>text), HTML line breaks as spaces."""
    with gzip.open(corpora / "imdb" / f"imdb_{split}.tsv.gz", "rt", encoding="utf-8", newline="\n") as lines:
        return [line.rstrip("\n").split("\t", 1)[1].replace("<br />", " ") for line in lines]


def imdb_sentences(corpora: Path, n: int, seed: int = 0) -> list[str]:
    """`n` sentences of 3 to 150 words drawn (seeded) from the IMDb test reviews."""
    sentences = [s for review in imdb_texts(corpora, "test") for s in SENTENCE_END.split(review)
                 if 3 <= len(s.split()) <= 150]
    picked = np.random.default_rng(seed).choice(len(sentences), n, replace=False)
    return [sentences[i] for i in picked]


def sentence_transformers_folder(work: Path, corpora: Path) -> Path:
    """A MiniLM-L6-shaped sentence-transformers folder with random weights and an IMDb WordPiece vocabulary."""
    out = work / "minilm-st"
    if (out / "modules.json").is_file():
        return out
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    raw = work / "minilm-hf"
    raw.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    wordpiece.train_from_iterator(imdb_texts(corpora, "train"), vocab_size=SIZES["vocab_size"], min_frequency=1)
    wordpiece.save_model(str(raw))  # vocab.txt
    tokenizer = BertTokenizerFast(str(raw / "vocab.txt"), do_lower_case=True, model_max_length=512)
    vocab = len(tokenizer)
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(**{**SIZES, "vocab_size": max(vocab, SIZES["vocab_size"])}), add_pooling_layer=True)
    encoder.save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = models.Transformer(str(raw), max_seq_length=512)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(out))
    return out


def nlprec_folder(work: Path, st_folder: Path) -> Path:
    """`nlprec bert import` of the sentence-transformers folder."""
    out = work / "minilm-nlprec"
    if not (out / "config.json").is_file():
        subprocess.run([sys.executable, "-m", "nlprec_cli.main", "bert", "import", str(st_folder), "--out", str(out)],
                       check=True)
    return out


# --- the peer ---------------------------------------------------------------------------------------


def run_peer(folder: str, port: int, threads: int) -> None:
    """A minimal FastAPI app: POST /v1/embeddings calls SentenceTransformer.encode per request."""
    import torch
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(folder, device="cpu")
    model.encode(["warm up"])

    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/v1/embeddings")
    def embeddings(body: Embed) -> JSONResponse:
        texts = [body.input] if isinstance(body.input, str) else body.input
        vectors = model.encode(texts, convert_to_numpy=True)  # (N, 384), normalised by the folder's Normalize
        return JSONResponse({"object": "list", "model": body.model,
                             "data": [{"object": "embedding", "index": i, "embedding": row.tolist()}
                                      for i, row in enumerate(vectors)]})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Embed(BaseModel):
    """The peer's request body (module level: FastAPI resolves the annotations from here)."""

    model: str
    input: str | list[str]
    encoding_format: str = "float"


# --- load -------------------------------------------------------------------------------------------


async def _load(url: str, sentences: list[str], first: int, clients: int, seconds: float) -> dict:
    """N clients for `seconds`, sentence first, first + 1, ...: latencies (s) and non-200 answers."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = first
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.perf_counter() < deadline:
            text = sentences[sent % len(sentences)]
            sent += 1
            started = time.perf_counter()
            response = await http.post("/v1/embeddings", json={"model": "minilm", "input": text,
                                                               "encoding_format": "float"})
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
            else:
                response.json()

    https = [httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=1))
             for _ in range(clients)]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for http in https))
        wall = time.perf_counter() - started
    finally:
        for http in https:
            await http.aclose()
    return {"latencies": latencies, "seconds": wall, "errors": errors, "next": sent}


def cpu_seconds(server: Process) -> float:
    """User + system CPU seconds of the server's process tree so far (/proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in server.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def measured_turn(server: Process, sentences: list[str], first: int, clients: int, seconds: float) -> dict:
    """One turn of load on one server, with the CPU time the server spent in it."""
    before = cpu_seconds(server)
    run = asyncio.run(_load(server.url, sentences, first, clients, seconds))
    run["cpu_seconds"] = cpu_seconds(server) - before
    return run


def summarise(runs: list[dict], clients: int) -> dict:
    latencies = np.array([x for run in runs for x in run["latencies"]]) * 1000  # (requests,) ms
    if not len(latencies):
        return {"clients": clients, "requests": 0, "errors": "no request answered within the turn"}
    seconds = sum(run["seconds"] for run in runs)
    cpu = sum(run["cpu_seconds"] for run in runs)
    errors: dict[str, int] = {}
    for run in runs:
        for code, count in run["errors"].items():
            errors[code] = errors.get(code, 0) + count
    return {"clients": clients, "requests": int(len(latencies)), "seconds": round(seconds, 2),
            "requests_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "p99_ms": round(float(np.percentile(latencies, 99)), 1), "non_200": sum(errors.values()),
            "server_cpu_ms_per_request": round(cpu * 1000 / len(latencies), 2),
            "errors": errors, "rounds_requests_per_s": [round(len(r["latencies"]) / r["seconds"], 1) for r in runs]}


def same_vectors(ours: str, peer: str, sentences: list[str]) -> float:
    """Largest difference between the two servers' vectors of the same sentences."""
    import httpx

    def ask(url: str) -> np.ndarray:
        body = {"model": "minilm", "input": sentences, "encoding_format": "float"}
        data = httpx.post(f"{url}/v1/embeddings", json=body, timeout=300).json()["data"]
        return np.array([item["embedding"] for item in data], dtype=np.float32)

    return float(np.abs(ask(ours) - ask(peer)).max())


def passes_part(folder: Path, sentences: list[str], threads: int) -> dict:
    """In-process, no HTTP: model CPU ms per sentence for groups of B IMDb sentences embedded as
    one pass padded to the longest, as the planned passes of `plan_passes`, and one pass each;
    and the cost of one pass of 8 tokens against one of 128 (what a pass and a token cost)."""
    import torch

    from nlprec.data.batching import plan_passes
    from nlprec.serve.openai_embeddings import DEFAULT_BATCH_TOKENS, run_batch
    from nlprec.tasks.bert import PretrainedBert

    torch.set_num_threads(threads)
    model = PretrainedBert.load(folder)
    ids = model.tokenize(sentences[:640], truncate=True)

    def cpu_ms(function, repeats: int) -> float:
        function()
        started = time.process_time()
        for _ in range(repeats):
            function()
        return (time.process_time() - started) / repeats * 1000

    mean_tokens = round(float(np.mean([len(i) for i in ids])), 1)
    out: dict = {"threads": threads, "sentences": len(ids), "mean_tokens": mean_tokens, "pass_ms": {}}
    for tokens in (8, 128):
        row = [[model.cls_id, *[2000 + i for i in range(tokens - 2)], model.sep_id]]
        out["pass_ms"][str(tokens)] = round(cpu_ms(lambda: model.embed_ids(row), 20), 2)
    for size in (1, 4, 16, 64):
        groups = [ids[i:i + size] for i in range(0, len(ids), size)]
        one_pass = cpu_ms(lambda: [model.embed_ids(group) for group in groups], 1) / len(ids)
        planned = cpu_ms(lambda: [run_batch(model, ("embed", DEFAULT_BATCH_TOKENS), group) for group in groups],
                         1) / len(ids)
        passes = sum(len(plan_passes(np.sort([len(i) for i in g]), DEFAULT_BATCH_TOKENS)) for g in groups)
        out[f"group_{size}"] = {"one_padded_pass_ms_per_sentence": round(one_pass, 2),
                                "planned_passes_ms_per_sentence": round(planned, 2),
                                "passes_per_sentence": round(passes / len(ids), 3)}
        print(f"groups of {size:>2}: one padded pass {one_pass:6.2f} ms/sentence, planned passes {planned:6.2f} "
              f"({passes / len(ids):.2f} passes/sentence)", flush=True)
    return out


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                "unknown")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "peer":
        parser = argparse.ArgumentParser()
        parser.add_argument("peer")
        parser.add_argument("--folder", required=True)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--threads", type=int, default=2)
        args = parser.parse_args()
        run_peer(args.folder, args.port, args.threads)
        return
    passes_only = len(sys.argv) > 1 and sys.argv[1] == "passes"
    if passes_only:
        sys.argv.pop(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/embed_serve.json (passes: "
                                                 "embed_passes.json)")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "nlprec" / "bench-embed-serve")
    parser.add_argument("--corpora")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per server per round and level")
    parser.add_argument("--rounds", type=int, default=3, help="turns per level (each server measured once a turn)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each server")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s turns, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2.0, 1
    out = args.out or REPO / "benchmarks" / "results" / ("embed_serve_quick.json" if args.quick else "embed_serve.json")
    corpora = corpora_dir(args.corpora)
    args.work.mkdir(parents=True, exist_ok=True)
    st_folder = sentence_transformers_folder(args.work, corpora)
    ours_folder = nlprec_folder(args.work, st_folder)
    sentences = imdb_sentences(corpora, 20000)
    if passes_only:
        out = args.out or REPO / "benchmarks" / "results" / "embed_passes.json"
        write_json(out, {"command": " ".join(["python", "benchmarks/bench_embed_serve.py passes", *sys.argv[1:]]),
                         "cpu_model": lscpu_model(), "load_average_start": os.getloadavg(),
                         "passes": passes_part(ours_folder, sentences, args.threads),
                         "load_average_end": os.getloadavg()})
        print(f"wrote {out}")
        return
    env_threads = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    os.environ.update(env_threads)
    ours = Process([sys.executable, "-m", "nlprec_cli.main", "serve", "--port", "{port}", "--log-level", "warning",
                    "--threads", str(args.threads), "--max-queue", "4096", "--model", f"minilm={ours_folder}"],
                   "/readyz", args.work / "server-nlprec.log")
    peer = Process([sys.executable, str(Path(__file__).resolve()), "peer", "--folder", str(st_folder), "--port",
                    "{port}", "--threads", str(args.threads)], "/healthz", args.work / "server-peer.log")
    servers = {"nlprec serve": ours, "FastAPI + SentenceTransformer.encode": peer}
    results: dict = {"command": " ".join(["python", "benchmarks/bench_embed_serve.py", *sys.argv[1:]]),
                     "cpu_model": lscpu_model(), "load_average_start": os.getloadavg(),
                     "model": {**SIZES, "pooling": "mean", "normalize": True, "weights": "random (torch seed 0)"},
                     "threads": args.threads, "seconds_per_turn": args.seconds, "rounds": args.rounds,
                     "sentences": {"count": len(sentences), "mean_words": round(float(np.mean(
                         [len(s.split()) for s in sentences])), 1)}, "levels": {}}
    try:
        results["max_abs_difference"] = same_vectors(ours.url, peer.url, sentences[:32])
        print(f"largest difference between the servers' vectors: {results['max_abs_difference']:.2e}", flush=True)
        for name, server in servers.items():  # warm both (first calls of each shape)
            asyncio.run(_load(server.url, sentences, 0, 4, 2.0))
        first = 0
        for clients in CLIENTS:
            runs: dict[str, list[dict]] = {name: [] for name in servers}
            before = metrics_batches(ours.url, "minilm")
            for turn in range(args.rounds):
                order = list(servers) if turn % 2 == 0 else list(reversed(servers))
                for name in order:
                    run = measured_turn(servers[name], sentences, first, clients, args.seconds)
                    runs[name].append(run)
                first = run["next"]
            after = metrics_batches(ours.url, "minilm")
            level = {name: summarise(runs[name], clients) for name in servers}
            calls = (after["model_calls"] or 0) - (before["model_calls"] or 0)
            level["nlprec serve"]["mean_inputs_per_model_call"] = round(
                ((after["items"] or 0) - (before["items"] or 0)) / calls, 2) if calls else None
            results["levels"][str(clients)] = level
            for name, row in level.items():
                print(f"{clients:>3} clients, {name:<38} {row.get('requests_per_s', 0):>7.1f} req/s  p50 "
                      f"{row.get('p50_ms', 0):>8.1f} ms  p99 {row.get('p99_ms', 0):>8.1f} ms  non-200 "
                      f"{row.get('non_200')}  server CPU {row.get('server_cpu_ms_per_request')} ms/request", flush=True)
            write_json(out, results)
    finally:
        ours.stop()
        peer.stop()
    results["load_average_end"] = os.getloadavg()
    write_json(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
