"""``mobctl runs``: list, show, cancel and recover the runs of a mob."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mobctl.cli.common import (
    allow_mcp_option,
    allow_shell_option,
    driver_config,
    emit,
    json_option,
    max_concurrency_option,
    open_store,
    store_option,
    timeout_option,
)
from mobctl.cli.run_logs import runs_logs
from mobctl.cli.terminal import json_text, printable, say

if TYPE_CHECKING:
    from mobctl.api.custody import CancelOutcome
    from mobctl.api.runs import RunDetail, RunSummary, StepSummary


commands = typer.Typer()  # gathered by mobctl.cli.app
runs_app = typer.Typer(
    help="Runs of a mob: list, show, logs, cancel, resume, recover.", no_args_is_help=True
)
commands.add_typer(runs_app, name="runs")
runs_app.command("logs")(runs_logs)

MOB = typer.Argument(..., metavar="MOB", help="A mob id.")
RUN = typer.Argument(..., metavar="RUN", help="A run id, or a prefix of exactly one run id.")


@runs_app.command("list")
def runs_list(
    mob: str = MOB,
    flow: str | None = typer.Option(None, "--flow", help="Only runs of this flow."),
    status: list[str] = typer.Option(
        [],
        "--status",
        help="pending, running, completed, failed, canceled or orphaned; repeatable.",
    ),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """List a mob's runs, newest first.

    Each run with its flow, status, cause, start and duration; "orphaned" marks a run that is
    not terminal while its owner process is gone or its lease expired.

    Examples:

      mobctl runs list code-review --status failed --status orphaned

      mobctl runs list code-review --flow main --json
    """
    from mobctl import api

    found = api.list_runs(open_store(store, lock_timeout), mob, flow=flow, statuses=status)
    if as_json:
        emit([summary.document() for summary in found])
        return
    if not found:
        say(f"mob '{mob}' has no runs{' that match' if flow or status else ''}", err=True)
        return
    _table([["RUN", "FLOW", "STATUS", "CAUSE", "STARTED", "DURATION"], *map(_row, found)])


@runs_app.command("show")
def runs_show(
    mob: str = MOB,
    run: str = RUN,
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Show a run: its steps, outputs and result.

    Each step with its status, members, attempts, timing and failure reasons (from the event
    log). --json prints the run snapshot, with Meerkat's MobRun field names.

    Examples:

      mobctl runs show code-review 4f0c

      mobctl runs show code-review 4f0c --json | jq .root_step_outputs
    """
    from mobctl import api

    detail = api.show_run(open_store(store, lock_timeout), mob, run)
    if as_json:
        emit(detail.run.document())
        return
    _print_detail(detail)


