"""Serving benchmark: `nlprec serve` under 1, 16 and 64 concurrent clients on loopback.

    python benchmarks/bench_serve.py --out benchmarks/results/serve.json
    python benchmarks/bench_serve.py --parts similar,peer --quick      # a smoke run
    python benchmarks/bench_serve.py table benchmarks/results/serve.json   # the BENCHMARKS.md tables

Parts (all by default, in this order):
- similar: /v1/embeddings/{name}/similar (k 10, one word per request) on IMDb vectors (train + test
  reviews, `nlprec embed train`, 1 epoch, dim 100, min-count 5; about 42k words).
- peer: the app users write today, side by side on the same vectors, machine and clients: a
  minimal FastAPI app calling gensim's `KeyedVectors.most_similar` per request (and, for
  /translate, the translator's one-sentence path per request).
- recommend: /v1/rec/{name}/recommend (k 10) on a NeuMF trained on ml-100k (leave-one-out, 5 epochs).
- translate: /v1/translate/{name} (beam 5, one sentence per request) on a Transformer (the
  translation defaults) trained on fra-eng for --translate-minutes (20; warmup 100, 2,000-token
  batches); at 16 clients also with --max-batch 1 (no batching) and the peer.
- million: /similar over 1M random unit vectors of dim 100 with the exact (flat), IVF and HNSW
  indexes: requests/s, p50/p99, recall@10 against exact, server memory, index build time.
- memory: resident (RSS) and proportional (PSS) memory of `--workers 1, 2, 4` on the IMDb
  vectors (summed over the supervisor and its workers), after every worker answered queries.

The load generator is one asyncio process with N concurrent clients (an httpx.AsyncClient and
one keep-alive connection each), each sending its next request when the last one is answered,
for a fixed number of requests or --seconds, whichever comes first (it always stops). Server and
clients share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, corpora_dir, imdb_token_file, write_json  # noqa: E402

CLIENTS = (1, 16, 64)
PARTS = ("similar", "peer", "recommend", "translate", "million", "memory")


# --- artifacts ---------------------------------------------------------------------------------


def nlprec(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "nlprec_cli.main", *args], check=True)


def imdb_vectors(work: Path, corpora: Path) -> Path:
    out = work / "imdb.npz"
    if not out.is_file():
        corpus = imdb_token_file(corpora, work)
        nlprec("embed", "train", str(corpus), "--out", str(out), "--epochs", "1", "--dim", "100", "--min-count", "5",
               "--threads", "2", "-q")
    binary = work / "imdb.bin"
    if not binary.is_file():
        from nlprec.vectors import Vectors

        Vectors.load(out).save(binary)  # the same vectors in word2vec binary, for gensim
    return out


def neumf_model(work: Path, corpora: Path) -> Path:
    out = work / "neumf"
    if not (out / "config.json").is_file():
        from nlprec.tasks import recommend

        # The speed of serving does not depend on how well the model ranks: 5 epochs (not the
        # tuned defaults, BENCHMARKS.md "Recommenders") keep the set-up short on a shared machine.
        options = recommend.RecommendOptions(model="neumf", trainer_options={"device": "cpu", "epochs": 5}, threads=1,
                                             progress=False)
        recommend.train(corpora / "ml-100k" / "u.data", out, options)
    return out


def transformer_model(work: Path, corpora: Path, minutes: float) -> Path:
    out = work / f"transformer-{minutes:g}min"
    if not (out / "config.json").is_file():
        # A short warmup and smaller batches: more updates in a short budget on a shared machine.
        nlprec("translate", "train", str(corpora / "fra-eng" / "fra.txt"), "--out", str(out), "--max-minutes",
               str(minutes), "--warmup", "100", "--max-tokens", "2000", "--threads", "2", "-q")
    return out


def million_vectors(work: Path, n: int) -> Path:
    out = work / f"random-{n}.npz"
    if not out.is_file():
        from nlprec.vectors import Vectors

        rng = np.random.default_rng(0)
        matrix = rng.standard_normal((n, 100), dtype=np.float32)  # (n, 100)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        Vectors([f"v{i}" for i in range(n)], matrix, {"data": "random unit vectors, seed 0"}).save(out)
    return out


def english_sentences(corpora: Path, n: int = 2000) -> list[str]:
    lines = (corpora / "fra-eng" / "fra.txt").read_text(encoding="utf-8").split("\n")
    rng = np.random.default_rng(0)
    picked = rng.choice(len(lines) - 1, n, replace=False)
    return [lines[i].split("\t")[0] for i in picked if lines[i].strip()]


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A server process on a free loopback port, ready when its `ready_path` answers 200."""

    def __init__(self, command: list[str], ready_path: str, log: Path, timeout: float = 1800) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [part.replace("{port}", str(self.port)) for part in command]
        self.log = open(log, "w")
        started = time.perf_counter()
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited ({self.proc.returncode}); see {log}")
            try:
                if httpx.get(self.url + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - started > timeout:
                self.stop()
                raise SystemExit(f"server not ready after {timeout} s; see {log}")
            time.sleep(0.25)
        self.start_seconds = time.perf_counter() - started

    def pids(self) -> list[int]:
        """The server and every descendant (uvicorn's workers)."""
        found, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            pid = frontier.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += [int(c) for c in children]
            frontier += [int(c) for c in children]
        return found

    def memory_mib(self) -> dict:
        """RSS and PSS (MiB, from /proc/<pid>/smaps_rollup) summed over the process tree, and per
        role: the server (or uvicorn's supervisor), its workers, multiprocessing's resource tracker."""
        totals: dict = {"rss": 0.0, "pss": 0.0, "processes": 0, "roles": {}}
        for pid in self.pids():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            fields = {line.split(":")[0]: line.split()[1] for line in rollup[1:] if ":" in line}
            rss, pss = int(fields.get("Rss", 0)) / 1024, int(fields.get("Pss", 0)) / 1024
            role = ("resource tracker" if "resource_tracker" in command else
                    "worker" if "multiprocessing" in command else "server")
            entry = totals["roles"].setdefault(role, {"processes": 0, "rss": 0.0, "pss": 0.0})
            entry["processes"] += 1
            entry["rss"] = round(entry["rss"] + rss, 1)
            entry["pss"] = round(entry["pss"] + pss, 1)
            totals["rss"] += rss
            totals["pss"] += pss
            totals["processes"] += 1
        totals["rss"], totals["pss"] = round(totals["rss"], 1), round(totals["pss"], 1)
        return totals

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def nlprec_server(models: dict[str, Path], work: Path, label: str, *options: str) -> Process:
    command = [sys.executable, "-m", "nlprec_cli.main", "serve", "--port", "{port}", "--log-level", "warning",
               "--cache-dir", str(work / "index-cache"), "--max-queue", "4096"]
    for name, path in models.items():
        command += ["--model", f"{name}={path}"]
    return Process(command + list(options), "/readyz", work / f"server-{label}.log")


def peer_server(work: Path, vectors: Path | None, translator: Path | None, label: str) -> Process:
    command = [sys.executable, str(Path(__file__).resolve()), "peer", "--port", "{port}"]
    if vectors is not None:
        command += ["--vectors", str(vectors)]
    if translator is not None:
        command += ["--translator", str(translator)]
    return Process(command, "/healthz", work / f"peer-{label}.log")


def run_peer(vectors: str | None, translator: str | None, port: int) -> None:
    """The peer: a minimal FastAPI app, one gensim / one-sentence call per request."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    kv = None
    if vectors:
        from gensim.models import KeyedVectors

        kv = KeyedVectors.load_word2vec_format(vectors, binary=True)
        kv.most_similar(kv.index_to_key[0], topn=1)  # warm (norms)
    model = None
    if translator:
        from nlprec.tasks.translate import Translator

        model = Translator.load(translator)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/similar")
    def similar(body: Similar) -> dict:
        return {"results": [[{"word": w, "score": float(s)} for w, s in kv.most_similar(word, topn=body.k)]
                            for word in body.words]}

    @app.post("/translate")
    def translate(body: Translate) -> dict:
        return {"results": [[{"text": h.text, "score": h.score} for h in model.translate([text], beam=body.beam)[0]]
                            for text in body.texts]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Similar(BaseModel):
    """The peer's /similar body (module level: FastAPI resolves the annotations from here)."""

    words: list[str]
    k: int = 10


class Translate(BaseModel):
    texts: list[str]
    beam: int = 5


# --- load generator ----------------------------------------------------------------------------


async def _load(url: str, make, clients: int, requests: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors: dict[int, int] = {}
    answers: dict[int, object] = {}
    sent = 0
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < requests and time.perf_counter() < deadline:
            number = sent
            sent += 1
            path, body = make(number)
            started = time.perf_counter()
            response = await http.post(path, json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors[response.status_code] = errors.get(response.status_code, 0) + 1
            else:
                answers[number] = response.json()

    # One client (one keep-alive connection) per simulated user: a shared pool of 64 connections
    # costs httpx more per request than the servers it measures.
    https = [httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=1))
             for _ in range(clients)]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for http in https))
        wall = time.perf_counter() - started
    finally:
        for http in https:
            await http.aclose()
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "seconds": round(wall, 2),
            "requests_per_s": round(len(latencies) / wall, 1), "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "errors": errors, "_answers": answers}


