"""The CLI starts without its heavy dependencies: parsing and --help import none of them.

Each check runs in a fresh interpreter (a subprocess), since this test process has torch
loaded already. Every module in cli/ is covered by globbing the folder, so a new command
module is held to the same rule the day it lands.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("torch", "numba", "faiss", "pandas", "sentencepiece", "numpy", "scipy", "sacrebleu", "matplotlib")
CLI_DIR = Path(__file__).resolve().parents[2] / "cli"
MODULES = sorted(path.stem for path in CLI_DIR.glob("*.py") if path.stem != "__init__")


def _loaded_after(code: str) -> dict:
    """Run `code` in a new interpreter; it must leave a JSON-able result in `result`."""
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps({{"result": result, "heavy": sorted(
            name for name in sys.modules if name.split(".")[0] in {HEAVY!r})}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_cli_module_is_found():
    assert {"main", "embed", "rec", "translate", "corpora"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_importing_a_cli_module_loads_nothing_heavy(module):
    report = _loaded_after(f"import nlprec_cli.{module}\nresult = None\n")
    assert report["heavy"] == [], f"nlprec_cli.{module} imports {report['heavy']} at module level"


def test_help_of_every_command_loads_nothing_heavy():
    """`--help` of the app, every group and every command, all in one process."""
    report = _loaded_after("""
        import contextlib, io
        import typer.main
        from nlprec_cli.main import app, main

        def paths(command, prefix):
            yield prefix
            if hasattr(command, "commands"):  # a group (typer carries its own click)
                for name, sub in command.commands.items():
                    yield from paths(sub, prefix + [name])

        result = []
        for path in paths(typer.main.get_command(app), []):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    main(path + ["--help"])
                except SystemExit as exit_:
                    assert exit_.code in (0, None), (path, exit_.code)
            assert "Usage:" in out.getvalue(), path
            result.append(" ".join(path))
    """)
    assert {"", "embed", "embed similar", "embed train", "rec recommend", "translate run", "bleu"} <= set(
        report["result"])
    assert report["heavy"] == [], f"--help imported {report['heavy']}"


def test_analogy_methods_match_the_api():
    """cli/embed.py spells the Literal out to stay light; it must stay nlprec.index's."""
    import typing

    from nlprec.index import AnalogyMethod
    from nlprec_cli.embed import AnalogyMethod as cli_methods

    assert typing.get_args(cli_methods) == typing.get_args(AnalogyMethod)
