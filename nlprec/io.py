"""Small file helpers shared by every reader and writer: atomic writes, checksums, and the one
model-folder format every task writes (config.json last, weights through the checked reader).

A model folder holds `model.pt` (a plain state dict of CPU tensors), optional `metrics.json`
and task files (tokenizer, id maps), and `config.json` with the format tag, the model config
and the provenance (options, seed, data checksum, nlprec version). config.json is written last,
atomically, so a folder without it is no model. Reading checks everything before use: the
config's format, the CRC-32 of every member of the weights archive, `weights_only` unpickling
(no code from the file runs), the weights' names and shapes against the model, finite values.
torch is imported only by the functions that need it, so vector queries start without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success fsync it and rename it over `path`.

    A crash or an exception leaves the old file (if any) untouched and no partial file behind
    (a SIGKILL can leave the temporary `.<name>.*.tmp`, never a partial `path`). A failing
    write, flush, fsync or rename (disk full, read-only folder) raises `NlprecError` naming
    `path`.
    """
    from nlprec.errors import NlprecError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, _file_mode(path))  # mkstemp makes 0600; give what open() would have given
    except OSError as err:
        raise NlprecError(f"{path}: cannot write ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        failed = _write_failure(err)
        if failed is not None:
            kept = "the previous file is unchanged" if path.exists() else "nothing was written"
            raise NlprecError(f"{path}: cannot write ({failed.strerror or failed}); {kept}") from None
        raise


def _write_failure(err: BaseException) -> OSError | None:
    """The OSError behind a failed write: `err` itself, or the one torch.save's zip writer wraps
    in a RuntimeError ("unexpected pos") when the disk fills up half way."""
    if isinstance(err, OSError):
        return err
    if isinstance(err, RuntimeError) and isinstance(err.__context__, OSError):
        return err.__context__
    return None


# Deflate inflates at most ~1032-fold, so a compressed member cannot honestly hold more than this.
_MAX_DEFLATE_RATIO = 1032
# What zipfile, zlib and numpy raise for a damaged archive (zipfile raises NotImplementedError for
# flags it does not support and RuntimeError for "encrypted" members).
ARCHIVE_ERRORS = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error,
                  NotImplementedError, RuntimeError)


def check_npz_sizes(path: str | os.PathLike, what: str = ".npz archive") -> None:
    """Refuse an `.npz` whose arrays claim more bytes than its members can hold.

    numpy allocates an array from the shape in its header before reading the data, so a damaged
    header claiming 10^12 rows would ask for terabytes; this reads only the headers. Any problem,
    a damaged archive included, raises `NlprecError` naming the file.
    """
    from nlprec.errors import NlprecError

    try:
        archive_size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                stored = min(info.compress_size, archive_size)
                room = min(info.file_size, stored if info.compress_type == zipfile.ZIP_STORED
                           else stored * _MAX_DEFLATE_RATIO)
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                claimed = math.prod(shape) * dtype.itemsize
                if claimed > room:
                    raise NlprecError(f"{path}: array {info.filename} claims shape {shape} ({claimed:,} bytes) but "
                                      f"its member holds at most {room:,} bytes: the file is damaged")
    except ARCHIVE_ERRORS as err:
        raise NlprecError(f"{path}: not a readable {what} ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:160]})") from None


def _file_mode(path: Path) -> int:
    """The mode of the file being replaced, or 0666 less the umask for a new one (as open() does)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large corpora do not load into memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def to_plain(value: Any) -> Any:
    """Tuples to lists and numpy scalars to Python numbers, for JSON and weights_only pickles."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_json(path: Path, kind: type) -> Any:
    """A JSON file holding a `kind` (dict or list); anything else is a one-line error."""
    import json

    from nlprec.errors import NlprecError

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NlprecError(f"{path}: missing from the model folder") from None
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise NlprecError(f"{path}: not valid JSON ({' '.join(str(err).split())[:120]})") from None
    if not isinstance(value, kind):
        raise NlprecError(f"{path}: expected a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def write_json(path: Path, value: Any) -> None:
    """`value` as indented JSON, written atomically."""
    import json

    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(value, indent=2))


