"""Limits (413, 401, 429 + Retry-After, 504), reload without downtime (a failed one keeps the old
models), and start-up refusing a bad --model with one line and exit status 2."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from nlprec.tasks import recommend
from nlprec.vectors import Vectors
from nlprec_cli.main import main

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def strict(vectors_path, index_cache, start_server):
    """One model, a queue of one, batches that wait 1.5 s to fill, a 0.5 s timeout, a 2 kB body
    limit and an API key (from the environment)."""
    running = start_server(["--model", f"words={vectors_path}", "--max-queue", "1", "--max-wait-ms", "1500",
                      "--max-batch", "1000", "--timeout", "0.5", "--max-body-bytes", "2000"],
                           env={"NLPREC_API_KEY": KEY}, cache=index_cache)
    yield running
    running.stop()


def test_api_key_guards_every_route_but_health_and_metrics(strict):
    url = f"{strict.url}/v1/embeddings/words/similar"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.post(url, json={"words": ["cat"]}, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert "API key" in response.json()["error"]
    assert httpx.get(f"{strict.url}/v1/models").status_code == 401
    assert httpx.post(f"{strict.url}/admin/reload").status_code == 401
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{strict.url}{open_path}").status_code == 200
    assert httpx.get(f"{strict.url}/v1/models", headers=AUTH).status_code == 200


def test_oversized_body_is_413_declared_or_streamed(strict):
    url = f"{strict.url}/v1/embeddings/words/similar"
    body = json.dumps({"words": ["cat"] * 1000}).encode()
    response = httpx.post(url, content=body, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 413 and "over the limit of 2,000 bytes" in response.json()["error"]

    def chunks():  # no Content-Length: the limit is counted while reading
        for start in range(0, len(body), 500):
            yield body[start:start + 500]

    response = httpx.post(url, content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 413 and "over the limit" in response.json()["error"]


def test_full_queue_is_429_with_retry_after_and_a_slow_answer_is_504(strict):
    async def scenario():
        async with httpx.AsyncClient(base_url=strict.url, headers=AUTH, timeout=10) as client:
            first = asyncio.create_task(client.post("/v1/embeddings/words/similar", json={"words": ["cat"]}))
            await asyncio.sleep(0.2)  # the first waits in the queue for its batch to fill
            second = await client.post("/v1/embeddings/words/similar", json={"words": ["dog"]})
            return await first, second

    first, second = asyncio.run(scenario())
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
    assert "queue limit" in second.json()["error"]
    assert first.status_code == 504 and "0.5 s request timeout" in first.json()["error"]
    # The timed-out request left the queue: the next one is queued again (and times out again).
    again = httpx.post(f"{strict.url}/v1/embeddings/words/similar", json={"words": ["cat"]}, headers=AUTH)
    assert again.status_code == 504
    metrics = httpx.get(f"{strict.url}/metrics").text
    assert 'nlprec_errors_total{status="429"}' in metrics and 'nlprec_errors_total{status="504"}' in metrics


@pytest.fixture()
def reloadable(vectors_path, mf_dir, tmp_path, index_cache, start_server):
    words, mf = tmp_path / "words.npz", tmp_path / "mf"
    shutil.copy(vectors_path, words)
    shutil.copytree(mf_dir, mf, ignore=shutil.ignore_patterns("checkpoints"))
    running = start_server(["--model", f"words={words}", "--model", f"mf={mf}"], cache=index_cache)
    yield running, words, mf
    running.stop()


def _similar(server, word="cat"):
    return httpx.post(f"{server.url}/v1/embeddings/words/similar", json={"words": [word], "k": 3}, timeout=30)


def test_reload_swaps_in_new_models_and_a_failed_one_keeps_the_old(reloadable, mf_dir):
    server, words, mf = reloadable
    before = _similar(server).json()
    recommended = httpx.post(f"{server.url}/v1/rec/mf/recommend", json={"users": ["100"]}).json()

    # New vectors under the same path (written atomically, as nlprec writes files): reload serves
    # them, and requests during the reload are answered by the old or the new model, never refused.
    vectors = Vectors.load(words)
    rng = np.random.default_rng(1)
    Vectors(vectors.keys, rng.standard_normal(vectors.matrix.shape), vectors.meta).save(words)

    async def similar_during_reload():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            reload = asyncio.create_task(client.post("/admin/reload"))
            answers = []
            while not reload.done() or len(answers) < 5:
                answers.append(await client.post("/v1/embeddings/words/similar", json={"words": ["cat"], "k": 3}))
            return await reload, answers

    response, during = asyncio.run(similar_during_reload())
    assert response.status_code == 200 and response.json()["ok"] is True
    assert all(a.status_code == 200 for a in during), [a.text for a in during if a.status_code != 200]
    after = _similar(server).json()
    assert [r["word"] for r in after["results"][0]] == [w for w, _ in Vectors.load(words).most_similar("cat", 3)[0]]
    assert after != before

    # A broken model folder: the reload fails with the reason, every old model keeps answering.
    (mf / "model.pt").write_bytes(b"not a torch file")

    async def serve_during_reload():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            reload = asyncio.create_task(client.post("/admin/reload"))
            answers = []
            while not reload.done():
                answers.append(await client.post("/v1/rec/mf/recommend", json={"users": ["100"]}))
            return await reload, answers

    failed, answers = asyncio.run(serve_during_reload())
    assert failed.status_code == 500
    assert "reload failed, still serving the old models: --model mf=" in failed.json()["error"]
    assert "model.pt" in failed.json()["error"]
    assert answers and all(a.status_code == 200 and a.json() == recommended for a in answers)
    assert _similar(server).json() == after
    assert httpx.get(f"{server.url}/v1/models").json()["last_reload"]["ok"] is False

    # SIGHUP reloads too, once the folder is whole again.
    shutil.copy(mf_dir / "model.pt", mf / "model.pt")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        last = httpx.get(f"{server.url}/v1/models").json()["last_reload"]
        if last["ok"]:
            break
        time.sleep(0.2)
    assert last["ok"] is True
    assert httpx.post(f"{server.url}/v1/rec/mf/recommend", json={"users": ["100"]}).json() == recommended
    assert 'nlprec_reloads_total{result="failed"} 1.0' in httpx.get(f"{server.url}/metrics").text


def run_cli(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.npz", "does not exist"),
    (lambda tmp: tmp, "a folder without config.json is not a model folder"),
    (lambda tmp: _write(tmp / "notes.md", "hello"), "cannot tell what it holds"),
    (lambda tmp: _write(tmp / "bad.vec", "hello world\n"), "expected '<count> <dim>' header"),
    (lambda tmp: _write(tmp / "m" / "config.json", '{"format": "something-else"}').parent,
     "is not a model nlprec serve"),
])
def test_a_bad_model_stops_start_up_with_one_line_and_status_2(tmp_path, capsys, port, make, message):
    code, err = run_cli(["serve", "--model", f"x={make(tmp_path)}", "--port", str(port)], capsys)
    assert code == 2 and message in err and err.startswith("error: ") and err.count("\n") == 1, err


def test_unreadable_weights_are_one_line_errors(tmp_path, mf_dir, capsys, port):
    broken = tmp_path / "mf"
    shutil.copytree(mf_dir, broken, ignore=shutil.ignore_patterns("checkpoints"))
    (broken / "model.pt").write_bytes(b"garbage")
    code, err = run_cli(["serve", "--model", f"mf={broken}", "--port", str(port)], capsys)
    assert code == 2 and err.startswith("error: --model mf=") and "model.pt" in err and err.count("\n") == 1, err


def test_a_bad_model_stops_the_process_before_the_port_opens(tmp_path, port):
    bad = _write(tmp_path / "bad.vec", "2 3\ncat 1 2\n")
    result = subprocess.run([sys.executable, "-m", "nlprec_cli.main", "serve", "--model", f"v={bad}",
                             "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "bad.vec is truncated" in result.stderr
    assert result.stderr.count("\n") == 1 and "Uvicorn running" not in result.stderr, result.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # the port was never taken


def test_bad_options_are_one_line_errors(tmp_path, capsys, vectors_path):
    code, err = run_cli(["serve", "--model", "words"], capsys)
    assert code == 2 and "expected NAME=PATH" in err
    code, err = run_cli(["serve", "--model", f"a={vectors_path}", "--model", f"a={vectors_path}"], capsys)
    assert code == 2 and "given twice" in err
    code, err = run_cli(["serve", "--model", f"a={vectors_path}", "--index", "a=lsh"], capsys)
    assert code == 2 and "KIND one of flat, ivf, hnsw" in err
    code, err = run_cli(["serve", "--model", f"a={vectors_path}", "--index", "a=hnsw:efs=3"], capsys)
    assert code == 2 and "unknown option; options: nlist, nprobe" in err
    code, err = run_cli(["serve", "--model", f"a={vectors_path}", "--index", "b=hnsw"], capsys)
    assert code == 2 and "no --model named 'b'" in err
    code, err = run_cli(["serve", "--model", f"a={vectors_path}", "--api-key-file", str(tmp_path / "none")], capsys)
    assert code == 2 and "--api-key-file" in err


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_two_workers_share_the_mapped_vectors_and_answer_alike(vectors_path, index_cache, start_server):
    running = start_server(["--model", f"words={vectors_path}", "--workers", "2"], cache=index_cache)
    try:
        body = {"words": ["cat", "king"], "k": 4}
        answers = [httpx.post(f"{running.url}/v1/embeddings/words/similar", json=body).json() for _ in range(20)]
        assert all(answer == answers[0] for answer in answers)
        want = Vectors.load(vectors_path).most_similar(body["words"], 4)
        assert [[r["word"] for r in row] for row in answers[0]["results"]] == [[w for w, _ in row] for row in want]
        workers = Path(f"/proc/{running.proc.pid}/task/{running.proc.pid}/children").read_text().split()
        mapped = [pid for pid in workers if str(vectors_path) in Path(f"/proc/{pid}/maps").read_text()]
        assert len(mapped) == 2, "both workers map the vectors file"
    finally:
        running.stop()


def test_a_bad_model_stops_multi_worker_start_up_too(tmp_path, capsys, port):
    code, err = run_cli(["serve", "--model", f"x={_write(tmp_path / 'bad.vec', 'nope')}", "--workers", "2",
                         "--port", str(port)], capsys)
    assert code == 2 and "expected '<count> <dim>' header" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("origins, allowed", [((), None), (("https://app.example",), "https://app.example")])
def test_cors_is_off_unless_an_origin_is_given(vectors_path, index_cache, start_server, origins, allowed):
    flags = [arg for origin in origins for arg in ("--cors-origin", origin)]
    running = start_server(["--model", f"words={vectors_path}", *flags], cache=index_cache)
    try:
        response = httpx.options(f"{running.url}/v1/models", headers={"Origin": "https://app.example",
                                                                      "Access-Control-Request-Method": "GET"})
        assert response.headers.get("access-control-allow-origin") == allowed
    finally:
        running.stop()
