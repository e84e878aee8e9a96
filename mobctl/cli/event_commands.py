"""``mobctl events``: show, follow, verify and prune a mob's event log."""

from __future__ import annotations

from pathlib import Path

import typer

from mobctl.cli.boundary import stdout_abandoned
from mobctl.cli.common import confirm, open_store, store_option, timeout_option
from mobctl.cli.completion import complete_mob, complete_run, complete_step
from mobctl.cli.help import App
from mobctl.cli.output import LISTING, REPORT, TEXT, WIDE, json_option, structured
from mobctl.cli.terminal import say
from mobctl.errors import ExitCode

commands = App()  # gathered by mobctl.cli.app

events_app = App(help="A mob's event log: tail (and follow), verify, prune.", no_args_is_help=True)
commands.add_typer(events_app, name="events")

MOB = typer.Argument(..., metavar="MOB", help="A mob id.", autocompletion=complete_mob)


@events_app.command("tail")
def events_tail(
    mob: str = MOB,
    follow: bool = typer.Option(
        False, "-f", "--follow", help="Keep printing new events (Ctrl-C stops, exit 130)."
    ),
    after_cursor: int | None = typer.Option(
        None, "--after-cursor", min=0, metavar="N", help="Only events after cursor N."
    ),
    limit: int | None = typer.Option(
        None,
        "-L",
        "--limit",
        min=0,
        metavar="N",
        help="Show the latest N matches (default 20; with --after-cursor, all after it).",
    ),
    run: str | None = typer.Option(
        None,
        "--run",
        metavar="RUN",
        help="Only this run's events (a run id or a unique prefix).",
        autocompletion=complete_run,
    ),
    step: str | None = typer.Option(
        None,
        "--step",
        metavar="STEP",
        help="Only this step's events.",
        autocompletion=complete_step,
    ),
    types: list[str] = typer.Option(
        [], "--type", metavar="PATTERN[,PATTERN]", help="Event types, globs: 'flow_*,step_failed'."
    ),
    since: str | None = typer.Option(
        None, "--since", metavar="TIME", help="From TIME: RFC 3339, or a duration ago (10m, 1d)."
    ),
    until: str | None = typer.Option(None, "--until", metavar="TIME", help="Up to TIME."),
    output: str = LISTING.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
) -> None:
    """Show a mob's latest events; --follow keeps printing new ones.

    Events are shown oldest first.
    With --follow --run RUN it stops after that run's terminal event (flow_completed,
    flow_failed or flow_canceled) and exits with the run's code, as `mobctl run` does (0
    completed, 3 failed, 4 canceled, 5 timed out); a run whose owner is gone (orphaned) ends
    it at once with error[run_orphaned], exit 3. --follow on a mob that does not exist yet
    waits for it. Filters combine; times are inclusive. Never locks. -o json
    prints one JSON event per line (JSONL), -o yaml one YAML document per event, -o name the
    cursors.

    Examples:

      mobctl events tail code-review --type 'flow_*,step_failed' --since 1h

      mobctl events tail code-review --follow --run 4f0c

      mobctl events tail code-review --after-cursor 12 -o json | jq .kind.type
    """
    from mobctl import api
    from mobctl.cli.event_output import EventPrinter
    from mobctl.cli.parsing import event_query

    fmt = LISTING.choose(output, as_json)
    query = event_query(run=run, step=step, types=types, since=since, until=until)
    opened = open_store(store, 10.0)
    found = api.events_tail(
        opened,
        mob,
        query,
        after_cursor=after_cursor,
        limit=limit,
        follow=follow,
        stop=stdout_abandoned,  # `| head` took what it wanted: noticed at the next poll
        on_wait=lambda message: say(message, err=True),
    )
    show = EventPrinter(fmt)
    shown = 0
    for event in found:
        show(event)
        shown += 1
    if follow and stdout_abandoned():
        raise BrokenPipeError  # ended as a write to the closed pipe would end it
    if not shown and not follow and fmt in (TEXT, WIDE):
        say(f"no events of mob '{mob}' match", err=True)
    if follow and run is not None:  # the run ended, or nobody will end it: say how
        from mobctl.api.waiting import run_end

        end = run_end(opened, mob, run)
        if end.orphan is not None:
            raise end.orphan
        raise typer.Exit(int(end.code or ExitCode.OK))