@runs_app.command("cancel")
def runs_cancel(
    mob: str = MOB,
    run: str = RUN,
    wait: bool = typer.Option(False, "--wait", help="Block until the run is terminal."),
    timeout: str = typer.Option(
        "5s", "--timeout", help="With --wait: how long the owner gets before mobctl takes over."
    ),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """Cancel a run from any process.

    The process running it stops within a second: it kills the in-flight driver processes and
    records the run canceled (cause cancel_requested).

    With --wait, block until the run is terminal and print its final status; if the owner
    has not stopped it within --timeout, mobctl takes the run over and records the cancel
    itself. An orphaned run (its owner is gone) is canceled at once by this command. A run that
    is already terminal is left alone (exit 0).

    Examples:

      mobctl runs cancel code-review 4f0c

      mobctl runs cancel code-review 4f0c --wait --timeout 10s
    """
    from mobctl import api
    from mobctl.cli.parsing import parse_duration_ms

    grace = parse_duration_ms(timeout)
    outcome = api.cancel_run(open_store(store, lock_timeout), mob, run, wait=wait, grace_ms=grace)
    _note_repairs(outcome.repaired)
    _warn(outcome.warnings)
    if as_json:
        emit(outcome.document())
    else:
        say(_cancel_line(outcome))


@runs_app.command("recover")
def runs_recover(
    mob: str = MOB,
    cancel: bool = typer.Option(
        False, "--cancel", help="Cancel each orphaned run (cause execution_custody_lost)."
    ),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
    as_json: bool = json_option(),
) -> None:
    """List orphaned runs, or cancel them with --cancel.

    Orphaned: not terminal while the owner process is gone or its lease expired. Missing
    terminal events are re-appended first. --cancel records each orphaned run canceled with
    cause execution_custody_lost (Meerkat's behaviour); running it again changes nothing.

    Examples:

      mobctl runs recover code-review

      mobctl runs recover code-review --cancel --json
    """
    from mobctl import api

    recovery = api.recover(open_store(store, lock_timeout), mob, cancel=cancel)
    _warn(recovery.warnings)
    if as_json:
        emit(recovery.document())
        return
    for run_id in recovery.repaired:
        say(f"repaired run {run_id}: appended its missing terminal event")
    verbs = {"orphaned": "orphaned", "canceled": "canceled", "taken": "left alone"}
    for orphan in recovery.orphans:
        note = f": {orphan.reason}" if orphan.outcome == "orphaned" else f" ({orphan.reason})"
        if orphan.outcome == "taken":
            note = f": another process holds it now (status {orphan.run.status})"
        say(f"{verbs[orphan.outcome]} run {orphan.run.run_id}{note}")
    if not recovery.orphans:
        say(f"mob '{mob}' has no orphaned runs")
    elif not cancel:
        say(f"hint: `mobctl runs recover {mob} --cancel` cancels them", err=True)


# --- rendering -------------------------------------------------------------------------------


@runs_app.command("resume")
def runs_resume(
    mob: str = MOB,
    run: str = RUN,
    driver: list[str] = typer.Option(
        [], "--driver", help="KIND[:ARG] or ROLE=KIND[:ARG]; repeatable (as for `mobctl run`)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document at the end."),
    max_concurrency: int = max_concurrency_option(),
    allow_shell: bool = allow_shell_option(),
    allow_mcp: bool = allow_mcp_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Continue an orphaned run from its snapshot (its owner died: `runs list` says orphaned).

    Completed steps keep their outputs; steps that were running are dispatched again (their
    `step_dispatched` events carry attempt > 1); the run then finishes normally, with the exit
    codes of `mobctl run`. A run whose owner still lives, a finished run, and a run whose flow
    changed since it started are refused (exit 1, `run_not_resumable`). Without --driver it
    uses the echo and scripted: drivers the run was started with (recorded in its snapshot);
    a run started with a command: driver needs --driver again (exit 2, `driver_required`):
    a program named only in the store is never run.

    Examples:

      mobctl runs resume code-review 3f2a

      mobctl runs resume code-review 3f2a --driver scripted:fixtures/review.toml
    """
    from mobctl import api
    from mobctl.cli.run_command import drive

    opened = open_store(store, lock_timeout)
    drive(
        lambda watch: api.resume_run(
            opened,
            mob,
            run,
            drivers=driver,
            config=driver_config(allow_shell=allow_shell, allow_mcp=allow_mcp),
            max_concurrency=max_concurrency,
            watch=watch,
        ),
        as_json,
    )


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        say(f"warning: {warning}", err=True)


def _note_repairs(run_ids: list[str]) -> None:
    for run_id in run_ids:
        say(f"repaired run {run_id}: appended its missing terminal event", err=True)


def _cancel_line(outcome: CancelOutcome) -> str:
    run = outcome.run
    cause = outcome.document()["cause"]
    status = run.status + (f" ({cause})" if cause else "")
    owner = run.mobctl.owner if run.mobctl else None
    if outcome.action == "already_terminal":
        return f"run {run.run_id} is already {status}: nothing to cancel"
    if outcome.action == "requested":
        holder = f" (pid {owner.pid} on {owner.host})" if owner else ""
        return f"cancel requested for run {run.run_id}; its owner{holder} stops it (--wait waits)"
    if outcome.action == "canceled_here":
        return f"run {run.run_id} {status}: canceled by this process because {outcome.why}"
    return f"run {run.run_id} {status}"


def _status(summary: RunSummary) -> str:
    return summary.status + (" (orphaned)" if summary.orphaned else "")


def _row(summary: RunSummary) -> list[str]:
    return [
        summary.run_id,
        summary.flow_id,
        _status(summary),
        summary.cause or "-",
        _when(summary.created_at),
        _duration(summary.duration_ms),
    ]


def _table(rows: list[list[str]]) -> None:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def _when(stamp: str | None) -> str:
    return "-" if stamp is None else stamp[:19].replace("T", " ") + "Z"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    if ms < 3_600_000:
        return f"{ms // 60_000}m{ms // 1000 % 60:02d}s"
    return f"{ms // 3_600_000}h{ms // 60_000 % 60:02d}m"


def _print_detail(detail: RunDetail) -> None:
    summary, run = detail.summary, detail.run
    say(f"run       {run.run_id}")
    say(f"mob       {run.mob_id}")
    say(f"flow      {run.flow_id}")
    say(f"status    {run.status}" + (f" ({summary.cause})" if summary.cause else ""))
    if summary.orphaned:
        say(f"orphaned  {summary.orphaned}")
    say(f"started   {_when(run.created_at)}")
    if run.completed_at:
        say(f"finished  {_when(run.completed_at)}")
    say(f"duration  {_duration(summary.duration_ms)}")
    if run.activation_params:
        say(f"params    {json.dumps(run.activation_params, ensure_ascii=False)}")
    extras = run.mobctl
    if extras and extras.owner and not run.terminal:
        owner = extras.owner
        say(f"owner     pid {owner.pid} on {owner.host}, heartbeat {owner.heartbeat_at}")
    if extras and extras.cancel_requested:
        say(f"cancel    requested at {extras.cancel_requested.get('at')}")
    sys.stdout.write("\nsteps\n")
    rows = [["STEP", "STATUS", "MEMBERS", "ATTEMPTS", "STARTED", "DURATION", "REASON"]]
    rows += [_step_row(step) for step in detail.steps]
    _table([["  " + row[0], *row[1:]] for row in rows])
    for step in detail.steps:
        failures = step.failed_attempts
        if len(failures) > 1 or any(reason != step.reason for _, _, reason in failures):
            for member, attempt, reason in failures:
                say(f"  {step.step_id}: {member} attempt {attempt} failed: {reason}")
    _block("outputs", run.root_step_outputs or None)
    _block("result", detail.result)
    _print_accounting(detail.accounting)


def _print_accounting(accounting: dict[str, Any]) -> None:
    """Tokens per member (``-`` where its driver measures none), then the run's total."""
    members = accounting["members"]
    if not members:
        return
    sys.stdout.write("\naccounting (tokens)\n")
    rows = [["  MEMBER", "ROLE", "TURNS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE"]]
    for member in members:
        usage = member.get("usage")
        counts = [str(usage[key]) for key in _USAGE_KEYS] if usage else ["-"] * len(_USAGE_KEYS)
        rows.append(["  " + member["agent_identity"], member["role"] or "-", str(member["turns"])])
        rows[-1] += counts
    total = accounting["usage_total"]
    rows.append(
        ["  total", "", "", str(total["input_tokens"]), str(total["output_tokens"]), "", ""]
    )
    _table(rows)


_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


def _step_row(step: StepSummary) -> list[str]:
    return [
        step.step_id,
        step.status,
        ",".join(step.members) or "-",
        str(step.attempts) if step.attempts else "-",
        _when(step.started_at)[11:] if step.started_at else "-",
        _duration(step.duration_ms),
        step.reason or "",
    ]


def _block(title: str, value: Any) -> None:
    if value is None:
        return
    sys.stdout.write(f"\n{title}\n{json_text(value)}\n")
