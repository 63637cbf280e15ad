"""`nlprec corpora ...`: the registry of public data sets."""

import typer

app = typer.Typer(help="Public data sets: list, path, verify.", no_args_is_help=True)
