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
    duration_option,
    max_concurrency_option,
    open_store,
    store_option,
    timeout_option,
)
from mobctl.cli.completion import complete_flow, complete_mob, complete_run
from mobctl.cli.help import App
from mobctl.cli.output import (
    LISTING,
    NAMED,
    Column,
    duration,
    json_option,
    listing,
    local_time,
    machine,
    short,
    table,
)
from mobctl.cli.run_logs import runs_logs
from mobctl.cli.terminal import json_text, say

if TYPE_CHECKING:
    from mobctl.api.custody import CancelOutcome
    from mobctl.api.runs import RunDetail, RunSummary, StepSummary


commands = App()  # gathered by mobctl.cli.app
runs_app = App(
    help="Runs of a mob: list, show, logs, wait, cancel, resume, recover.", no_args_is_help=True
)
commands.add_typer(runs_app, name="runs")
runs_app.command("logs")(runs_logs)

MOB = typer.Argument(..., metavar="MOB", help="A mob id.", autocompletion=complete_mob)
RUN = typer.Argument(
    ...,
    metavar="RUN",
    help="A run id, or a prefix of exactly one run id.",
    autocompletion=complete_run,
)
PARAMS_SHOWN = 200  # characters of the params line of `runs show`, unless --full


@runs_app.command("list")
def runs_list(
    mob: str | None = typer.Argument(
        None, metavar="MOB", help="A mob id (default: every mob).", autocompletion=complete_mob
    ),
    flow: str | None = typer.Option(
        None, "--flow", metavar="FLOW", help="Only runs of FLOW.", autocompletion=complete_flow
    ),
    status: list[str] = typer.Option(
        [],
        "--status",
        metavar="STATUS[,STATUS]",
        help="Only runs with one of these statuses: pending, running, completed, failed, "
        "canceled, timed_out, orphaned (comma-separated, repeatable).",
    ),
    limit: int = typer.Option(
        20, "-L", "--limit", min=0, metavar="N", help="Show at most N runs (0: all)."
    ),
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """List runs, newest first: those of MOB, or of every mob.

    Each run with its flow, status, cause, start and duration; "orphaned" marks a run that
    is not terminal while its owner process is gone or its lease expired. The table shows the
    first 8 characters of each run id (any unique prefix names a run); -o wide shows whole
    ids.

    Examples:

      mobctl runs list

      mobctl runs list code-review --status failed,orphaned

      mobctl runs list code-review --flow main --limit 0 -o json
    """
    from mobctl import api

    fmt = LISTING.choose(output, as_json)
    statuses = [part.strip() for value in status for part in value.split(",")]
    found = api.list_runs(
        open_store(store, lock_timeout), mob, flow=flow, statuses=statuses, limit=limit or None
    )
    where = f"mob '{mob}'" if mob else "the store"
    listing(
        fmt,
        found,
        columns=[
            Column("RUN", lambda r: short(r.run_id, fmt)),
            Column("MOB", lambda r: r.mob_id, wide_only=mob is not None),
            Column("FLOW", lambda r: r.flow_id),
            Column("STATUS", _status),
            Column("CAUSE", lambda r: r.cause or "-"),
            Column("STARTED", lambda r: local_time(r.created_at)),
            Column("FINISHED", lambda r: local_time(r.completed_at), wide_only=True),
            Column("DURATION", lambda r: duration(r.duration_ms)),
        ],
        document=lambda r: r.document(),
        name=lambda r: r.run_id,
        empty=f"{where} has no runs{' that match' if flow or status else ''}",
    )


@runs_app.command("show")
def runs_show(
    mob: str = MOB,
    run: str = RUN,
    full: bool = typer.Option(
        False, "--full", help=f"Show the whole params (cut at {PARAMS_SHOWN} characters)."
    ),
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Show a run: its steps, outputs and result.

    Each step with its status, members, attempts, timing and failure reasons (from the event
    log). -o json and -o yaml print the run snapshot, with Meerkat's MobRun field names.

    Examples:

      mobctl runs show code-review 4f0c

      mobctl runs show code-review 4f0c -o json | jq .root_step_outputs
    """
    from mobctl import api

    fmt = LISTING.choose(output, as_json)
    detail = api.show_run(open_store(store, lock_timeout), mob, run)
    if not machine(fmt, detail.run.document(), [detail.run.run_id]):
        _print_detail(detail, full=full)


@runs_app.command("cancel")
def runs_cancel(
    mob: str = MOB,
    run: str = RUN,
    wait: bool = typer.Option(False, "--wait", help="Block until the run is terminal."),
    grace_ms: int = duration_option(
        "5s", "--timeout", "With --wait: how long the owner gets before mobctl takes over."
    ),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
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

    fmt = NAMED.choose(output, as_json)
    opened = open_store(store, lock_timeout)
    outcome = api.cancel_run(opened, mob, run, wait=wait, grace_ms=grace_ms)
    _note_repairs(outcome.repaired)
    _warn(outcome.warnings)
    if not machine(fmt, outcome.document(), [outcome.run.run_id]):
        say(_cancel_line(outcome))


@runs_app.command("recover")
def runs_recover(
    mob: str = MOB,
    cancel: bool = typer.Option(
        False, "--cancel", help="Cancel each orphaned run (cause execution_custody_lost)."
    ),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """List orphaned runs, or cancel them with --cancel.

    Orphaned: not terminal while the owner process is gone or its lease expired. Missing
    terminal events are re-appended first. --cancel records each orphaned run canceled with
    cause execution_custody_lost (Meerkat's behaviour); running it again changes nothing.

    Examples:

      mobctl runs recover code-review

      mobctl runs recover code-review --cancel -o json
    """
    from mobctl import api

    fmt = NAMED.choose(output, as_json)
    recovery = api.recover(open_store(store, lock_timeout), mob, cancel=cancel)
    _warn(recovery.warnings)
    if machine(fmt, recovery.document(), [orphan.run.run_id for orphan in recovery.orphans]):
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


@runs_app.command("resume")
def runs_resume(
    mob: str = MOB,
    run: str = RUN,
    driver: list[str] = typer.Option(
        [],
        "--driver",
        metavar="SPEC",
        help="KIND[:ARG] or ROLE=KIND[:ARG]; repeatable (as for `mobctl run`).",
    ),
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    max_concurrency: int = max_concurrency_option(),
    allow_shell: bool = allow_shell_option(),
    allow_mcp: bool = allow_mcp_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Continue an orphaned run from its snapshot (its owner died).

    `runs list` says orphaned. Completed steps keep their outputs; steps that were running
    are dispatched again (their `step_dispatched` events carry attempt > 1); the run then
    finishes normally, with the exit codes of `mobctl run`. A run whose owner still lives, a
    finished run, and a run whose flow changed since it started are refused (exit 1,
    `run_not_resumable`). Without --driver it uses the echo and scripted: drivers the run was
    started with (recorded in its snapshot); a run started with a command: driver needs
    --driver again (exit 2, `driver_required`): a program named only in the store is never
    run.

    Examples:

      mobctl runs resume hello 3f2a

      mobctl runs resume hello 3f2b --driver echo
    """
    from mobctl import api
    from mobctl.cli.run_command import drive

    fmt = NAMED.choose(output, as_json)
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
        fmt,
    )


@runs_app.command("wait")
def runs_wait(
    mob: str = MOB,
    run: str = RUN,
    output: str = NAMED.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Wait until a run ends, print how it ended, and exit with its code.

    Exit 0 completed, 3 failed, 4 canceled, 5 timed out, as `mobctl run` exits (for CI, after
    `mobctl run --detach`). A run whose owner is gone (orphaned) will never end by itself: the
    wait ends at once with error[run_orphaned], exit 3. Ctrl-C stops waiting (exit 130); the
    run goes on. Never locks.

    Examples:

      mobctl runs wait hello "$(mobctl run hello -p name=Ada --detach)"

      mobctl runs wait code-review 4f0c -o json
    """
    from mobctl.api.waiting import wait_run
    from mobctl.cli.run_command import show_outcome

    fmt = NAMED.choose(output, as_json)
    outcome = wait_run(open_store(store, lock_timeout), mob, run)
    show_outcome(outcome, fmt)
    raise typer.Exit(int(outcome.exit_code))


# --- rendering -------------------------------------------------------------------------------


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
    return summary.shown_status + (" (orphaned)" if summary.orphaned else "")


def _print_detail(detail: RunDetail, *, full: bool) -> None:
    from mobctl.api.failures import failure_of
    from mobctl.cli.failure_output import failure_lines

    summary, run = detail.summary, detail.run
    say(f"run       {run.run_id}")
    say(f"mob       {run.mob_id}")
    say(f"flow      {run.flow_id}")
    say(f"status    {summary.shown_status}" + (f" ({summary.cause})" if summary.cause else ""))
    failure = failure_of(run, detail.steps, summary.cause)
    for line in failure_lines(failure) if failure else []:
        sys.stdout.write(line + "\n")
    if summary.orphaned:
        say(f"orphaned  {summary.orphaned}")
    say(f"started   {local_time(run.created_at)}")
    if run.completed_at:
        say(f"finished  {local_time(run.completed_at)}")
    say(f"duration  {duration(summary.duration_ms)}")
    if run.activation_params:
        say(f"params    {_params(run.activation_params, full)}")
    extras = run.mobctl
    if extras and extras.owner and not run.terminal:
        owner = extras.owner
        say(
            f"owner     pid {owner.pid} on {owner.host}, heartbeat {local_time(owner.heartbeat_at)}"
        )
    if extras and extras.cancel_requested:
        say(f"cancel    requested at {local_time(str(extras.cancel_requested.get('at')))}")
    sys.stdout.write("\nsteps\n")
    header = ["STEP", "STATUS", "MEMBERS", "ATTEMPTS", "STARTED", "DURATION", "REASON"]
    table(header, [_step_row(step) for step in detail.steps], indent="  ")
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
    header = ["MEMBER", "ROLE", "TURNS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE"]
    rows: list[list[str]] = []
    for member in members:
        usage = member.get("usage")
        counts = [str(usage[key]) for key in _USAGE_KEYS] if usage else ["-"] * len(_USAGE_KEYS)
        rows.append([member["agent_identity"], member["role"] or "-", str(member["turns"])])
        rows[-1] += counts
    total = accounting["usage_total"]
    rows.append(["total", "", "", str(total["input_tokens"]), str(total["output_tokens"]), "", ""])
    table(header, rows, indent="  ")


_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


def _params(params: dict[str, Any], full: bool) -> str:
    text = json.dumps(params, ensure_ascii=False)
    if full or len(text) <= PARAMS_SHOWN:
        return text
    return f"{text[:PARAMS_SHOWN]}... ({len(text)} characters; --full shows them all)"


def _step_row(step: StepSummary) -> list[str]:
    return [
        step.step_id,
        step.status,
        ",".join(step.members) or "-",
        str(step.attempts) if step.attempts else "-",
        local_time(step.started_at, clock=True),
        duration(step.duration_ms),
        step.reason or "",
    ]


def _block(title: str, value: Any) -> None:
    if value is None:
        return
    sys.stdout.write(f"\n{title}\n{json_text(value)}\n")
