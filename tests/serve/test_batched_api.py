"""The entry points serving added to the Python API: memory-mapped vectors and indexes, unit rows
without the whole unit matrix, and `Recommender.recommend_many` (one batched call)."""

from __future__ import annotations

import numpy as np
import pytest

from nlprec.tasks.recommender import Recommender
from nlprec.index import VectorIndex
from nlprec.vectors import Vectors


def test_npz_vectors_load_memory_mapped_and_equal(tmp_path):
    rng = np.random.default_rng(0)
    vectors = Vectors([f"w{i}" for i in range(50)], rng.standard_normal((50, 8)), {"seed": 3})
    path = vectors.save(tmp_path / "v.npz")
    mapped = Vectors.load(path, mmap=True)
    assert isinstance(mapped.matrix, np.memmap) and not mapped.matrix.flags.writeable
    assert np.array_equal(mapped.matrix, vectors.matrix) and mapped.meta == {"seed": 3}
    assert not isinstance(Vectors.load(path).matrix, np.memmap)
    assert mapped.unit_matrix().tobytes() == vectors.unit_matrix().tobytes()
    rows = [7, 0, 49, 7]
    assert Vectors.load(path).unit_rows(rows).tobytes() == vectors.unit_matrix()[rows].tobytes()


def test_a_compressed_npz_is_read_not_mapped(tmp_path):
    path = tmp_path / "c.npz"
    keys = np.frombuffer("a\nb".encode(), dtype=np.uint8)
    np.savez_compressed(path, format_version=np.array(1), keys=keys, matrix=np.eye(2, dtype=np.float32),
                        meta=np.array("{}"))
    loaded = Vectors.load(path, mmap=True)
    assert not isinstance(loaded.matrix, np.memmap) and loaded.keys == ["a", "b"]


def test_a_memory_mapped_index_searches_like_the_built_one(tmp_path):
    rng = np.random.default_rng(1)
    vectors = Vectors([f"w{i}" for i in range(300)], rng.standard_normal((300, 16)))
    built = VectorIndex(vectors, kind="flat")
    mapped = VectorIndex.load(built.save(tmp_path / "index"), mmap=True)
    words = vectors.keys[:20]
    assert vectors.most_similar(words, 5, mapped) == vectors.most_similar(words, 5, built)


@pytest.mark.parametrize("fixture", ["mf_dir", "neumf_dir"])
def test_recommend_many_equals_one_user_at_a_time(request, fixture):
    model = Recommender.load(request.getfixturevalue(fixture))
    users = ["100", "nobody", "131", "100", "159"]
    for k, exclude_seen in ((5, True), (50, False)):
        together = [answer.to_dict() for answer in model.recommend_many(users, k, exclude_seen)]
        alone = [model.recommend(user, k, exclude_seen).to_dict() for user in users]
        assert [[i["item"] for i in a["items"]] for a in together] == [[i["item"] for i in a["items"]] for a in alone]
        for a, b in zip(together, alone):
            assert np.allclose([i["score"] for i in a["items"]], [i["score"] for i in b["items"]], rtol=1e-6)
            assert (a["source"], a["notice"]) == (b["source"], b["notice"])
    with pytest.raises(ValueError, match="k=0"):
        model.recommend_many(users, 0)
