"""``mobctl run``: run a flow of a registered mob (or of a definition file)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from mobctl.cli.common import (
    allow_mcp_option,
    allow_path_option,
    allow_shell_option,
    driver_config,
    duration_option,
    max_concurrency_option,
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
    from mobctl.api.registration import Registration
    from mobctl.api.running import RunOutcome, Watch
    from mobctl.definition.model import MobDefinition

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
        [], "-p", "--param", metavar="KEY=VALUE", help="A param; the value is a string."
    ),
    param_json: list[str] = typer.Option(
        [], "-P", "--param-json", metavar="KEY=JSON", help="A param whose value is JSON (-P n=3)."
    ),
    params: str | None = typer.Option(
        None, "--params", metavar="JSON|@FILE", help="A JSON object, or @file.json."
    ),
    driver: list[str] = typer.Option(
        [], "--driver", metavar="SPEC", help="KIND[:ARG] or ROLE=KIND[:ARG]; repeatable."
    ),
    deadline: int | None = duration_option(
        None, "--timeout", "Deadline for the run (30s, 5m, 1h30m, ...; 0: none)."
    ),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    record: Path | None = typer.Option(
        None,
        "--record",
        metavar="DIR",
        help="Save every turn's answer as a cassette in DIR (replay it with --driver replay:DIR).",
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Refuse a definition file that has a warning (as validate)."
    ),
    max_concurrency: int = max_concurrency_option(),
    allow_shell: bool = allow_shell_option(),
    allow_mcp: bool = allow_mcp_option(),
    allow_path: list[Path] = allow_path_option(),
    detach: bool = typer.Option(
        False,
        "--detach",
        help="Start the run in a background process that owns it, print its id and exit 0.",
    ),
    report_to: int | None = typer.Option(None, "--report-to", hidden=True),  # --detach's child
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Run a flow of a registered mob, or of a definition file.

    Exit 0 completed, 3 failed, 4 canceled, 5 timed out, 130 on Ctrl-C. A definition file is
    registered first (see `mobctl register`, also for --allow-path). With --detach the run goes
    on in the background once it exists (its warnings and any error before that are printed,
    with their exit code); `mobctl runs wait MOB RUN` waits for it and exits with its code,
    `mobctl events tail MOB -f --run RUN` follows it.

    Examples:

      mobctl run sample-mobs/minimal.toml -p name=Ada

      mobctl run hello main -p name=Ada --driver echo -o name

      mobctl run hello -P name='"Ada"' -o json --record cassettes

      mobctl runs wait hello "$(mobctl run hello -p name=Ada --detach)"
    """
    from mobctl import api
    from mobctl.api.registration import InvalidDefinitionError
    from mobctl.cli.parsing import parse_params

    fmt = NAMED.choose(output, as_json)
    if detach:
        from mobctl.cli import detach as detached

        detached.refuse_stdin(params)
        arguments = ["--lock-timeout", f"{lock_timeout:g}"]
        for name, given in (("-p", param), ("-P", param_json), ("--driver", driver)):
            arguments += [item for value in given for item in (name, value)]
        arguments += [item for path in allow_path for item in ("--allow-path", str(path))]
        arguments += ["--params", params] if params is not None else []
        arguments += ["--timeout", f"{deadline}ms"] if deadline is not None else []
        arguments += ["--record", str(record)] if record is not None else []
        arguments += ["--store", str(store)] if store is not None else []
        arguments += ["--strict"] if strict else []
        arguments += ["--max-concurrency", str(max_concurrency)]
        arguments += ["--allow-shell"] if allow_shell else []
        arguments += ["--allow-mcp"] if allow_mcp else []
        report = detached.start(["run", *arguments], [target, *([flow] if flow else [])])
        if not machine(fmt, report, [report["run_id"]]):
            say(report["run_id"])
        say(
            f"in the background (pid {report['pid']}); "
            f"`mobctl runs wait {report['mob_id']} {report['run_id']}` waits for it",
            err=True,
        )
        return
    opened = open_store(store, lock_timeout)
    values = parse_params(param, params, param_json)

    def registered(registration: Registration) -> None:
        try:
            print_diagnostics(registration.warnings, registration.source_text)
            if registration.changed:
                say(f"registered {registration.mob_id} revision {registration.revision}", err=True)
            sys.stderr.flush()
        except BrokenPipeError:  # nobody reads stderr (`2>&1 | head -0`): the run goes on
            pass

    def on_start(watch: Watch) -> Callable[[str, MobDefinition, str], None]:
        def started(run_id: str, definition: MobDefinition, flow_id: str) -> None:
            watch.on_start(run_id, definition, flow_id)
            if report_to is not None:  # a detached child: the run exists, the parent may go
                from mobctl.cli.detach import report

                report(report_to, run_id, definition.mob.id, flow_id)

        return started

    def start(watch: Watch) -> RunOutcome:
        try:
            return api.start_run(
                opened,
                target,
                flow=flow,
                params=values,
                drivers=driver,
                config=driver_config(allow_shell=allow_shell, allow_mcp=allow_mcp, record=record),
                max_concurrency=max_concurrency,
                timeout_ms=deadline,
                allow_paths=allow_path,
                strict=strict,
                watch=replace(watch, on_registered=registered, on_start=on_start(watch)),
            )
        except InvalidDefinitionError as exc:
            print_diagnostics(exc.diagnostics, exc.source_text)
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
        view.finish(outcome.document()["steps"])
    finally:
        view.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for warning in outcome.warnings:
        view.note(f"warning: {warning}")
    show_outcome(outcome, fmt)
    raise typer.Exit(int(ExitCode.INTERRUPTED if interrupted else outcome.exit_code))


def show_outcome(outcome: RunOutcome, fmt: str) -> None:
    """How a run ended, on stdout: ``run ID STATUS (CAUSE)``, why it did not complete, and
    its result (json, yaml: one document; name: the run id)."""
    if machine(fmt, outcome.document(), [outcome.run.run_id]):
        return
    from mobctl.cli.failure_output import failure_lines

    cause = f" ({outcome.cause})" if outcome.cause else ""
    say(f"run {outcome.run.run_id} {outcome.shown_status}{cause}")
    for line in failure_lines(outcome.failure) if outcome.failure else []:
        sys.stdout.write(line + "\n")
    if outcome.result is not None:
        sys.stdout.write(json_text(outcome.result) + "\n")