@events_app.command("verify")
def events_verify(
    mob: str = MOB,
    signatures: bool = typer.Option(
        False, "--signatures", help="Also check the signed checkpoints (`mobctl events seal`)."
    ),
    peer_id: str | None = typer.Option(
        None,
        "--peer-id",
        metavar="PEER",
        help="With --signatures: a supervisor peer id you trust (from `supervisor init` or "
        "`show`); the authority history must vouch for it.",
    ),
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
) -> None:
    """Check a mob's event log.

    Record hashes, cursor order and batch framing.
    Every record's hash is a checksum chained to the record before it. Exit 0 when the log
    verifies; exit 6 naming the first problem and its byte offset when it does not. Never
    locks. With --signatures, also check the checkpoints signed by the mob's supervisor key:
    a record edited, deleted, moved or cut off since it was signed is reported with its
    cursor (checkpoints of rotated-out keys verify against the epoch they name). Each key of
    the authority history must be endorsed by the key before it; --peer-id pins the check to
    a key you recorded elsewhere, so a history replaced as a whole is caught too.

    Examples:

      mobctl events verify code-review

      mobctl events verify code-review --signatures -o json
    """
    from mobctl import api
    from mobctl.errors import StoreCorrupt, UsageError

    fmt = REPORT.choose(output, as_json)
    if peer_id is not None and not signatures:
        raise UsageError("--peer-id needs --signatures", hint="add --signatures")
    opened = open_store(store, 10.0)
    check = api.events_verify(opened, mob)
    signed = api.verify_signatures(opened, mob, peer_id=peer_id) if signatures else None
    ok = check.ok and (signed is None or signed.ok)
    if fmt != TEXT:
        problem = check.problem
        document = {
            "mob_id": check.mob_id,
            "ok": ok,
            "records": check.records,
            "latest_cursor": check.latest_cursor,
            "problem": problem and {"offset": problem.offset, "message": problem.message},
        }
        if signed is not None:
            document["signatures"] = signed.document()
        structured(document, fmt)
        raise typer.Exit(int(ExitCode.OK if ok else StoreCorrupt.exit_code))
    for item in [] if signed is None else signed.problems:  # by cursor, before any error
        at = f" cursor {item.cursor}" if item.cursor is not None else ""
        say(f"problem[{item.code}]{at}: {item.message}")
    if not check.ok:
        raise check.error()
    say(
        f"events of mob '{mob}' verify: {check.records} records, "
        f"latest cursor {check.latest_cursor}"
    )
    if signed is None:
        return
    if not signed.ok:
        unsealed = any(item.code == "unsealed" for item in signed.problems)
        raise StoreCorrupt(
            f"the signed checkpoints of mob '{mob}' do not verify "
            f"({len(signed.problems)} problem(s) above)",
            hint=f"`mobctl events seal {mob}` signs the log now; it needs a supervisor "
            f"authority (`mobctl supervisor init {mob}`)"
            if unsealed
            else None,
        )
    say(
        f"signatures verify: {signed.verified} checkpoint(s), records signed through cursor "
        f"{signed.sealed_through}"
    )


@events_app.command("seal")
def events_seal(
    mob: str = MOB,
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Sign the head of a mob's event log now (a checkpoint).

    It is signed with the mob's supervisor key.
    Runs sign the log when they finish; `seal` signs it on demand (e.g. before archiving).
    Needs a supervisor authority (`mobctl supervisor init`). Sealing a head that is already
    signed with the current key writes nothing.

    Example:

      mobctl events seal code-review

      mobctl events verify code-review --signatures
    """
    from mobctl import api

    fmt = REPORT.choose(output, as_json)
    sealed = api.seal(open_store(store, lock_timeout), mob)
    checkpoint = sealed.checkpoint
    if structured({"written": sealed.written, **checkpoint.document()}, fmt):
        return
    state = "sealed" if sealed.written else "already sealed"
    say(f"{state} mob '{mob}' at cursor {checkpoint.cursor} (epoch {checkpoint.epoch})")


@events_app.command("prune")
def events_prune(
    mob: str = MOB,
    older_than: str = typer.Option(
        ...,
        "--older-than",
        metavar="TIME",
        help="Delete events before TIME: RFC 3339, or a duration ago (30d, 12h).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Delete a mob's old events, except the anchors; print how many.

    Anchors (member spawns and retirements, wiring, mob creation and definition updates) are
    kept whatever their age, and cursors are never reused: the next event still gets a higher
    cursor. Asks first on a terminal; without --yes it refuses when stdin is not a terminal.

    Examples:

      mobctl events prune code-review --older-than 30d --yes

      mobctl events prune code-review --older-than 2026-05-01T00:00:00Z -y -o json
    """
    from mobctl import api
    from mobctl.cli.parsing import parse_time

    def ask(mob_id: str, cutoff: str) -> bool:
        return confirm(
            f"Delete the events of mob '{mob_id}' from before {cutoff}?",
            refused="prune",
            yes_hint="pass --yes to prune without asking",
        )

    fmt = REPORT.choose(output, as_json)
    cutoff = parse_time(older_than, "--older-than")
    opened = open_store(store, lock_timeout)
    result = api.events_prune(opened, mob, cutoff, confirm=None if yes else ask)
    for warning in result.warnings:
        say(f"warning: {warning}", err=True)
    if not structured(result.document(), fmt):
        say(
            f"deleted {result.deleted} events of mob '{mob}' from before {result.older_than} "
            f"(anchors kept; latest cursor {result.latest_cursor})"
        )
