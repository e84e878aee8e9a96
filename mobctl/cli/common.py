"""Options and helpers shared by the commands that use the store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from mobctl.cli.terminal import json_text, say

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


def open_store(store: Path | None, lock_timeout: float) -> Any:
    from mobctl import api
    from mobctl.store.directory import store_location

    def waiting(message: str) -> None:
        say(message, err=True)

    return api.open_store(
        store_location(str(store) if store else None),
        lock_timeout=lock_timeout,
        on_wait=waiting,
        # encrypts supervisor secrets at rest; an empty value counts as unset
        passphrase=os.environ.get("MOBCTL_KEY_PASSPHRASE") or None,
        max_record_bytes=os.environ.get("MOBCTL_MAX_RECORD_BYTES"),
    )


def emit(document: object) -> None:
    """``--json``: one document on stdout."""
    sys.stdout.write(json_text(document) + "\n")


def print_diagnostics(diagnostics: list[Any]) -> None:
    """A refused definition's diagnostics, one line each, on stderr."""
    from mobctl.cli.diagnostics_output import text_line

    for diag in diagnostics:
        sys.stderr.write(text_line(diag) + "\n")
