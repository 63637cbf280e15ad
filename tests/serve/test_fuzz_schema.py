"""Hypothesis over the server's own OpenAPI schema: request bodies generated from each POST
route's JSON schema (and, half the time, bodies that break it), sent to a real server. No
answer may be a 500, and every non-200 answer is a JSON {"error": ...}."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

WORDS = ["cat", "dog", "king", "queen", "man", "woman", "paris", "100", "101", "500", "nobody", "the cat runs",
         "the [MASK] sat.", "[MASK] [MASK]"]
MODELS = {"embeddings": ["words", "wbin", "sub"], "rec": ["mf", "nm"], "translate": ["fr"], "classify": ["cls"],
          "fill-mask": ["bert"]}
OTHER_NAMES = ["mf", "fr", "words", "nope"]


def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def strategy(schema: dict, spec: dict) -> st.SearchStrategy:
    """Values valid under `schema` (the subset FastAPI writes), kept small so every call is quick."""
    schema = _resolve(schema, spec)
    if "anyOf" in schema:
        return st.one_of([strategy(option, spec) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries({k: strategy(v, spec) for k, v in properties.items() if k in required},
                                     optional={k: strategy(v, spec) for k, v in properties.items()
                                               if k not in required})
    if kind == "array":
        if "prefixItems" in schema:
            return st.tuples(*(strategy(item, spec) for item in schema["prefixItems"])).map(list)
        low = schema.get("minItems", 0)
        return st.lists(strategy(schema.get("items", {}), spec), min_size=low, max_size=max(low, 4))
    if kind == "string":
        return st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
    if kind == "integer":
        low, high = schema.get("minimum", -5), schema.get("maximum", 50)
        return st.integers(low, min(high, low + 50))
    if kind == "number":
        low, high = schema.get("minimum", -5.0), schema.get("maximum", 5.0)
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    return ANY_JSON


SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8)
           | st.floats(allow_nan=False, allow_infinity=False))  # the client cannot send NaN as JSON
ANY_JSON = st.recursive(SCALARS,
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                    max_size=3), max_leaves=8)


@pytest.fixture(scope="module")
def routes(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    found = []
    for path, methods in spec["paths"].items():
        post = methods.get("post")
        if post is None or "{name}" not in path:
            continue
        body = post["requestBody"]["content"]["application/json"]["schema"]
        found.append((path, strategy(body, spec)))
    assert len(found) == 8, [path for path, _ in found]
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_generated_request_is_a_500(server, routes, data):
    path, valid = data.draw(st.sampled_from(routes))
    served = MODELS[path.split("/")[2]]
    name = data.draw(st.one_of(st.sampled_from(served), st.sampled_from(served), st.sampled_from(OTHER_NAMES)))
    body = data.draw(st.one_of(valid, valid, ANY_JSON))
    response = httpx.post(f"{server.url}{path.replace('{name}', name)}", json=body, timeout=30)
    assert response.status_code != 500, (path, name, body, response.text)
    if response.status_code != 200:
        assert set(response.json()) >= {"error"}, response.text
