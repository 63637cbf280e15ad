"""Running the `nlprec` CLI in-process from tests, as the console script would."""

from __future__ import annotations

import io
import sys

from nlprec_cli.main import main


def run(argv, capsys, stdin: str | None = None, monkeypatch=None):
    """Run the CLI on `argv` (paths allowed); returns (exit code, stdout, stderr).

    `stdin` (with `monkeypatch`) replaces standard input by that text, with a byte buffer behind it.
    """
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8"))
    try:
        main([str(arg) for arg in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
