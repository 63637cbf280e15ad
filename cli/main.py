"""Entry point of the `nlprec` command: mounts the sub-commands and turns errors into one line.

Any `NlprecError` (bad file, bad value) and any usage error print `error: <message>` on one
line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
import typer.core

try:  # newer typer carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_errors

# Plain click-style errors: one line each, no boxed panels.
typer.core.HAS_RICH = False

from nlprec.errors import NlprecError  # noqa: E402
from nlprec_cli import corpora, embed  # noqa: E402
from nlprec_cli import translate  # noqa: E402
from nlprec_cli import rec  # noqa: E402
from nlprec_cli import plot  # noqa: E402
from nlprec_cli import serve  # noqa: E402
from nlprec_cli import classify  # noqa: E402
from nlprec_cli import bert  # noqa: E402

app = typer.Typer(
    name="nlprec",
    help="Train and query word embeddings, sequence models and recommenders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(embed.app, name="embed")
app.add_typer(translate.app, name="translate")
app.add_typer(rec.app, name="rec")
app.add_typer(plot.app, name="plot")
app.add_typer(classify.app, name="classify")
app.add_typer(bert.app, name="bert")
app.command("bleu")(translate.bleu)
app.command("serve")(serve.serve)


@app.command("list")
def list_models() -> None:
    """The registered models, by family."""
    from nlprec.registry import list_models as registered

    for entry in registered():
        print(f"{entry.family:<12} {entry.name:<10} {entry.description}")

app.add_typer(corpora.app, name="corpora")


def fail(message: str) -> None:
    """Print one error line and exit with the usage-error status."""
    first_line = " ".join(str(message).split())
    print(f"error: {first_line}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; the console script `nlprec` calls this."""
    try:
        status = app(args=argv, prog_name="nlprec", standalone_mode=False)
    except NlprecError as err:
        fail(str(err))
    except click_errors.NoArgsIsHelpError as err:
        if err.ctx is not None:
            print(err.ctx.get_help())
        raise SystemExit(2) from None
    except click_errors.UsageError as err:
        fail(err.format_message())
    except OSError as err:  # disk full, read-only folder, permissions: one line naming the path
        where = f"{err.filename}: " if err.filename else ""
        fail(f"{where}{err.strerror or err}")
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except typer.Exit as err:
        raise SystemExit(err.exit_code) from None
    if isinstance(status, int) and status != 0:  # typer.Exit(n) is returned when not standalone
        raise SystemExit(status)


if __name__ == "__main__":
    main()
