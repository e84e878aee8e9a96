"""Options and helpers shared by the commands that use the store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mobctl.cli.terminal import json_text, say
from mobctl.errors import UsageError

if TYPE_CHECKING:
    from mobctl.drivers.registry import DriverConfig
    from mobctl.store.contract import Store

DEFAULT_LOCATION = ".mobctl"

STORE_HELP = "Store directory (default: $MOBCTL_STORE, else ./.mobctl)."


def store_option() -> Any:
    # readable=False: a store this user cannot read is the store's error (exit 6), not usage
    return typer.Option(None, "--store", envvar="MOBCTL_STORE", help=STORE_HELP, readable=False)


def timeout_option() -> Any:
    return typer.Option(10.0, "--lock-timeout", help="Seconds to wait for a store lock.")


def allow_path_option() -> Any:
    return typer.Option(
        [],
        "--allow-path",
        metavar="DIR",
        help="Let the definition read path skills and schema files under DIR too (repeatable); "
        "by default only inside its own directory.",
    )


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print one JSON document.")


def open_store(store: Path | None, lock_timeout: float) -> Store:
    """The store ``--store`` (else ``MOBCTL_STORE``, else ``./.mobctl``) names, with what the
    environment says about it: ``MOBCTL_KEY_PASSPHRASE`` encrypts supervisor secrets at rest
    (an empty value counts as unset), ``MOBCTL_MAX_RECORD_BYTES`` caps a record."""
    from mobctl.store.backends import DEFAULT_MAX_RECORD_BYTES, MIN_RECORD_BYTES
    from mobctl.store.backends import open_store as open_backend

    cap = os.environ.get("MOBCTL_MAX_RECORD_BYTES")
    if cap and (not cap.isdigit() or int(cap) < MIN_RECORD_BYTES):
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


def driver_config(*, allow_shell: bool = False, allow_mcp: bool = False) -> DriverConfig:
    """What every driver of this command gets: the environment (credentials, base URLs: never
    from a driver spec) and the working directory."""
    from mobctl.drivers.registry import DriverConfig

    return DriverConfig(
        env=dict(os.environ), allow_shell=allow_shell, allow_mcp=allow_mcp, workdir=Path.cwd()
    )


def emit(document: object) -> None:
    """``--json``: one document on stdout."""
    sys.stdout.write(json_text(document) + "\n")


def print_diagnostics(diagnostics: list[Any]) -> None:
    """A refused definition's diagnostics, one line each, on stderr."""
    from mobctl.cli.diagnostics_output import text_line

    for diag in diagnostics:
        sys.stderr.write(text_line(diag) + "\n")
