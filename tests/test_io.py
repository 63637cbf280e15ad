"""nlprec.io: atomic writes keep the permissions a plain open() would give."""

import os
import stat

from nlprec.io import atomic_write


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_0666_less_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.txt", "w", encoding="utf-8") as handle:
            handle.write("x")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "out.txt") == 0o644


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o640
