"""Options and helpers shared by the commands that use the store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mobctl.cli.terminal import printable, say
from mobctl.errors import UsageError

if TYPE_CHECKING:
    from mobctl.drivers.registry import DriverConfig
    from mobctl.store.contract import Store

DEFAULT_LOCATION = ".mobctl"

STORE_HELP = "Store directory (default: $MOBCTL_STORE, else ./.mobctl)."


def store_option() -> Any:
    # readable=False: a store this user cannot read is the store's error (exit 6), not usage
    return typer.Option(
        None,
        "--store",
        envvar="MOBCTL_STORE",
        metavar="PATH",
        help=STORE_HELP,
        readable=False,
        autocompletion=lambda incomplete: [],  # let the shell complete a path
    )


def duration_option(default: str | None, name: str, help: str) -> Any:
    """An option taking a DURATION (``30``, ``30s``, ``1m30s``, ``2h``, ``1d``): its value is
    the milliseconds (None when it is not given and has no default)."""

    def milliseconds(text: str) -> int:
        from mobctl.cli.parsing import parse_duration_ms

        return parse_duration_ms(text, name)

    return typer.Option(default, name, metavar="DURATION", help=help, parser=milliseconds)


def timeout_option() -> Any:
    """``--lock-timeout DURATION``: its value is in seconds (what :func:`open_store` takes)."""

    def seconds(text: str) -> float:
        from mobctl.cli.parsing import parse_duration_ms

        return parse_duration_ms(text, "--lock-timeout") / 1000

    return typer.Option(
        "10s",
        "--lock-timeout",
        metavar="DURATION",
        help="How long to wait for a store lock held by another process.",
        parser=seconds,
    )


def allow_path_option() -> Any:
    return typer.Option(
        [],
        "--allow-path",
        metavar="DIR",
        help="Let the definition read path skills and schema files under DIR too (repeatable); "
        "by default only inside its own directory.",
    )


def open_store(store: Path | None, lock_timeout: float, *, durable: bool = True) -> Store:
    """The store ``--store`` (else ``MOBCTL_STORE``, else ``./.mobctl``) names, with what the
    environment says about it: ``MOBCTL_KEY_PASSPHRASE`` encrypts supervisor secrets at rest
    (an empty value counts as unset), ``MOBCTL_MAX_RECORD_BYTES`` caps a record."""
    from mobctl.store.backends import DEFAULT_MAX_RECORD_BYTES, MIN_RECORD_BYTES
    from mobctl.store.backends import open_store as open_backend

    cap = os.environ.get("MOBCTL_MAX_RECORD_BYTES")
    number = cap is not None and cap.isascii() and cap.isdigit() and len(cap) < 100  # '²'
    if cap and (not number or int(cap) < MIN_RECORD_BYTES):
        raise UsageError(
            f"MOBCTL_MAX_RECORD_BYTES must be a number of bytes of at least "
            f"{MIN_RECORD_BYTES}, not {cap!r}"
        )
    location = str(store) if store else os.environ.get("MOBCTL_STORE") or DEFAULT_LOCATION
    return open_backend(
        location,
        lock_timeout=lock_timeout,
        on_wait=lambda message: say(message, err=True),
        passphrase=os.environ.get("MOBCTL_KEY_PASSPHRASE") or None,
        max_record_bytes=int(cap) if cap else DEFAULT_MAX_RECORD_BYTES,
        durable=durable,
    )


def max_concurrency_option() -> Any:
    return typer.Option(
        16, "--max-concurrency", metavar="N", help="Turns in flight at most (1-1024)."
    )


def allow_shell_option() -> Any:
    return typer.Option(
        False,
        "--allow-shell",
        help="Let llm members whose profile has tools.shell run shell commands (a definition "
        "cannot grant itself a shell).",
    )


def allow_mcp_option() -> Any:
    return typer.Option(
        False,
        "--allow-mcp",
        help="Let llm members start the stdio MCP servers their profile names (programs a "
        "definition names are not run otherwise).",
    )


def driver_config(
    *,
    allow_shell: bool = False,
    allow_mcp: bool = False,
    record: Path | None = None,
    rerecord: bool = False,
) -> DriverConfig:
    """What every driver of this command gets: the environment (credentials, base URLs: never
    from a driver spec), the working directory, and where turns are recorded (``--record``)."""
    from mobctl.drivers.registry import DriverConfig

    return DriverConfig(
        env=dict(os.environ),
        allow_shell=allow_shell,
        allow_mcp=allow_mcp,
        workdir=Path.cwd(),
        record=record,
        rerecord=rerecord,
    )


def print_diagnostics(diagnostics: list[Any], source_text: str = "") -> None:
    """A definition's diagnostics on stderr, as ``validate`` writes them: the warnings of a
    registration, or the errors of a definition it refused."""
    from mobctl.cli.diagnostics_output import text_to_stderr

    text_to_stderr(diagnostics, source_text)


def confirm(question: str, *, refused: str, yes_hint: str) -> bool:
    """Ask ``question [y/N]`` on a terminal; without one, refuse (``confirmation_required``,
    exit 2): a destructive command in a script needs ``--yes``."""
    from mobctl.errors import ConfirmationRequired

    if not sys.stdin.isatty():
        raise ConfirmationRequired(
            f"refusing to {refused} without confirmation: stdin is not a terminal",
            hint=yes_hint,
        )
    sys.stderr.write(printable(f"{question} [y/N] "))
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
