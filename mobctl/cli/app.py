"""The ``mobctl`` command: the Typer app, its command groups, and ``main``.

Command modules define their commands on Typer apps of their own and never import this one
(commands flow one way: this module gathers them). They import heavy modules inside their
functions, so that ``mobctl --version`` stays as cheap as importing typer.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings

import typer

from mobctl import __version__
from mobctl.cli import (
    completion_command,
    definition_commands,
    event_commands,
    member_commands,
    run_command,
    runs_commands,
    store_commands,
    suite_command,
    supervisor_commands,
)
from mobctl.cli.boundary import Boundary
from mobctl.cli.help import App

app = App(
    name="mobctl",
    cls=Boundary,
    help="Validate, register and run mobs: teams of AI agents described in one TOML file.",
    no_args_is_help=True,
    add_completion=True,  # Typer's --install-completion and --show-completion
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
        False, "-V", "--version", callback=_version, is_eager=True, help="Print the version."
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
    completion_command,
    suite_command,
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
    _reopen_closed_streams()
    quiet_libraries()
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # a character the locale cannot write is
            stream.reconfigure(errors="backslashreplace")  # shown escaped, never a crash
    app(prog_name="mobctl")


def _reopen_closed_streams() -> None:
    """A standard stream that whoever started mobctl closed (``>&-``, ``2>&-``, as cron or a
    daemon may leave them; Python then has ``None`` for it) is opened on /dev/null: what would
    go there is dropped, the command still runs, and no file mobctl opens later can take the
    descriptor (and a child's output with it)."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115
