"""Every route of a real `nlprec serve` process answers what the Python API answers, and the
same whether a request was batched with 49 others or sent alone."""

from __future__ import annotations

import asyncio
import math
import re

import httpx
import pytest

from nlprec.tasks.recommender import Recommender
from nlprec.tasks.bert import PretrainedBert
from nlprec.tasks.classify import Classifier
from nlprec.subword_vectors import load_vectors
from nlprec.tasks.translate import Translator
from nlprec.vectors import Vectors


def same(got, want, path="") -> None:
    """Equal JSON, floats to float32 rounding (a FAISS/BLAS search of Q rows may round the last bit
    differently from one of 1 row); words, ids, texts and order exactly."""
    if isinstance(want, float) and isinstance(got, (int, float)):
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-5), f"{path}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, f"{path}[{i}]")
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=30)


def scored(rows):
    return [{"word": w, "score": s} for w, s in rows]


@pytest.mark.parametrize("name, fixture", [("words", "vectors_path"), ("wbin", "bin_vectors_path")])
def test_similar_and_analogy_equal_the_python_api(server, request, name, fixture):
    vectors = Vectors.load(request.getfixturevalue(fixture))
    words = ["cat", "paris", "king", "red"]
    response = post(server, f"/v1/embeddings/{name}/similar", {"words": words, "k": 5})
    assert response.status_code == 200, response.text
    same(response.json(), {"results": [scored(rows) for rows in vectors.most_similar(words, 5)]})
    response = post(server, f"/v1/embeddings/{name}/analogy", {"a": "man", "b": "king", "c": "woman", "k": 3})
    assert response.status_code == 200, response.text
    same(response.json(), {"results": scored(vectors.analogy("man", "king", "woman", 3))})
    response = post(server, f"/v1/embeddings/{name}/analogy", {"a": "man", "b": "king", "c": "woman",
                                                                "method": "3cosmul"})
    same(response.json(), {"results": scored(vectors.analogy("man", "king", "woman", 5, "3cosmul"))})


def test_an_hnsw_index_is_built_once_and_searched(server, vectors_path, index_cache):
    vectors = Vectors.load(vectors_path)
    words = vectors.keys[:20]
    response = post(server, "/v1/embeddings/whnsw/similar", {"words": words, "k": 5})
    assert response.status_code == 200, response.text
    exact = vectors.most_similar(words, 5)
    found = sum(len({r["word"] for r in got} & {w for w, _ in want}) for got, want in
                zip(response.json()["results"], exact))
    assert found / (5 * len(words)) >= 0.9
    model = next(m for m in httpx.get(f"{server.url}/v1/models").json()["models"] if m["name"] == "whnsw")
    index = model["provenance"]["index"]
    assert index["kind"] == "hnsw" and index["options"] == {"hnsw_m": 8, "threads": 1}
    assert any(path.name.startswith("words-hnsw-") for path in index_cache.iterdir())


def test_subword_vectors_answer_unseen_words(server, subword_path):
    vectors = load_vectors(subword_path)
    words = ["cat", "catz", "doctors"]
    assert "catz" not in vectors
    response = post(server, "/v1/embeddings/sub/similar", {"words": words, "k": 4})
    assert response.status_code == 200, response.text
    same(response.json(), {"results": [scored(rows) for rows in vectors.most_similar(words, 4)]})
    response = post(server, "/v1/embeddings/sub/analogy", {"a": "man", "b": "king", "c": "womanz", "k": 3})
    same(response.json(), {"results": scored(vectors.analogy("man", "king", "womanz", 3))})


@pytest.mark.parametrize("name, fixture", [("mf", "mf_dir"), ("nm", "neumf_dir")])
def test_recommend_and_score_equal_the_python_api(server, request, name, fixture):
    model = Recommender.load(request.getfixturevalue(fixture))
    users = ["100", "nobody", "131"]
    response = post(server, f"/v1/rec/{name}/recommend", {"users": users, "k": 4})
    assert response.status_code == 200, response.text
    same(response.json(), {"results": [model.recommend(user, 4).to_dict() for user in users]})
    response = post(server, f"/v1/rec/{name}/recommend", {"users": ["100"], "k": 3, "exclude_seen": False})
    same(response.json(), {"results": [model.recommend("100", 3, exclude_seen=False).to_dict()]})
    pairs = [["100", "500"], ["nobody", "501"], ["120", "549"]]
    response = post(server, f"/v1/rec/{name}/score", {"pairs": pairs})
    assert response.status_code == 200, response.text
    scores = model.score([p[0] for p in pairs], [p[1] for p in pairs]).scores.tolist()
    same(response.json(), {"results": [{"user": u, "item": i, "score": s, "source": src} for (u, i), s, src
                                       in zip(pairs, scores, ["model", "popularity", "model"])]})


