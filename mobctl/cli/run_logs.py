"""``mobctl runs logs``: what each member of a run was asked and did, turn by turn."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from mobctl.cli.common import open_store, store_option, timeout_option
from mobctl.cli.completion import complete_member, complete_mob, complete_run, complete_step
from mobctl.cli.output import REPORT, json_option, structured
from mobctl.cli.terminal import json_text, printable


def runs_logs(  # registered as `runs logs` by mobctl.cli.runs_commands
    mob: str = typer.Argument(..., metavar="MOB", help="A mob id.", autocompletion=complete_mob),
    run: str = typer.Argument(
        ...,
        metavar="RUN",
        help="A run id, or a prefix of exactly one run id.",
        autocompletion=complete_run,
    ),
    step: str | None = typer.Option(
        None, "--step", metavar="STEP", help="Only this step's turns.", autocompletion=complete_step
    ),
    member: str | None = typer.Option(
        None,
        "--member",
        metavar="MEMBER",
        help="Only this member's turns.",
        autocompletion=complete_member,
    ),
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    store: Path | None = store_option(),
    lock_timeout: float = timeout_option(),
) -> None:
    """Print what each member of a run was asked and did, turn by turn.

    Each turn's transcript: the message, what the driver did (an llm member's system prompt,
    model calls, tool calls, usage; a command's stdin, exit status and stderr) and the answer or
    the reason it failed.

    Examples:

      mobctl runs logs code-review 4f0c

      mobctl runs logs code-review 4f0c --step review --member reviewer-1 -o json
    """
    from mobctl import api

    fmt = REPORT.choose(output, as_json)
    logs = api.run_logs(open_store(store, lock_timeout), mob, run, step=step, member=member)
    if structured(logs.document(), fmt):
        return
    if not logs.transcripts:
        sys.stdout.write(f"run {logs.run.run_id} has no turn transcripts (for this filter)\n")
    for transcript in logs.transcripts:
        _print_turn(transcript.record)


def _print_turn(record: dict[str, Any]) -> None:
    """One turn: a heading, then its fields as JSON (escaped: a transcript is model output)."""
    kind = " (escalation)" if record.get("kind") == "escalation" else ""
    heading = (
        f"== {record.get('step_id') or '-'} [{record.get('iteration')}] {record.get('member')} "
        f"attempt {record.get('attempt')}{kind}: {record.get('status')} "
        f"in {record.get('duration_ms')}ms, started {record.get('started_at')}"
    )
    sys.stdout.write(printable(heading) + "\n")
    for field in ("message", "reason", "usage", "driver", "output"):
        value = record.get(field)
        if value is None:
            continue
        text = value if isinstance(value, str) else json_text(value)
        sys.stdout.write(f"{field}:\n{_indented(printable_lines(text))}\n")
    sys.stdout.write("\n")


def printable_lines(text: str) -> str:
    return "\n".join(printable(line) for line in text.splitlines())


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
