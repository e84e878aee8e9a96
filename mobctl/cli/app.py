"""The ``mobctl`` command: the Typer app, its command groups, and ``main``.

Command modules define their commands on Typer apps of their own and never import this one
(commands flow one way: this module gathers them). They import heavy modules inside their
functions, so that ``mobctl --version`` stays as cheap as importing typer.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings

import typer

from mobctl import __version__
from mobctl.cli import (
    definition_commands,
    event_commands,
    member_commands,
    run_command,
    runs_commands,
    store_commands,
    supervisor_commands,
)
from mobctl.cli.boundary import Boundary

app = typer.Typer(
    name="mobctl",
    cls=Boundary,
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


for group in (
    definition_commands,
    store_commands,
    run_command,
    runs_commands,
    member_commands,
    event_commands,
    supervisor_commands,
):
    app.add_typer(group.commands)


# loggers of the provider SDKs and their HTTP stacks: a record of theirs would reach stderr raw
# through logging's last-resort handler (google-genai logs "there are non-text parts ...")
SDK_LOGGERS = ("anthropic", "openai", "google_genai", "google.genai", "httpx", "httpcore", "mcp")


def quiet_libraries() -> None:
    """What libraries say on their own never reaches the person's terminal raw: Python warnings
    are ignored unless asked for (``-W`` / ``PYTHONWARNINGS``, the standard idiom for an
    application), and the SDKs' log records go nowhere. A turn's failure reaches the person
    through its reason and ``runs logs``."""
    if not sys.warnoptions:
        warnings.simplefilter("ignore")
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def main() -> None:
    quiet_libraries()
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # a character the locale cannot write is
            stream.reconfigure(errors="backslashreplace")  # shown escaped, never a crash
    app(prog_name="mobctl")
