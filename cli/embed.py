"""`nlprec embed ...`: train word embeddings, query neighbours and analogies, evaluate."""

import typer

app = typer.Typer(help="Word embeddings: train, similar, analogy, evaluate.", no_args_is_help=True)
