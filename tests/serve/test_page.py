"""The model page and the offline API docs (nlprec.serve.page), and the route fields the page
uses (/map, recommend with titles and history, translate with attention), each checked against
the Python API. In-process (Starlette's TestClient); the browser tests are in test_page_browser.py."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nlprec.plot import project_2d
from nlprec.serve.app import create_app
from nlprec.serve.settings import ModelSpec, ServeSettings
from nlprec.tasks.recommender import Recommender
from nlprec.tasks.translate import Translator
from nlprec.vectors import Vectors

KEY = "page-key"
URL_ATTRIBUTE = re.compile(r'(?:src|href)="([^"]*)"')


def _settings(index_cache, *specs: ModelSpec, **limits) -> ServeSettings:
    return ServeSettings(models=specs, cache_dir=str(index_cache), threads=1, **limits)


@pytest.fixture(scope="module")
def client(vectors_path, titled_mf_dir, translator_dir, index_cache):
    settings = _settings(index_cache, ModelSpec("words", str(vectors_path)), ModelSpec("rec", str(titled_mf_dir)),
                         ModelSpec("fr", str(translator_dir)))
    with TestClient(create_app(settings)) as running:
        yield running


def test_the_page_and_its_assets_come_from_the_server(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<base href="/">' in page.text
    urls = URL_ATTRIBUTE.findall(page.text)
    assert "static/page.js" in urls and "static/page.css" in urls
    # Relative to <base> (so --root-path works), or data: (the empty favicon): never another host.
    assert all(url == "/" or not url.startswith(("/", "http:", "https:")) for url in urls), urls
    for asset in ("static/page.js", "static/page.css"):
        answer = client.get(f"/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 1000
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", answer.text), asset  # only the SVG namespace


def test_docs_load_only_package_files(client):
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href|spec-url)="([^"]*)"|url: \'([^\']*)\'', page.text)
    urls = [first or second for first, second in urls]
    assert urls and all(url.startswith(("/docs-assets/", "/openapi.json")) for url in urls), urls
    assert "googleapis" not in page.text and "cdn." not in page.text
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200 and len(answer.content) > 1000, url
    assert client.get("/redoc").status_code == 404  # off: ReDoc's page loads its logo from a CDN


def test_root_path_prefixes_every_url(vectors_path, index_cache):
    app = create_app(_settings(index_cache, ModelSpec("words", str(vectors_path))))
    with TestClient(app, root_path="/nlp") as prefixed:  # uvicorn --root-path: the path arrives with the prefix
        assert '<base href="/nlp/">' in prefixed.get("/nlp/").text
        docs = prefixed.get("/nlp/docs").text
        assert "/nlp/docs-assets/swagger-ui-bundle.js" in docs and "'/nlp/openapi.json'" in docs
        for path in ("/nlp/static/page.js", "/nlp/docs-assets/swagger-ui-bundle.js", "/nlp/v1/models"):
            assert prefixed.get(path).status_code == 200, path


def test_page_and_docs_are_open_but_the_routes_need_the_api_key(vectors_path, index_cache):
    app = create_app(_settings(index_cache, ModelSpec("words", str(vectors_path)), api_key=KEY))
    with TestClient(app) as keyed:
        for path in ("/", "/static/page.js", "/static/page.css", "/docs", "/docs-assets/swagger-ui.css",
                     "/openapi.json"):
            assert keyed.get(path).status_code == 200, path
        assert keyed.get("/v1/models").status_code == 401
        assert keyed.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert keyed.get("/static/missing.js").status_code == 404


def test_map_projects_the_query_and_its_neighbours(client, vectors_path):
    vectors = Vectors.load(vectors_path)
    word = vectors.keys[3]
    points = client.post("/v1/embeddings/words/map", json={"word": word, "k": 6}).json()["points"]
    similar = client.post("/v1/embeddings/words/similar", json={"words": [word], "k": 6}).json()["results"][0]
    assert [p["word"] for p in points] == [word, *(row["word"] for row in similar)]
    assert points[0]["score"] is None and [p["score"] for p in points[1:]] == [row["score"] for row in similar]
    expected = project_2d(vectors.vectors_for([p["word"] for p in points]))  # (7, 2)
    np.testing.assert_allclose([[p["x"], p["y"]] for p in points], expected, rtol=1e-4, atol=1e-5)


def test_map_of_an_unknown_word_is_the_404_of_similar(client):
    mapped = client.post("/v1/embeddings/words/map", json={"word": "zzqx", "k": 3})
    similar = client.post("/v1/embeddings/words/similar", json={"words": ["zzqx"], "k": 3})
    assert mapped.status_code == similar.status_code == 404
    assert mapped.json() == similar.json()


def test_recommend_gives_titles_and_the_users_history(client, titled_mf_dir, items_file):
    model = Recommender.load(titled_mf_dir)
    titles = dict(line.split("|")[:2] for line in items_file.read_bytes().decode("latin-1").splitlines())
    user = model.user_ids[0]
    answer = client.post("/v1/rec/rec/recommend", json={"users": [user], "k": 5, "history": 500}).json()["results"][0]
    expected = model.recommend(user, 5)
    assert [(row["item"], row["score"]) for row in answer["items"]] == expected.items
    assert [row["title"] for row in answer["items"]] == [titles.get(item) for item, _ in expected.items]
    assert [(row["item"], row["rating"]) for row in answer["history"]] == model.history(user)
    assert [row["title"] for row in answer["history"]] == [titles.get(row["item"]) for row in answer["history"]]
    assert len(answer["history"]) == model.seen()[model.train.user_index(user)].nnz
    ratings = [row["rating"] for row in answer["history"]]
    assert ratings == sorted(ratings, reverse=True)
    plain = client.post("/v1/rec/rec/recommend", json={"users": [user], "k": 2}).json()["results"][0]
    assert "history" not in plain
    unknown = client.post("/v1/rec/rec/recommend", json={"users": ["nobody"], "k": 2, "history": 5}).json()
    assert unknown["results"][0]["history"] == [] and unknown["results"][0]["source"] == "popularity"


def test_a_folder_without_item_metadata_answers_without_titles(mf_dir):
    model = Recommender.load(mf_dir)
    assert model.titles is None and model.item_titles(model.item_ids[:2]) is None
    assert all("title" not in row for row in model.recommend(model.user_ids[0], 3).to_dict()["items"])


def test_translate_attention_is_each_hypothesis_forced_through_the_decoder(client, translator_dir):
    """One batched decoder pass over sentences of different lengths gives each hypothesis the
    attention it gets alone."""
    translator = Translator.load(translator_dir)
    texts = ["cat runs the dog", "", "big red fish sleeps small bird eats"]
    answer = client.post("/v1/translate/fr", json={"texts": texts, "beam": 3, "nbest": 2,
                                                   "attention": True}).json()["results"]
    assert answer[1][0]["attention"] is None  # an empty sentence has no source pieces
    for text, entries in zip(texts[::2], answer[::2]):
        hypotheses = translator.translate([text], beam=3, nbest=2)[0]
        assert [h["text"] for h in entries] == [h.text for h in hypotheses]
        for entry, hypothesis in zip(entries, hypotheses):
            source, target, weights = translator.attention_of(text, hypothesis.tokens)
            assert entry["attention"]["source"] == source and entry["attention"]["target"] == target
            np.testing.assert_allclose(entry["attention"]["weights"], weights, atol=1e-5)
            np.testing.assert_allclose(np.sum(entry["attention"]["weights"], axis=1), 1.0, atol=1e-4)
    plain = client.post("/v1/translate/fr", json={"texts": texts[:1]}).json()["results"][0][0]
    assert "attention" not in plain


def test_attention_of_the_greedy_output_is_greedy_attention(translator_dir):
    translator = Translator.load(translator_dir)
    for text in ("cat runs", "the big red dog sleeps"):
        source, output, weights = translator.attention(text)
        greedy_tokens = translator.translate([text], beam=1)[0][0].tokens
        forced_source, forced_output, forced = translator.attention_of(text, greedy_tokens)
        assert (forced_source, forced_output) == (source, output)
        np.testing.assert_allclose(forced, weights, atol=1e-5)


def test_models_listing_is_what_the_page_reads(client):
    listing = client.get("/v1/models").json()["models"]
    by_name = {model["name"]: model for model in listing}
    assert by_name["words"]["routes"] == ["/v1/embeddings/words/similar", "/v1/embeddings/words/analogy",
                                          "/v1/embeddings/words/map"]
    assert json.dumps(by_name["rec"]["provenance"])  # JSON-serialisable provenance for the page


@pytest.mark.parametrize("root_path", ["nlp", "/nlp/"])
def test_a_malformed_root_path_is_one_line(root_path, vectors_path, capsys):
    from tests.cli_support import run

    code, _, err = run(["serve", "--model", f"words={vectors_path}", "--root-path", root_path], capsys)
    assert code == 2 and err.strip() == (f"error: --root-path {root_path!r}: expected a path like /nlp (a leading "
                                         "'/', none at the end)")
