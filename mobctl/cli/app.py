"""The ``mobctl`` command: the Typer app and the one error boundary.

Command modules register themselves on ``app``; they import heavy modules inside their
functions so that ``mobctl --version`` stays as cheap as importing typer.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from mobctl import __version__
from mobctl.errors import ExitCode, MobctlError


def report_error(code: str, message: str, hint: str | None = None) -> None:
    """The one way errors reach a user: ``error[<code>]: <message>`` and ``hint:`` on stderr."""
    sys.stderr.write(f"error[{code}]: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")


class _Boundary(TyperGroup):
    """Turns every exception of a command into a message and a documented exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except MobctlError as exc:
            report_error(exc.code, exc.message, exc.hint)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            report_error("interrupted", "interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:
            if os.environ.get("MOBCTL_DEBUG") == "1":
                traceback.print_exc()
            report_error(
                "internal",
                f"this is a bug in mobctl {__version__}: {type(exc).__name__}: {exc}",
                "re-run with MOBCTL_DEBUG=1 for the traceback and report it",
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None


app = typer.Typer(
    name="mobctl",
    cls=_Boundary,
    help="Validate, register and run mobs: teams of AI agents described in one TOML file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"mobctl {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """mobctl: validate, register and run mobs (Meerkat's meerkat-mob TOML format)."""


from mobctl.cli import (  # noqa: E402,F401  (registers the commands)
    definition_commands,
    event_commands,
    member_commands,
    run_command,
    runs_commands,
    store_commands,
    supervisor_commands,
)


def main() -> None:
    app(prog_name="mobctl")
