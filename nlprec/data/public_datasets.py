"""Registry of the public data sets nlprec names but does not ship, and where their files are.

`corpora/registry.json` (installed as the package `nlprec_corpora`) lists each data set: its
files with size and sha256, where they download from, licence, citation and reading quirks.
The project never copies the data itself; a file is looked up, in order, in

1. the local mirror `$NLPREC_CORPORA`, laid out as `<corpus>/<file>` (a shared read-only copy,
   for machines without network or to avoid downloads);
2. the cache `$NLPREC_CACHE/corpora` (default `~/.cache/nlprec/corpora`);
3. a download into that cache: streamed into a temporary file, size and sha256 checked, then
   renamed into place, so a failed or altered download never leaves a file that looks valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import IO, Literal, NamedTuple

from nlprec.errors import NlprecError
from nlprec.io import atomic_write, sha256_file

MIRROR_ENV = "NLPREC_CORPORA"  # folder holding `<corpus>/<file>`, read-only, searched first
CACHE_ENV = "NLPREC_CACHE"  # nlprec's cache root; corpora live in its `corpora/` folder
DOWNLOAD_TIMEOUT_S = 60  # per network read, not for the whole file

# Where a corpus's files were found: all in the mirror, all found with some in the cache,
# some found, or none found.
Location = Literal["mirror", "cache", "partial", "missing"]


@dataclass(frozen=True)
class CorpusFile:
    """One published file of a data set."""

    path: str  # "<corpus>/<file name>", relative to the mirror or cache folder
    bytes: int  # exact size on disk, > 0
    sha256: str  # hex sha256 of the exact bytes
    url: str | None  # where it downloads from (the archive when `member` is set); None: no public copy
    member: str | None  # path inside the zip or tar archive at `url`; None: `url` is the file itself
    encoding: str  # text encoding of the (uncompressed) content: "utf-8" or "latin-1"

    @property
    def name(self) -> str:
        """The file name inside its corpus folder, e.g. "ptb.train.txt"."""
        return self.path.split("/", 1)[1]


@dataclass(frozen=True)
class CorpusInfo:
    """A public data set as the registry describes it."""

    name: str  # registry key and folder name, e.g. "ptb"
    description: str  # one sentence: what the data is and how a line looks
    files: tuple[CorpusFile, ...]  # every file, in registry order
    homepage: str  # the publisher's page
    source: str  # where the mirrored bytes were copied from (repository + commit, or package)
    licence: str  # short licence name for tables, e.g. "CC BY-SA 3.0"
    terms: str  # the licence or terms of use in a sentence
    citation: str  # what to cite when publishing results
    notes: str  # reading quirks: encodings, separators, U+0085

    @property
    def total_bytes(self) -> int:
        """Size of all files together."""
        return sum(f.bytes for f in self.files)

    def file(self, name: str) -> CorpusFile:
        """The file called `name` ("ptb.train.txt" or "ptb/ptb.train.txt")."""
        for entry in self.files:
            if name in (entry.name, entry.path):
                return entry
        known = ", ".join(f.name for f in self.files)
        raise NlprecError(f"corpus {self.name!r} has no file {name!r}; its files: {known}")


class FileCheck(NamedTuple):
    """Result of checking one file: `(file, ok, reason)`."""

    file: str  # "<corpus>/<file name>"
    ok: bool  # found, with the registered size (and sha256 when checked)
    reason: str  # where it was found, or what is wrong


def mirror_dir() -> Path | None:
    """The local mirror folder from `$NLPREC_CORPORA`, or None when unset."""
    configured = os.environ.get(MIRROR_ENV)
    if not configured:
        return None
    if not Path(configured).is_dir():
        raise NlprecError(f"{MIRROR_ENV}={configured} is not a folder; expected a folder of <corpus>/<file>")
    return Path(configured)


def cache_dir() -> Path:
    """The corpora cache: `$NLPREC_CACHE/corpora`, by default `~/.cache/nlprec/corpora`."""
    default_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nlprec"
    return Path(os.environ.get(CACHE_ENV) or default_root) / "corpora"


@lru_cache(maxsize=1)
def _registry() -> dict[str, CorpusInfo]:
    """Parse `registry.json` once per process."""
    text = resources.files("nlprec_corpora").joinpath("registry.json").read_text(encoding="utf-8")
    corpora = {}
    for entry in json.loads(text)["corpora"]:
        fields = {key: value for key, value in entry.items() if key != "files"}
        corpora[entry["name"]] = CorpusInfo(files=tuple(CorpusFile(**f) for f in entry["files"]), **fields)
    return corpora


def list_corpora() -> list[CorpusInfo]:
    """Every registered data set, sorted by name."""
    return [_registry()[name] for name in sorted(_registry())]


def corpus_info(name: str) -> CorpusInfo:
    """The registry entry for `name`; an unknown name lists the known ones."""
    try:
        return _registry()[name]
    except KeyError:
        known = ", ".join(sorted(_registry()))
        raise NlprecError(f"unknown corpus {name!r}; known corpora: {known}") from None


def _locate(entry: CorpusFile) -> tuple[Path | None, Literal["mirror", "cache", "missing"]]:
    """Where `entry` is on this machine, mirror first; existence only, no checksum."""
    for where, root in (("mirror", mirror_dir()), ("cache", cache_dir())):
        if root is not None and (root / entry.path).is_file():
            return root / entry.path, where
    return None, "missing"


def where_found(name: str) -> Location:
    """Summarise where the files of corpus `name` are: mirror, cache, partial or missing."""
    places = {_locate(entry)[1] for entry in corpus_info(name).files}
    if places == {"mirror"}:
        return "mirror"
    if "missing" not in places:
        return "cache"
    return "missing" if places == {"missing"} else "partial"


def corpus_path(name: str, file: str | None = None, download: bool = True) -> Path:
    """Path of one file of corpus `name`, or with `file=None` a folder holding all its files.

    Looks in the mirror, then the cache, then (if `download`) fetches the missing files into
    the cache. A folder is the mirror's only when every file is there; otherwise the cache's.
    """
    info = corpus_info(name)
    if file is not None:
        entry = info.file(file)
        path, _ = _locate(entry)
        if path is None:
            _fetch([entry], download)
            path = cache_dir() / entry.path
        return path
    mirror = mirror_dir()
    if mirror is not None and all((mirror / f.path).is_file() for f in info.files):
        return mirror / info.name
    _fetch([f for f in info.files if not (cache_dir() / f.path).is_file()], download)
    return cache_dir() / info.name


def _fetch(entries: list[CorpusFile], download: bool) -> None:
    """Download `entries` into the cache, each archive once; explain when that is impossible."""
    if not entries:
        return
    first = entries[0].path
    if not download:
        raise NlprecError(f"{first} is neither in {MIRROR_ENV} nor in the cache {cache_dir()}, and download is off")
    unserved = [e.path for e in entries if e.url is None]
    if unserved:
        raise NlprecError(
            f"{unserved[0]} is neither in {MIRROR_ENV} nor in the cache {cache_dir()}, and no public URL serves "
            f"these exact bytes (see `nlprec corpora list --json` notes); set {MIRROR_ENV} to a folder holding it"
        )
    for entry in (e for e in entries if e.member is None):
        _download(entry.url, [entry])
    archives = dict.fromkeys(e.url for e in entries if e.member is not None)
    for url in archives:
        _download(url, [e for e in entries if e.url == url and e.member is not None])


def _download(url: str, entries: list[CorpusFile]) -> None:
    """Fetch `url` (a file, or an archive holding `entries`) into the cache, verified."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            if entries[0].member is None:
                _save_verified(response, entries[0], url)
                return
            with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
                archive = Path(tmp) / "archive"
                with open(archive, "wb") as out:
                    shutil.copyfileobj(response, out, 1 << 20)
                for entry in entries:
                    _extract_verified(archive, entry, url)
    except NlprecError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, tarfile.TarError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise NlprecError(
            f"download of {url} failed ({reason}); set {MIRROR_ENV} to a local mirror folder holding {entries[0].path}"
        ) from err


