"""POST /v1/embeddings through the official `openai` client against a real `nlprec serve` on
loopback: the same vectors as `PretrainedBert.embed` and `nlprec bert embed`, float and base64,
batched or alone; every refusal in OpenAI's error shape; no 5xx on schema-generated bodies."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from nlprec.serve.openai_embeddings import run_batch
from nlprec.tasks.bert import PretrainedBert
from serve.test_fuzz_schema import ANY_JSON, strategy

KEY = "test-key-123"
WORDS = "the cat dog bird sat ran on a mat big small red blue house tree park".split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """Texts of 1 to 12 words from the toy BERT's vocabulary (all within its 32 tokens)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(1, 13))) + "." for _ in range(n)]


LONG = " ".join(["house park tree"] * 20)  # over the toy model's 32 tokens


@pytest.fixture(scope="module")
def bert(bert_dir) -> PretrainedBert:
    torch.set_num_threads(1)
    return PretrainedBert.load(bert_dir)


@pytest.fixture(scope="module")
def served(start_server, bert_dir, vectors_path, index_cache):
    """One BERT ("b") and word vectors ("words") behind an API key; batches merge for 20 ms."""
    running = start_server(["--model", f"b={bert_dir}", "--model", f"words={vectors_path}", "--max-items", "40",
                            "--max-wait-ms", "20", "--max-batch-tokens", "256"], env={"NLPREC_API_KEY": KEY},
                           cache=index_cache)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key=KEY, max_retries=0, timeout=60)


def post(served, body, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{served.url}/v1/embeddings", content=content, headers=headers, timeout=60)


def vectors_of(response) -> np.ndarray:
    assert [item.index for item in response.data] == list(range(len(response.data)))
    return np.array([item.embedding for item in response.data], dtype=np.float32)


def test_openai_client_gets_the_vectors_of_embed_as_float_and_base64(client, bert):
    texts = sentences(12)
    expected = bert.embed(texts)  # (12, d)
    as_float = client.embeddings.create(model="b", input=texts, encoding_format="float")
    assert as_float.object == "list" and as_float.model == "b" and len(as_float.data) == 12
    np.testing.assert_allclose(vectors_of(as_float), expected, atol=1e-5)
    tokens = sum(map(len, bert.tokenize(texts)))
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens == tokens
    decoded = client.embeddings.create(model="b", input=texts)  # the client asks for base64 and decodes it
    np.testing.assert_allclose(vectors_of(decoded), expected, atol=1e-5)
    raw = client.embeddings.create(model="b", input=texts, encoding_format="base64")
    as_bytes = np.stack([np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") for item in raw.data])
    np.testing.assert_allclose(as_bytes, expected, atol=1e-5)


def test_the_same_vectors_as_the_cli(client, bert_dir, tmp_path):
    texts = sentences(9, seed=3)
    out = tmp_path / "vectors.npy"
    subprocess.run([sys.executable, "-m", "nlprec_cli.main", "bert", "embed", str(bert_dir), "--out", str(out),
                    "--threads", "1"], input="\n".join(texts) + "\n", text=True, check=True, timeout=120)
    answer = client.embeddings.create(model="b", input=texts, encoding_format="float")
    np.testing.assert_allclose(vectors_of(answer), np.load(out), atol=1e-5)


def test_one_string_and_dimensions(client, bert):
    expected = bert.embed(["the big cat sat."])[0]
    one = client.embeddings.create(model="b", input="the big cat sat.", encoding_format="float", user="someone")
    assert len(one.data) == 1 and one.data[0].index == 0
    np.testing.assert_allclose(one.data[0].embedding, expected, atol=1e-5)
    assert not bert.normalize  # nlprec's own folders are not normalised: the first D components as they are
    cut = client.embeddings.create(model="b", input="the big cat sat.", dimensions=8, encoding_format="float")
    np.testing.assert_allclose(cut.data[0].embedding, expected[:8], atol=1e-5)
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="b", input="a cat", dimensions=bert.dimensions + 1)
    assert refused.value.body["param"] == "dimensions" and str(bert.dimensions) in refused.value.body["message"]


def test_concurrent_requests_are_batched_and_answer_as_alone(served, client, bert):
    requests = [sentences(1 + i % 4, seed=100 + i) for i in range(32)]
    alone = [bert.embed(texts) for texts in requests]

    def ask(texts):
        return vectors_of(client.embeddings.create(model="b", input=texts, encoding_format="float"))

    before = _batches(served)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, requests))
    for got, expected in zip(answers, alone):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert _batches(served) - before < len(requests)  # some requests shared a model call


