"""`nlprec corpora ...`: the registry of public data sets: list, path, verify."""

from __future__ import annotations

import dataclasses
import json
from typing import List, Optional

import typer

app = typer.Typer(help="Public data sets: list, path, verify.", no_args_is_help=True)


def _size(n_bytes: int) -> str:
    """Bytes in the largest unit that keeps the number under 1024, e.g. "12.2 MB"."""
    size = float(n_bytes)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print every registry field as JSON, plus where found."),
) -> None:
    """List the registered data sets: files, size, licence and where they are on this machine."""
    from nlprec.data import public_datasets

    infos = public_datasets.list_corpora()
    if as_json:
        rows = [{**dataclasses.asdict(info), "where": public_datasets.where_found(info.name)} for info in infos]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = [("name", "files", "size", "licence", "where")]
    table += [
        (info.name, str(len(info.files)), _size(info.total_bytes), info.licence, public_datasets.where_found(info.name))
        for info in infos
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@app.command("path")
def path_command(
    name: str = typer.Argument(..., help="Corpus name, as `nlprec corpora list` shows it."),
    file: Optional[str] = typer.Argument(None, help="One file of the corpus; without it, its folder."),
    download: bool = typer.Option(True, "--download/--no-download", help="Fetch missing files into the cache."),
) -> None:
    """Print the path of a corpus folder or file, downloading it into the cache when missing."""
    from nlprec.data import public_datasets

    print(public_datasets.corpus_path(name, file, download=download))


@app.command("verify")
def verify_command(
    names: Optional[List[str]] = typer.Argument(None, help="Corpora to check; all of them when none given."),
    sizes_only: bool = typer.Option(False, "--sizes-only", help="Check sizes but not sha256."),
) -> None:
    """Check each file's size and sha256 where it is found; exit status 1 if any is missing or bad."""
    from nlprec.data import public_datasets

    checks = [
        check
        for name in names or [info.name for info in public_datasets.list_corpora()]
        for check in public_datasets.verify(name, checksum=not sizes_only)
    ]
    for check in checks:
        print(f"{'ok' if check.ok else 'bad':<4}{check.file}  {check.reason}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