def _extract_verified(archive: Path, entry: CorpusFile, url: str) -> None:
    """Copy `entry.member` out of a zip or tar archive into the cache, verified."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle, bundle.open(entry.member) as stream:
            _save_verified(stream, entry, url)
        return
    with tarfile.open(archive) as bundle:
        stream = bundle.extractfile(entry.member)
        if stream is None:
            raise KeyError(f"{entry.member} is not a regular file in the archive")
        _save_verified(stream, entry, url)


def _save_verified(stream: IO[bytes], entry: CorpusFile, url: str) -> None:
    """Stream into a temporary file beside the cache path; rename only if size and sha256 match."""
    digest, size = hashlib.sha256(), 0
    with atomic_write(cache_dir() / entry.path) as out:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
            out.write(block)
        if size != entry.bytes or digest.hexdigest() != entry.sha256:
            raise NlprecError(
                f"{url} gave {entry.path} with {size} bytes and sha256 {digest.hexdigest()}, expected {entry.bytes} "
                f"bytes and sha256 {entry.sha256}; set {MIRROR_ENV} to a verified local mirror"
            )


def verify(name: str, checksum: bool = True) -> list[FileCheck]:
    """Check every file of corpus `name` where it is found: size, and sha256 unless `checksum=False`."""
    return [_check(entry, checksum) for entry in corpus_info(name).files]


def _check(entry: CorpusFile, checksum: bool) -> FileCheck:
    """Check one file: found, right size, right sha256."""
    path, where = _locate(entry)
    if path is None:
        return FileCheck(entry.path, False, f"missing: neither in {MIRROR_ENV} nor in the cache {cache_dir()}")
    size = path.stat().st_size
    if size != entry.bytes:
        return FileCheck(entry.path, False, f"{path} has {size} bytes, expected {entry.bytes}")
    if checksum and (digest := sha256_file(path)) != entry.sha256:
        return FileCheck(entry.path, False, f"{path} has sha256 {digest}, expected {entry.sha256}")
    return FileCheck(entry.path, True, f"{where}: {path}")