def _batches(served) -> float:
    """How many batched model calls model "b" has run (its Prometheus histogram's count)."""
    text = httpx.get(f"{served.url}/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('nlprec_batch_size_count{model="b"}'))


def test_token_budget_packing_does_not_change_vectors(bert):
    ids = bert.tokenize(sentences(20, seed=7))
    whole = np.stack(run_batch(bert, ("embed", 1 << 20), ids))
    packed = np.stack(run_batch(bert, ("embed", 40), ids))  # many small forward passes, one text each at worst
    np.testing.assert_allclose(packed, whole, atol=1e-5)
    np.testing.assert_allclose(whole, bert.embed_ids(ids), atol=1e-5)


def test_long_input_is_422_unless_truncation_is_asked(client, bert):
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.embeddings.create(model="b", input=["a cat", LONG])
    error = refused.value.body
    assert error["code"] == "input_too_long" and error["param"] == "input"
    assert "input 1" in error["message"] and str(bert.max_tokens) in error["message"] and "truncate" in error["message"]
    cut = client.embeddings.create(model="b", input=["a cat", LONG], encoding_format="float",
                                   extra_body={"truncate": True})
    np.testing.assert_allclose(vectors_of(cut), bert.embed(["a cat", LONG]), atol=1e-5)
    assert cut.usage.prompt_tokens == len(bert.tokenize(["a cat"])[0]) + bert.max_tokens


def test_unknown_model_other_kind_and_api_key(served, client):
    with pytest.raises(openai.NotFoundError) as unknown:
        client.embeddings.create(model="nope", input="a cat")
    assert unknown.value.body["code"] == "model_not_found" and "served BERT models: b" in unknown.value.body["message"]
    with pytest.raises(openai.NotFoundError) as words:
        client.embeddings.create(model="words", input="a cat")
    assert "not a BERT" in words.value.body["message"]
    wrong = openai.OpenAI(base_url=f"{served.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.embeddings.create(model="b", input="a cat")
    assert denied.value.body["code"] == "invalid_api_key"
    assert post(served, {"model": "b", "input": "a"}, key=None).json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("body, param", [
    ({"model": "b", "input": [1, 2, 3]}, "input"),  # token ids (OpenAI's other form)
    ({"model": "b", "input": [[1, 2], [3]]}, "input"),
    ({"model": "b", "input": []}, "input"),
    ({"model": "b", "input": ["a cat", ""]}, "input.1"),
    ({"model": "b", "input": "a cat", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "b", "input": "a cat", "dimensions": 0}, "dimensions"),
    ({"model": "b", "input": "a cat", "temperature": 1}, "temperature"),
    ({"input": "a cat"}, "model"),
    ({"model": "b", "input": 5}, "input"),
    (b"{not json", None),
    ([1, 2], None),
])
def test_bad_bodies_are_400_in_openai_shape(served, body, param):
    response = post(served, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["param"] == param and "\n" not in error["message"], error


def test_too_many_inputs_is_422(served):
    response = post(served, {"model": "b", "input": sentences(41)})
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_inputs"
    assert "40" in response.json()["error"]["message"]


def test_other_routes_keep_working_and_their_shape(served):
    headers = {"Authorization": f"Bearer {KEY}"}
    similar = httpx.post(f"{served.url}/v1/embeddings/words/similar", json={"words": ["cat"], "k": 2}, headers=headers)
    assert similar.status_code == 200 and len(similar.json()["results"][0]) == 2
    filled = httpx.post(f"{served.url}/v1/fill-mask/b", json={"texts": ["the [MASK] sat."], "k": 2}, headers=headers)
    assert filled.status_code == 200 and len(filled.json()["results"][0]["masks"][0]) == 2
    unknown = httpx.post(f"{served.url}/v1/embeddings/nope/similar", json={"words": ["cat"]}, headers=headers)
    assert unknown.status_code == 404 and isinstance(unknown.json()["error"], str)
    models = {m["name"]: m for m in httpx.get(f"{served.url}/v1/models", headers=headers).json()["models"]}
    assert models["b"]["routes"] == ["/v1/fill-mask/b", "/v1/embeddings"]
    assert models["b"]["provenance"]["embedding"]["pooling"] == "mean"


@pytest.fixture(scope="module")
def sentence_transformer(tmp_path_factory, corpora_dir, start_server):
    """A small random sentence-transformers model (mean pooling, normalised) over IMDb reviews,
    its `nlprec bert import`, and a server of the imported folder."""
    from hf_bert_support import imdb_texts, write_sentence_transformer
    from nlprec_cli.main import main

    folder = tmp_path_factory.mktemp("st-serve")
    texts = imdb_texts(corpora_dir, 200)
    model = write_sentence_transformer(folder / "st", texts, "mean", True, max_seq_length=40, hidden=16, heads=2,
                                       d_ff=24, layers=2)
    try:
        main(["bert", "import", str(folder / "st"), "--out", str(folder / "imported")])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    running = start_server(["--model", f"st={folder / 'imported'}"])
    yield model, texts, running
    running.stop()


def test_an_imported_sentence_transformers_folder_serves_its_vectors(sentence_transformer):
    model, texts, running = sentence_transformer
    client = openai.OpenAI(base_url=f"{running.url}/v1", api_key="none", max_retries=0, timeout=60)
    sentences = [text[:150] for text in texts[:24]]
    expected = model.encode(sentences, convert_to_numpy=True)  # (24, 16), L2-normalised
    answer = client.embeddings.create(model="st", input=sentences, extra_body={"truncate": True})
    np.testing.assert_allclose(vectors_of(answer), expected, atol=1e-5)
    cut = client.embeddings.create(model="st", input=sentences, dimensions=6, extra_body={"truncate": True})
    renormalised = expected[:, :6] / np.linalg.norm(expected[:, :6], axis=1, keepdims=True)
    np.testing.assert_allclose(vectors_of(cut), renormalised, atol=1e-5)  # the model normalises: so do its cuts


@pytest.fixture(scope="module")
def embeddings_schema(served):
    spec = httpx.get(f"{served.url}/openapi.json").json()
    body = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return strategy(body, spec)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_generated_request_is_a_5xx(served, embeddings_schema, data):
    body = data.draw(st.one_of(embeddings_schema, embeddings_schema, ANY_JSON))
    if isinstance(body, dict) and data.draw(st.booleans()):
        body["model"] = data.draw(st.sampled_from(["b", "b", "words", "nope"]))
    response = post(served, body)
    assert response.status_code < 500, (body, response.text)
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, response.text
