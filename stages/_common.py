"""What every stage shares: friendly errors instead of tracebacks."""

from __future__ import annotations

import signal
import sys
from typing import Callable

import typer

from pipeline.errors import GanLabError


def run(main: Callable[..., None]) -> None:
    """Run a stage's `main` as a command line; a GanLabError becomes one line on stderr and exit 2."""
    # SIGTERM (a killed DVC run, a scheduler) unwinds like Ctrl-C, so runs are marked KILLED, not left RUNNING
    signal.signal(signal.SIGTERM, _interrupt)
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(main)
    try:
        app(standalone_mode=False)
    except GanLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # click usage errors in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
