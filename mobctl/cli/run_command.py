"""``mobctl run``: run a flow of a registered mob (or of a definition file)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from mobctl.cli.app import app
from mobctl.cli.common import (
    allow_path_option,
    emit,
    open_store,
    print_diagnostics,
    store_option,
    timeout_option,
)
from mobctl.cli.run_view import RunView
from mobctl.cli.terminal import json_text, say

if TYPE_CHECKING:
    from mobctl.engine.runner import FlowRunner


@app.command()
def run(
    target: str = typer.Argument(
        ..., metavar="MOB_OR_FILE", help="A registered mob id or a definition file."
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
    from mobctl.drivers.selection import parse_drivers
    from mobctl.engine.runner import FlowRunner
    from mobctl.registry import InvalidDefinitionError

    opened = open_store(store, lock_timeout)
    drivers = parse_drivers(driver, output_cap=opened.max_record_bytes)
    values = api.parse_params(param, params)
    deadline = api.parse_duration_ms(timeout) if timeout else None
    try:
        definition, flow_id, revision, schemas, base_dir = api.prepare_run(
            opened, target, flow, allow_paths=allow_path
        )
    except InvalidDefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        raise
    view = RunView(list(definition.flows[flow_id].steps))
    runner = FlowRunner(
        opened,
        definition,
        flow_id,
        values,
        drivers,
        spec_revision=revision,
        schemas=schemas,
        base_dir=base_dir,
        allowed_roots=tuple(allow_path),
        timeout_ms=deadline,
        on_event=view,
    )
    runner.create()
    drive(runner, view, as_json)


def drive(runner: FlowRunner, view: RunView, as_json: bool) -> NoReturn:
    """Execute a created (or resumed) run with its live view; print the outcome and exit with
    its code. Ctrl-C / SIGTERM cancel the run cleanly (exit 130)."""
    from mobctl.engine.flow_state import FlowState
    from mobctl.engine.outputs import result_envelope

    view.note(f"run {runner.run_id} ({runner.mob_id}/{runner.flow_id})")
    interrupted: list[int] = []

    def on_signal(number: int, frame: object) -> None:
        interrupted.append(number)
        runner.request_cancel()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = runner.execute()
    finally:
        view.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for warning in outcome.warnings:
        view.note(f"warning: {warning}")
    final = outcome.run
    steps = FlowState.from_document(final.flow_state.model_dump(mode="json")).step_statuses()
    document = {
        "run_id": final.run_id,
        "mob_id": final.mob_id,
        "flow_id": final.flow_id,
        "status": final.status,
        "cause": outcome.cause,
        "result": result_envelope(final.root_step_outputs),
        "outputs": final.root_step_outputs,
        "steps": steps,
    }
    if as_json:
        emit(document)
    else:
        cause = f" ({outcome.cause})" if outcome.cause else ""
        say(f"run {final.run_id} {final.status}{cause}")
        if document["result"] is not None:
            sys.stdout.write(json_text(document["result"]) + "\n")
    if interrupted:
        raise typer.Exit(130)
    if final.status == "completed":
        raise typer.Exit(0)
    if final.status == "canceled":
        raise typer.Exit(4)
    raise typer.Exit(5 if outcome.timed_out else 3)
