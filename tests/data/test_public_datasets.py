"""The public data-set registry: entries match the mirror, lookup order mirror -> cache -> download, errors.

Downloads are exercised with file:// URLs to files written in tmp_path: no network.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from nlprec.data import public_datasets
from nlprec.data.public_datasets import CorpusFile, CorpusInfo
from nlprec.errors import NlprecError


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache and no mirror unless it sets one."""
    monkeypatch.setenv("NLPREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NLPREC_CORPORA", raising=False)
    return tmp_path / "cache" / "corpora"


def _entry(path: str, data: bytes, url: str | None, member: str | None = None) -> CorpusFile:
    return CorpusFile(path, len(data), hashlib.sha256(data).hexdigest(), url, member, "utf-8")


def _use_registry(monkeypatch: pytest.MonkeyPatch, *files: CorpusFile) -> None:
    """Replace the registry by one corpus "toy" holding `files`."""
    info = CorpusInfo("toy", "toy data", tuple(files), "https://example.org", "tests", "CC0", "none", "none", "")
    monkeypatch.setattr(public_datasets, "_registry", lambda: {"toy": info})


def test_registry_names_every_mirror_folder(corpora_dir: Path) -> None:
    folders = {p.name for p in corpora_dir.iterdir() if p.is_dir()}
    assert {info.name for info in public_datasets.list_corpora()} == folders


def test_registry_entries_are_complete() -> None:
    direct_urls = []
    for info in public_datasets.list_corpora():
        assert info.description and info.homepage.startswith("http") and info.licence and info.citation
        for entry in info.files:
            assert entry.path.startswith(info.name + "/") and entry.bytes > 0
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
            assert entry.url is None or entry.url.startswith(("https://", "http://"))
            assert entry.member is None or entry.url is not None
            assert entry.encoding in ("utf-8", "latin-1")
            if entry.url and entry.member is None:
                direct_urls.append(entry.url)
    assert len(direct_urls) == len(set(direct_urls))


def test_every_mirror_file_verifies(corpora_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLPREC_CORPORA", str(corpora_dir))
    for info in public_datasets.list_corpora():
        checks = public_datasets.verify(info.name)  # size and sha256, about 50 MB in all
        assert [c.file for c in checks] == [f.path for f in info.files]
        assert all(c.ok for c in checks), [c for c in checks if not c.ok]
        assert public_datasets.where_found(info.name) == "mirror"
        assert public_datasets.corpus_path(info.name) == corpora_dir / info.name


def test_corpus_path_of_one_file_in_the_mirror(corpora_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLPREC_CORPORA", str(corpora_dir))
    expected = corpora_dir / "imdb" / "imdb_train.tsv.gz"
    assert public_datasets.corpus_path("imdb", "imdb_train.tsv.gz") == expected
    assert public_datasets.corpus_path("imdb", "imdb/imdb_train.tsv.gz") == expected
    assert public_datasets.corpus_info("rt-polarity").file("rt-polarity.pos").encoding == "latin-1"


def test_unknown_corpus_lists_the_known_ones() -> None:
    with pytest.raises(NlprecError, match=r"unknown corpus 'nope'; known corpora: fra-eng, imdb, ml-100k, ptb"):
        public_datasets.corpus_info("nope")
    with pytest.raises(NlprecError, match=r"corpus 'ptb' has no file 'x.txt'; its files: ptb.train.txt"):
        public_datasets.corpus_path("ptb", "x.txt")


def test_mirror_then_cache_then_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_cache: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_bytes(b"hello corpus\n")
    _use_registry(monkeypatch, _entry("toy/a.txt", source.read_bytes(), source.as_uri()))
    assert public_datasets.where_found("toy") == "missing"

    downloaded = public_datasets.corpus_path("toy", "a.txt")  # nothing anywhere: downloads into the cache
    assert downloaded == empty_cache / "toy" / "a.txt"
    assert downloaded.read_bytes() == b"hello corpus\n"
    assert public_datasets.where_found("toy") == "cache"
    source.unlink()  # from now on a download would fail
    assert public_datasets.corpus_path("toy", "a.txt") == downloaded

    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    monkeypatch.setenv("NLPREC_CORPORA", str(mirror))
    assert public_datasets.corpus_path("toy", "a.txt") == downloaded  # mirror lacks it: cache
    (mirror / "toy" / "a.txt").write_bytes(b"hello corpus\n")
    assert public_datasets.corpus_path("toy", "a.txt") == mirror / "toy" / "a.txt"  # mirror first
    assert public_datasets.corpus_path("toy") == mirror / "toy"
    assert public_datasets.where_found("toy") == "mirror"


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("pack", [_zip_bytes, _tar_bytes])
def test_download_extracts_archive_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_cache: Path,
                                           pack) -> None:
    members = {"data/train.txt": b"one two\n", "data/test.txt": b"three\n", "data/other.txt": b"not used\n"}
    archive = tmp_path / "bundle.bin"
    archive.write_bytes(pack(members))
    url = archive.as_uri()
    _use_registry(monkeypatch, _entry("toy/train.txt", members["data/train.txt"], url, "data/train.txt"),
                  _entry("toy/test.txt", members["data/test.txt"], url, "data/test.txt"))
    folder = public_datasets.corpus_path("toy")
    assert folder == empty_cache / "toy"
    assert sorted(p.name for p in folder.iterdir()) == ["test.txt", "train.txt"]
    assert all(check.ok for check in public_datasets.verify("toy"))
    assert [p.name for p in empty_cache.iterdir()] == ["toy"]  # no temporary files left


def test_download_failure_names_the_url_and_the_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       empty_cache: Path) -> None:
    url = (tmp_path / "absent.zip").as_uri()
    _use_registry(monkeypatch, _entry("toy/a.txt", b"x", url, "a.txt"))
    with pytest.raises(NlprecError) as caught:
        public_datasets.corpus_path("toy", "a.txt")
    message = str(caught.value)
    assert "\n" not in message
    assert f"download of {url} failed" in message and "set NLPREC_CORPORA to a local mirror" in message
    assert not (empty_cache / "toy").exists()