def test_unknown_items_error_or_score_null(server):
    response = post(server, "/v1/rec/mf/score", {"pairs": [["100", "no-such-item"]]})
    assert response.status_code == 404 and "unknown item 'no-such-item'" in response.json()["error"]
    response = post(server, "/v1/rec/mf/score", {"pairs": [["100", "no-such-item"]], "unknown_items": "nan"})
    assert response.status_code == 200
    assert response.json()["results"] == [{"user": "100", "item": "no-such-item", "score": None,
                                           "source": "unknown_item"}]


def test_translate_equals_the_python_api(server, translator_dir):
    translator = Translator.load(translator_dir)
    texts = ["the cat runs", "", "a big red dog sleeps"]
    response = post(server, "/v1/translate/fr", {"texts": texts, "beam": 3, "nbest": 2})
    assert response.status_code == 200, response.text
    want = [[{"text": h.text, "score": h.score} for h in hypotheses]
            for hypotheses in translator.translate(texts, beam=3, nbest=2)]
    same(response.json(), {"results": want})
    response = post(server, "/v1/translate/fr", {"texts": ["the cat runs"], "beam": 1})
    assert response.status_code == 200 and len(response.json()["results"][0]) == 1


def test_classify_equals_the_python_api(server, classifier_dir):
    classifier = Classifier.load(classifier_dir)
    texts = ["a good movie", "awful plot and dull actors", "nice"]
    response = post(server, "/v1/classify/cls", {"texts": texts})
    assert response.status_code == 200, response.text
    proba = classifier.predict_proba(texts)
    classes = classifier.classes
    same(response.json(), {"classes": classes, "predictions": [
        {"label": classes[row.argmax()], "probability": float(row.max()),
         "probabilities": {c: float(p) for c, p in zip(classes, row)}} for row in proba]})
    response = post(server, "/v1/classify/cls", {"texts": ["fine", "  "]})
    assert response.status_code == 422 and "texts.1: the text is empty" in response.json()["error"]


def test_fill_mask_equals_the_python_api(server, bert_dir):
    bert = PretrainedBert.load(bert_dir)
    texts = ["the cat [MASK] on the mat.", "[MASK] dog ran to the [MASK] house."]
    response = post(server, "/v1/fill-mask/bert", {"texts": texts, "k": 3})
    assert response.status_code == 200, response.text
    want = [{"text": text, "filled": bert.filled_text(text, masks),
             "masks": [[{"piece": g.piece, "id": g.token_id, "probability": g.probability} for g in mask]
                       for mask in masks]} for text, masks in zip(texts, bert.fill(texts, 3))]
    same(response.json(), {"results": want})
    response = post(server, "/v1/fill-mask/bert", {"texts": ["no mask here"]})
    assert response.status_code == 422 and "texts.0: no [MASK]" in response.json()["error"]
    response = post(server, "/v1/fill-mask/bert", {"texts": [" ".join(["cat"] * 40) + " [MASK]"]})
    assert response.status_code == 422 and "exceeds the model's 32" in response.json()["error"]


def test_models_health_ready_and_metrics(server, vectors_path):
    models = httpx.get(f"{server.url}/v1/models").json()["models"]
    by_name = {m["name"]: m for m in models}
    assert {n: m["kind"] for n, m in by_name.items()} == {
        "words": "embeddings", "wbin": "embeddings", "sub": "embeddings", "mf": "recommender", "nm": "recommender",
        "fr": "translation", "cls": "classifier", "whnsw": "embeddings", "bert": "bert"}
    words = by_name["words"]["provenance"]
    assert words["meta"]["seed"] == Vectors.load(vectors_path).meta["seed"] and "nlprec_version" in words["meta"]
    index = words["index"]
    assert (index["kind"], index["memory_mapped"], index["vectors_memory_mapped"]) == ("flat", True, True)
    assert by_name["wbin"]["provenance"]["index"]["vectors_memory_mapped"] is False
    assert by_name["sub"]["provenance"]["index"]["kind"] == "exact"
    assert by_name["mf"]["provenance"]["config"]["data"]["sha256"]
    assert by_name["fr"]["provenance"]["data_sha256"] and by_name["fr"]["routes"] == ["/v1/translate/fr"]
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"
    post(server, "/v1/embeddings/words/similar", {"words": ["cat"]})
    text = httpx.get(f"{server.url}/metrics").text
    assert re.search(r'nlprec_requests_total\{model="words",route="/v1/embeddings/\{name\}/similar",status="200"\}',
                     text)
    for series in ("nlprec_request_seconds_bucket", "nlprec_batch_size_bucket", 'nlprec_queue_depth{model="fr"}',
                   "nlprec_errors_total", "nlprec_ready 1.0"):
        assert series in text
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/embeddings/{name}/similar" in schema["paths"] and "/v1/translate/{name}" in schema["paths"]