def load(url: str, make, clients: int, requests: int, seconds: float) -> dict:
    result = asyncio.run(_load(url, make, clients, requests, seconds))
    answers = result.pop("_answers")
    print(f"  {clients:>3} clients: {result['requests_per_s']:>8.1f} req/s  p50 {result['p50_ms']:>7.2f} ms  "
          f"p99 {result['p99_ms']:>8.2f} ms  ({result['requests']} requests, errors {result['errors']})", flush=True)
    result["_answers"] = answers
    return result


def sweep(url: str, make, requests: int, seconds: float, clients=CLIENTS, model: str | None = None) -> list[dict]:
    """One load level per client count; with `model`, each row gets the mean items per model call."""
    rows = []
    for count in clients:
        before = metrics_batches(url, model) if model else None
        row = load(url, make, count, requests if count > 1 else max(100, requests // 5), seconds)
        row.pop("_answers")
        if model:
            after = metrics_batches(url, model)
            calls = (after["model_calls"] or 0) - (before["model_calls"] or 0)
            row["mean_batch"] = round(((after["items"] or 0) - (before["items"] or 0)) / calls, 2) if calls else None
        rows.append(row)
    return rows


def metrics_batches(url: str, model: str) -> dict:
    import httpx

    text = httpx.get(f"{url}/metrics").text
    values = {}
    for line in text.splitlines():
        for key in ("count", "sum"):
            if line.startswith(f'nlprec_batch_size_{key}{{model="{model}"}}'):
                values[key] = float(line.split()[-1])
    return {"model_calls": values.get("count"), "items": values.get("sum"),
            "mean_batch": round(values["sum"] / values["count"], 2) if values.get("count") else None}


# --- parts -------------------------------------------------------------------------------------


def part_similar(args, work, corpora, results) -> None:
    vectors = imdb_vectors(work, corpora)
    from nlprec.vectors import Vectors

    words = Vectors.load(vectors, mmap=True).keys[:10000]
    rng = np.random.default_rng(0)
    queries = [words[i] for i in rng.integers(0, len(words), 100000)]
    server = nlprec_server({"imdb": vectors}, work, "similar")
    try:
        print(f"/similar on {vectors.name} (nlprec serve):", flush=True)
        rows = sweep(server.url, lambda n: ("/v1/embeddings/imdb/similar", {"words": [queries[n]], "k": 10}),
                     args.requests, args.seconds, model="imdb")
        results["similar"] = {"server": "nlprec serve", "vocabulary": len(words), "rows": rows,
                              "batches": metrics_batches(server.url, "imdb"), "memory_mib": server.memory_mib()}
    finally:
        server.stop()
    if "peer" in args.parts:
        peer = peer_server(work, work / "imdb.bin", None, "similar")
        try:
            print("/similar (peer: FastAPI + gensim most_similar per request):", flush=True)
            rows = sweep(peer.url, lambda n: ("/similar", {"words": [queries[n]], "k": 10}), args.requests,
                         args.seconds)
            results["similar_peer"] = {"server": "FastAPI + gensim KeyedVectors.most_similar", "rows": rows,
                                       "memory_mib": peer.memory_mib()}
        finally:
            peer.stop()


def part_recommend(args, work, corpora, results) -> None:
    model = neumf_model(work, corpora)
    users = [str(u) for u in np.random.default_rng(0).integers(1, 944, 100000)]
    server = nlprec_server({"ml100k": model}, work, "recommend")
    try:
        print("/recommend on ml-100k NeuMF:", flush=True)
        rows = sweep(server.url, lambda n: ("/v1/rec/ml100k/recommend", {"users": [users[n]], "k": 10}),
                     args.requests, args.seconds, model="ml100k")
        results["recommend"] = {"rows": rows, "batches": metrics_batches(server.url, "ml100k")}
    finally:
        server.stop()


def part_translate(args, work, corpora, results) -> None:
    model = transformer_model(work, corpora, args.translate_minutes)
    sentences = english_sentences(corpora)
    make = lambda n: ("/v1/translate/fr", {"texts": [sentences[n % len(sentences)]], "beam": 5})  # noqa: E731
    requests = max(200, args.requests // 10)
    out = {}
    for label, options in (("batched", ()), ("max_batch_1", ("--max-batch", "1"))):
        server = nlprec_server({"fr": model}, work, f"translate-{label}", *options)
        try:
            print(f"/translate, beam 5 ({label}):", flush=True)
            clients = CLIENTS if label == "batched" else (16,)
            out[label] = {"rows": sweep(server.url, make, requests, args.seconds, clients, model="fr"),
                          "batches": metrics_batches(server.url, "fr")}
        finally:
            server.stop()
    if "peer" in args.parts:
        peer = peer_server(work, None, model, "translate")
        try:
            print("/translate (peer: FastAPI + one-sentence translate per request):", flush=True)
            out["peer"] = {"rows": sweep(peer.url, lambda n: ("/translate", make(n)[1]), requests, args.seconds,
                                         (16,))}
        finally:
            peer.stop()
    results["translate"] = out


MILLION_INDEXES = ("flat", "ivf:nlist=1000", "hnsw:hnsw_m=16,ef_construction=40,ef_search=64")


def build_indexes(vectors: Path, work: Path) -> dict[str, float]:
    """Build each index into the server's cache with the server's own code (`_served_index`),
    timed; later server starts memory-map them. Times of earlier builds are kept in builds.json."""
    from nlprec.serve.adapters import _served_index
    from nlprec.vectors import Vectors

    record = work / "index-cache" / f"builds-{vectors.stem}.json"
    times = json.loads(record.read_text()) if record.is_file() else {}
    loaded = Vectors.load(vectors, mmap=True)
    for index in MILLION_INDEXES:
        _, info = _served_index(loaded, vectors, index, work / "index-cache")
        if info["build_seconds"] is not None:
            times[index] = info["build_seconds"]
            record.write_text(json.dumps(times, indent=2))
        print(f"index {index}: built in {times.get(index)} s", flush=True)
    return times


def part_million(args, work, corpora, results) -> None:
    vectors = million_vectors(work, args.million)
    builds = build_indexes(vectors, work)
    if args.build_only:
        return
    rng = np.random.default_rng(1)
    queries = [f"v{i}" for i in rng.integers(0, args.million, 100000)]
    recall_words = [f"v{i}" for i in rng.choice(args.million, 200, replace=False)]
    exact = None
    rows = []
    for index in MILLION_INDEXES:
        kind = index.split(":")[0]
        server = nlprec_server({"m": vectors}, work, f"million-{kind}", "--index", f"m={index}")
        try:
            import httpx

            provenance = httpx.get(f"{server.url}/v1/models").json()["models"][0]["provenance"]["index"]
            response = httpx.post(f"{server.url}/v1/embeddings/m/similar", json={"words": recall_words, "k": 10},
                                  timeout=600)
            if response.status_code != 200:
                raise SystemExit(f"recall query failed: {response.status_code} {response.text}")
            answers = response.json()["results"]
            found = [{r["word"] for r in row} for row in answers]
            exact = found if kind == "flat" else exact
            recall = float(np.mean([len(a & e) / 10 for a, e in zip(found, exact)]))
            print(f"{args.million:,} x 100, {index}: build {builds.get(index)} s, recall@10 {recall:.3f}", flush=True)
            sweep_rows = sweep(server.url, lambda n: ("/v1/embeddings/m/similar", {"words": [queries[n]], "k": 10}),
                               args.requests, args.seconds, model="m")
            rows.append({"index": index, "build_seconds": builds.get(index), "recall@10": round(recall, 4),
                         "index_memory_mapped": provenance["memory_mapped"],
                         "start_seconds": round(server.start_seconds, 1), "memory_mib": server.memory_mib(),
                         "rows": sweep_rows, "batches": metrics_batches(server.url, "m")})
        finally:
            server.stop()
    results["million"] = {"vectors": args.million, "dim": 100, "rows": rows}


def part_memory(args, work, corpora, results) -> None:
    import httpx

    vectors = imdb_vectors(work, corpora)
    rows = []
    for path in (vectors, work / "imdb.bin"):
        for workers in (1, 2, 4):
            server = nlprec_server({"imdb": path}, work, f"memory-{workers}", "--workers", str(workers))
            try:
                for n in range(400):  # spread over the workers by the kernel: every worker answers
                    httpx.post(f"{server.url}/v1/embeddings/imdb/similar", json={"words": ["movie"], "k": 10})
                memory = server.memory_mib()
                print(f"{path.name}, {workers} workers: {memory}", flush=True)
                rows.append({"file": path.name, "workers": workers, **memory})
            finally:
                server.stop()
    results["memory"] = rows


def tables(results: dict) -> str:
    """The BENCHMARKS.md tables of a results file."""
    out = []

    def level_rows(label: str, rows: list[dict]) -> None:
        for row in rows:
            out.append(f"| {label} | {row['clients']} | {row['requests_per_s']:,.1f} | {row['p50_ms']:,.1f} | "
                       f"{row['p99_ms']:,.1f} | {row.get('mean_batch') or '-'} | {row['requests']:,} | "
                       f"{sum(row['errors'].values()) or 0} |")

    out.append("| route, server | clients | requests/s | p50 ms | p99 ms | items per model call | requests | errors |")
    out.append("|---|---|---|---|---|---|---|---|")
    if "similar" in results:
        level_rows("/similar, nlprec serve", results["similar"]["rows"])
    if "similar_peer" in results:
        level_rows("/similar, peer: FastAPI + gensim most_similar", results["similar_peer"]["rows"])
    if "recommend" in results:
        level_rows("/recommend, nlprec serve", results["recommend"]["rows"])
    for label, name in (("nlprec serve", "batched"), ("nlprec serve --max-batch 1", "max_batch_1"),
                        ("peer: FastAPI + one sentence per call", "peer")):
        part = results.get("translate", {}).get(name)
        if part:
            level_rows(f"/translate beam 5, {label}", part["rows"])
    if "million" in results:
        out += ["", "| index | build s | recall@10 | server RSS / PSS MiB | clients | requests/s | p50 ms | p99 ms | "
                    "items per call |", "|---|---|---|---|---|---|---|---|---|"]
        for entry in results["million"]["rows"]:
            memory = entry["memory_mib"]
            for row in entry["rows"]:
                out.append(f"| {entry['index']} | {entry['build_seconds']} | {entry['recall@10']:.3f} | "
                           f"{memory['rss']:,.0f} / {memory['pss']:,.0f} | {row['clients']} | "
                           f"{row['requests_per_s']:,.1f} | {row['p50_ms']:,.1f} | {row['p99_ms']:,.1f} | "
                           f"{row.get('mean_batch') or '-'} |")
    if "memory" in results:
        out += ["", "| vectors file | workers | RSS MiB (all processes) | PSS MiB (all) | PSS MiB (workers) | "
                    "PSS MiB (supervisor + resource tracker) |", "|---|---|---|---|---|---|"]
        for row in results["memory"]:
            roles = row.get("roles", {})
            workers = roles.get("worker", roles.get("server", {}))
            overhead = sum(r["pss"] for name, r in roles.items() if name != "worker") if "worker" in roles else 0
            out.append(f"| {row['file']} | {row['workers']} | {row['rss']:,.0f} | {row['pss']:,.0f} | "
                       f"{workers.get('pss', 0):,.0f} | {overhead:,.0f} |")
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "table":
        print(tables(json.loads(Path(sys.argv[2] if len(sys.argv) > 2 else REPO / "benchmarks" / "results" /
                                     "serve.json").read_text())))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "peer":
        parser = argparse.ArgumentParser()
        parser.add_argument("peer")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--vectors")
        parser.add_argument("--translator")
        peer = parser.parse_args()
        run_peer(peer.vectors, peer.translator, peer.port)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/serve.json (--quick: serve_quick.json)")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "nlprec" / "bench-serve")
    parser.add_argument("--corpora")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--requests", type=int, default=3000, help="requests per level (1 client: a fifth)")
    parser.add_argument("--seconds", type=float, default=15.0, help="most seconds per level")
    parser.add_argument("--million", type=int, default=1_000_000, help="vectors in the large-catalogue part")
    parser.add_argument("--translate-minutes", type=float, default=20.0, help="training time of the Transformer")
    parser.add_argument("--quick", action="store_true", help="smoke run: few requests, 100k vectors")
    parser.add_argument("--build-only", action="store_true", help="million: build the indexes and stop")
    args = parser.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if args.quick:
        args.requests, args.seconds, args.million = 200, 3.0, min(args.million, 100_000)
        args.translate_minutes = min(args.translate_minutes, 0.5)
    args.out = args.out or REPO / "benchmarks" / "results" / ("serve_quick.json" if args.quick else "serve.json")
    args.work.mkdir(parents=True, exist_ok=True)
    corpora = corpora_dir(args.corpora)
    results: dict = {}
    if os.path.exists(args.out):  # parts not run again keep their earlier numbers
        results.update({k: v for k, v in json.loads(args.out.read_text()).items() if k not in ("machine",)})
    results.update({"benchmark": "serve", "command": " ".join(sys.argv), "load_generator":
                    "one asyncio process, N clients with an httpx.AsyncClient and one connection each, loopback, "
                    "same machine as the server"})
    for part, run in (("similar", part_similar), ("recommend", part_recommend), ("translate", part_translate),
                      ("million", part_million), ("memory", part_memory)):
        if part in args.parts:
            run(args, args.work, corpora, results)
            write_json(args.out, results)  # after every part, so a long run keeps what it measured
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