def test_download_with_wrong_checksum_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     empty_cache: Path) -> None:
    source = tmp_path / "changed.txt"
    source.write_bytes(b"the publisher changed this file\n")
    _use_registry(monkeypatch, _entry("toy/a.txt", b"the original file\n", source.as_uri()))
    with pytest.raises(NlprecError, match=r"gave toy/a.txt with 32 bytes and sha256 [0-9a-f]{64}, expected 18 bytes"):
        public_datasets.corpus_path("toy", "a.txt")
    assert list((empty_cache / "toy").iterdir()) == []


def test_file_without_public_url_asks_for_a_mirror() -> None:
    with pytest.raises(NlprecError, match=r"imdb/imdb_train.tsv.gz is neither in NLPREC_CORPORA nor in the cache .*"
                                          r"set NLPREC_CORPORA to a folder holding it"):
        public_datasets.corpus_path("imdb", "imdb_train.tsv.gz")
    with pytest.raises(NlprecError, match="download is off"):
        public_datasets.corpus_path("ptb", download=False)


def test_verify_reports_missing_wrong_size_and_wrong_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_registry(monkeypatch, _entry("toy/a.txt", b"aaaa", None), _entry("toy/b.txt", b"bbbb", None),
                  _entry("toy/c.txt", b"cccc", None))
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "a.txt").write_bytes(b"aaaa")
    (mirror / "toy" / "b.txt").write_bytes(b"bbbbb")
    monkeypatch.setenv("NLPREC_CORPORA", str(mirror))
    ok, wrong_size, missing = public_datasets.verify("toy")
    assert ok == ("toy/a.txt", True, f"mirror: {mirror / 'toy' / 'a.txt'}")
    assert not wrong_size.ok and wrong_size.reason.endswith("has 5 bytes, expected 4")
    assert not missing.ok and missing.reason.startswith("missing")
    assert public_datasets.where_found("toy") == "partial"
    (mirror / "toy" / "b.txt").write_bytes(b"BBBB")
    assert "sha256" in public_datasets.verify("toy")[1].reason
    assert public_datasets.verify("toy", checksum=False)[1].ok


def test_mirror_variable_must_name_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLPREC_CORPORA", str(tmp_path / "nowhere"))
    with pytest.raises(NlprecError, match=r"NLPREC_CORPORA=.*nowhere is not a folder"):
        public_datasets.corpus_path("ptb")