def test_unknown_model_word_and_route_are_404_json(server):
    response = post(server, "/v1/embeddings/nope/similar", {"words": ["cat"]})
    assert response.status_code == 404 and "no embeddings model named 'nope'" in response.json()["error"]
    response = post(server, "/v1/embeddings/mf/similar", {"words": ["cat"]})
    assert response.status_code == 404 and "'mf' is a recommender model" in response.json()["error"]
    response = post(server, "/v1/embeddings/words/similar", {"words": ["cat", "kingg"]})
    assert response.status_code == 404
    assert "unknown word 'kingg'" in response.json()["error"] and "did you mean: king" in response.json()["error"]
    response = post(server, "/v1/embeddings/words/analogy", {"a": "man", "b": "qeen", "c": "woman"})
    assert response.status_code == 404 and "queen" in response.json()["error"]
    response = httpx.get(f"{server.url}/v2/nothing")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}


@pytest.mark.parametrize("path, body, message", [
    ("/v1/embeddings/words/similar", {"words": "cat"}, "words: Input should be a valid list"),
    ("/v1/embeddings/words/similar", {"words": [1]}, "words.0: Input should be a valid string"),
    ("/v1/embeddings/words/similar", {"words": ["cat"], "k": 0}, "k: Input should be greater than or equal to 1"),
    ("/v1/embeddings/words/similar", {"words": ["cat"], "kk": 3}, "kk: Extra inputs are not permitted"),
    ("/v1/embeddings/words/similar", {"words": []}, "words: List should have at least 1 item"),
    ("/v1/embeddings/words/similar", {"words": ["cat"] * 65}, "words: 65 items, over the limit of 64 per request"),
    ("/v1/embeddings/words/similar", {"words": ["cat"], "k": 1001}, "k: 1,001 is over the limit of 1,000"),
    ("/v1/rec/mf/score", {"pairs": [["100"]]}, "pairs.0"),
    ("/v1/translate/fr", {"texts": ["a"], "beam": 2, "nbest": 3}, "nbest: 3 is more than beam (2)"),
    ("/v1/translate/fr", {"texts": ["a" * 4001]}, "texts.0: 4,001 characters, over the limit of 4,000"),
    ("/v1/translate/fr", {"texts": ["a"], "alpha": "x"}, "alpha: Input should be a valid number"),
])
def test_bad_requests_are_422_naming_the_field(server, path, body, message):
    response = post(server, path, body)
    assert response.status_code == 422 and message in response.json()["error"], response.text


def test_a_json_body_sent_as_a_form_is_read_as_json(server):
    """`curl -d '{...}'` declares application/x-www-form-urlencoded."""
    response = httpx.post(f"{server.url}/v1/embeddings/words/similar", content=b'{"words": ["cat"], "k": 2}',
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200 and len(response.json()["results"][0]) == 2


def test_malformed_json_is_422(server):
    response = httpx.post(f"{server.url}/v1/embeddings/words/similar", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["error"]


async def _concurrent(url: str, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in requests))


def _batch_calls(server, model: str) -> tuple[float, float]:
    """(model calls, items) so far for `model`, from /metrics."""
    text = httpx.get(f"{server.url}/metrics").text
    count = re.search(rf'nlprec_batch_size_count\{{model="{model}"\}} (\S+)', text)
    total = re.search(rf'nlprec_batch_size_sum\{{model="{model}"\}} (\S+)', text)
    return float(count.group(1)), float(total.group(1))


@pytest.mark.parametrize("model, path, make", [
    ("words", "/v1/embeddings/words/similar", lambda i, words: {"words": [words[i % len(words)]], "k": 5}),
    ("nm", "/v1/rec/nm/recommend", lambda i, words: {"users": [str(100 + i)], "k": 5}),
    ("mf", "/v1/rec/mf/score", lambda i, words: {"pairs": [[str(100 + i), str(500 + i % 50)]]}),
    ("fr", "/v1/translate/fr", lambda i, words: {"texts": [" ".join(words[i % 7:i % 7 + 1 + i % 4])], "beam": 3}),
    ("cls", "/v1/classify/cls", lambda i, words: {"texts": [" ".join(words[i % 5:i % 5 + 1 + i % 6])]}),
    ("bert", "/v1/fill-mask/bert", lambda i, words: {"texts": [" ".join(words[i % 5:i % 5 + 1 + i % 4]) + " [MASK]."],
                                                     "k": 2}),
])
def test_50_concurrent_requests_answer_as_alone_in_merged_calls(server, vectors_path, model, path, make):
    words = Vectors.load(vectors_path).keys[:40] if model == "words" else \
        "cat dog bird fish runs sleeps eats small big red blue the a".split()
    bodies = [make(i, words) for i in range(50)]
    alone = [post(server, path, body) for body in bodies]  # one at a time: batches of one
    calls_before, items_before = _batch_calls(server, model)
    together = asyncio.run(_concurrent(server.url, [(path, body) for body in bodies]))
    calls, items = _batch_calls(server, model)
    assert all(r.status_code == 200 for r in alone + together), [r.text for r in together if r.status_code != 200]
    for one, merged in zip(alone, together):
        same(merged.json(), one.json())
    assert items - items_before == 50
    assert calls - calls_before < 50, "no two of 50 concurrent requests were merged into one model call"
