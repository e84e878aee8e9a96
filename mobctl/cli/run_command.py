"""``mobctl run``: run a flow of a registered mob (or of a definition file)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from mobctl.cli.common import (
    allow_mcp_option,
    allow_path_option,
    allow_shell_option,
    driver_config,
    emit,
    max_concurrency_option,
    open_store,
    print_diagnostics,
    store_option,
    timeout_option,
)
from mobctl.cli.run_view import RunView
from mobctl.cli.terminal import json_text, say
from mobctl.errors import ExitCode

if TYPE_CHECKING:
    from mobctl.api.running import RunOutcome, Watch

commands = typer.Typer()  # gathered by mobctl.cli.app


@commands.command()
def run(
    target: str = typer.Argument(
        ...,
        metavar="MOB_OR_FILE",
        help="A registered mob id, or a definition file (a .toml/.json name or a path with /).",
    ),
    flow: str | None = typer.Argument(None, help="Flow id (default: main, else the only flow)."),
    param: list[str] = typer.Option([], "-p", "--param", help="KEY=VALUE (JSON when it parses)."),
    params: str | None = typer.Option(None, "--params", help="A JSON object, or @file.json."),
    driver: list[str] = typer.Option(
        [], "--driver", help="KIND[:ARG] or ROLE=KIND[:ARG]; repeatable."
    ),
    timeout: str | None = typer.Option(
        None, "--timeout", help="Deadline for the run (30s, 5m, ...)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document at the end."),
    max_concurrency: int = max_concurrency_option(),
    allow_shell: bool = allow_shell_option(),
    allow_mcp: bool = allow_mcp_option(),
    allow_path: list[Path] = allow_path_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Run a flow; exit 0 completed, 3 failed, 4 canceled, 5 timed out (130 on Ctrl-C).

    A definition file is registered first (see `mobctl register`, also for --allow-path).

    Examples:

      mobctl run sample-mobs/minimal.toml -p name=Ada

      mobctl run code-review main -p change=PR-42 --driver scripted:fixtures/review.toml --json
    """
    from mobctl import api
    from mobctl.api.registration import InvalidDefinitionError
    from mobctl.cli.parsing import parse_duration_ms, parse_params

    opened = open_store(store, lock_timeout)
    values = parse_params(param, params)
    deadline = parse_duration_ms(timeout) if timeout else None

    def start(watch: Watch) -> RunOutcome:
        try:
            return api.start_run(
                opened,
                target,
                flow=flow,
                params=values,
                drivers=driver,
                config=driver_config(allow_shell=allow_shell, allow_mcp=allow_mcp),
                max_concurrency=max_concurrency,
                timeout_ms=deadline,
                allow_paths=allow_path,
                watch=watch,
            )
        except InvalidDefinitionError as exc:
            print_diagnostics(exc.diagnostics)
            raise

    drive(start, as_json)


def drive(start: Callable[[Watch], RunOutcome], as_json: bool) -> NoReturn:
    """Run ``start`` (a new run or a resume) with a live view; print the outcome and exit with
    its code. Ctrl-C / SIGTERM cancel the run cleanly (exit 130)."""
    from mobctl.api.running import Watch

    view = RunView()
    cancel = threading.Event()
    interrupted: list[int] = []

    def on_signal(number: int, frame: object) -> None:
        interrupted.append(number)
        cancel.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = start(Watch(on_event=view, on_start=view.start, on_note=view.note, cancel=cancel))
    finally:
        view.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for warning in outcome.warnings:
        view.note(f"warning: {warning}")
    if as_json:
        emit(outcome.document())
    else:
        cause = f" ({outcome.cause})" if outcome.cause else ""
        say(f"run {outcome.run.run_id} {outcome.status}{cause}")
        if outcome.result is not None:
            sys.stdout.write(json_text(outcome.result) + "\n")
    raise typer.Exit(int(ExitCode.INTERRUPTED if interrupted else outcome.exit_code))
