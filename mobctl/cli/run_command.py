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
    allow_path_option,
    driver_config,
    duration_option,
    open_store,
    print_diagnostics,
    store_option,
    timeout_option,
)
from mobctl.cli.completion import complete_flow, complete_mob
from mobctl.cli.help import App
from mobctl.cli.output import NAMED, json_option, machine
from mobctl.cli.run_view import RunView
from mobctl.cli.terminal import json_text, say
from mobctl.errors import ExitCode

if TYPE_CHECKING:
    from mobctl.api.running import RunOutcome, Watch

commands = App()  # gathered by mobctl.cli.app


@commands.command()
def run(
    target: str = typer.Argument(
        ...,
        metavar="MOB_OR_FILE",
        help="A registered mob id, or a definition file (a .toml/.json name or a path with /).",
        autocompletion=complete_mob,
    ),
    flow: str | None = typer.Argument(
        None,
        metavar="FLOW",
        help="Flow id (default: main, else the only flow).",
        autocompletion=complete_flow,
    ),
    param: list[str] = typer.Option(
        [], "-p", "--param", metavar="KEY=VALUE", help="A param (JSON when it parses)."
    ),
    params: str | None = typer.Option(
        None, "--params", metavar="JSON|@FILE", help="A JSON object, or @file.json."
    ),
    driver: list[str] = typer.Option(
        [], "--driver", metavar="SPEC", help="KIND[:ARG] or ROLE=KIND[:ARG]; repeatable."
    ),
    deadline: int | None = duration_option(
        None, "--timeout", "Deadline for the run (30s, 5m, 1h30m, ...)."
    ),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    record: Path | None = typer.Option(
        None,
        "--record",
        metavar="DIR",
        help="Save every turn's answer as a cassette in DIR (replay it with --driver replay:DIR).",
    ),
    allow_path: list[Path] = allow_path_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Run a flow of a registered mob, or of a definition file.

    Exit 0 completed, 3 failed, 4 canceled, 5 timed out, 130 on Ctrl-C. A definition file is
    registered first (see `mobctl register`, also for --allow-path).

    Examples:

      mobctl run sample-mobs/minimal.toml -p name=Ada

      mobctl run sample-mobs/minimal.toml -p name=Ada -o name

      mobctl run sample-mobs/minimal.toml -p name=Ada --record cassettes
    """
    from mobctl import api
    from mobctl.api.registration import InvalidDefinitionError
    from mobctl.cli.parsing import parse_params

    fmt = NAMED.choose(output, as_json)
    opened = open_store(store, lock_timeout)
    values = parse_params(param, params)

    def start(watch: Watch) -> RunOutcome:
        try:
            return api.start_run(
                opened,
                target,
                flow=flow,
                params=values,
                drivers=driver,
                config=driver_config(record=record),
                timeout_ms=deadline,
                allow_paths=allow_path,
                watch=watch,
            )
        except InvalidDefinitionError as exc:
            print_diagnostics(exc.diagnostics)
            raise

    drive(start, fmt)


def drive(start: Callable[[Watch], RunOutcome], fmt: str) -> NoReturn:
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
    if not machine(fmt, outcome.document(), [outcome.run.run_id]):
        cause = f" ({outcome.cause})" if outcome.cause else ""
        say(f"run {outcome.run.run_id} {outcome.status}{cause}")
        if outcome.result is not None:
            sys.stdout.write(json_text(outcome.result) + "\n")
    raise typer.Exit(int(ExitCode.INTERRUPTED if interrupted else outcome.exit_code))