def read_torch_file(path: str | os.PathLike, what: str = "nlprec checkpoint") -> Any:
    """What `torch.save` wrote to `path`, after checking every member's CRC-32 (torch does not);
    `weights_only` unpickling, so no code from the file runs. The only `torch.load` of nlprec.
    Any problem is one `NlprecError` line naming the file."""
    import torch

    from nlprec.errors import NlprecError

    path = Path(path)
    if not path.is_file():
        raise NlprecError(f"{path}: no such {what} file")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except ARCHIVE_ERRORS as err:
        raise NlprecError(f"{path}: not a readable {what} (not a torch zip archive: {first_line(err)})") from None
    if damaged is not None:
        raise NlprecError(f"{path}: not a readable {what} (checksum mismatch in {damaged}: the file is damaged)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise NlprecError(f"{path}: not a readable {what} ({first_line(err)})") from None


def first_line(err: BaseException) -> str:
    """An exception's first line, white space folded, at most 200 characters: for one-line errors."""
    text = " ".join(str(err).strip().splitlines()[0].split()) if str(err).strip() else type(err).__name__
    return text[:200]


def read_weights(model: Any, path: Path, what: str) -> None:
    """Load `path` (read_torch_file) into `model`; names, shapes and finite values checked, so a
    damaged or foreign weights file is one line naming it, never a model that is silently wrong."""
    import torch

    from nlprec.errors import NlprecError

    state = read_torch_file(path, what)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError, ValueError) as err:
        raise NlprecError(f"{path}: cannot load the weights ({' '.join(str(err).split())[:200]})") from None
    if not all(bool(torch.isfinite(v).all()) for v in model.state_dict().values() if v.is_floating_point()):
        raise NlprecError(f"{path}: the weights hold NaN or infinite values")


def write_model_folder(folder: Path, config: dict[str, Any], model: Any = None,
                       metrics: dict[str, Any] | None = None) -> None:
    """Write a model folder: `model.pt` (the state dict, as CPU tensors) and `metrics.json` first,
    `config.json` (plus `nlprec_version`) last; the task's own files must already be in place."""
    import torch

    from nlprec import __version__

    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
        with atomic_write(folder / "model.pt") as handle:
            torch.save(state, handle)
    if metrics is not None:
        write_json(folder / "metrics.json", to_plain(metrics))
    write_json(folder / "config.json", to_plain({**config, "nlprec_version": __version__}))


@contextlib.contextmanager
def config_errors(path: Path, kind: str) -> Iterator[None]:
    """What building a model from a folder's config.json raises (a missing key, a wrong type, an
    option the config class lacks) as one NlprecError line naming `path` and the `kind` of config."""
    from nlprec.errors import NlprecError

    try:
        yield
    except NlprecError as err:
        raise NlprecError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise NlprecError(f"{path}: not a {kind} config ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:160]})") from None


def read_model_config(folder: Path, format: str, kind: str, how: str) -> dict[str, Any]:
    """The config.json of a model folder whose "format" is `format`; anything else (no folder, no
    config.json, invalid JSON, another format) is a one-line NlprecError naming the path, the
    `kind` of folder expected ("classifier") and `how` to make one ("train one with `nlprec ...`")."""
    import json

    from nlprec.errors import NlprecError

    path = folder / "config.json"
    if not folder.is_dir():
        raise NlprecError(f"{folder}: no such model folder")
    if not path.is_file():
        raise NlprecError(f"{folder}: not a {kind} folder (no config.json); {how}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NlprecError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != format:
        raise NlprecError(f"{path}: not a {kind} config (expected format {format!r}); {how}")
    return config
