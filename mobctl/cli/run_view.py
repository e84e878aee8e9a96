"""What ``mobctl run`` shows while it runs: a live table on a terminal, plain lines otherwise.

Both go to stderr, so stdout (the summary, or the ``--json`` document) is never garbled. Both
show ids and failure reasons (an agent's stderr) with their control characters escaped.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobctl.cli.terminal import printable

if TYPE_CHECKING:
    from mobctl.definition.model import MobDefinition

# a reason is whatever an agent printed last on stderr: a progress line shows its head only
# (the events and `runs show` keep it whole, up to the engine's own limit)
REASON_SHOWN = 500


def _reason(fields: dict[str, Any]) -> str:
    reason = str(fields["reason"])
    return reason if len(reason) <= REASON_SHOWN else reason[: REASON_SHOWN - 1] + "…"


_LINES = {
    "flow_started": lambda f: f"flow {f['flow_id']} started",
    "step_dispatched": lambda f: (
        f"  {f['step_id']}: dispatched to {f['target']['identity']} (attempt {f['attempt']})"
    ),
    "step_target_completed": lambda f: f"  {f['step_id']}: {f['target']['identity']} answered",
    "step_target_failed": lambda f: (
        f"  {f['step_id']}: {f['target']['identity']} failed: {_reason(f)}"
    ),
    "step_completed": lambda f: f"  {f['step_id']}: completed",
    "step_failed": lambda f: f"  {f['step_id']}: FAILED: {_reason(f)}",
    "step_skipped": lambda f: f"  {f['step_id']}: skipped ({_reason(f)})",
    "topology_violation": lambda f: (
        f"  topology violation {f['from_role']} -> {f['to_role']} (advisory)"
    ),
    "supervisor_escalation": lambda f: f"  {f['step_id']}: escalated to {f['escalated_to']}",
}
_STYLE = {
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "canceled": "yellow",
    "skipped": "dim",
}


@dataclass
class _Row:
    status: str = "pending"
    member: str = ""
    attempt: int = 0
    started: float | None = None
    finished: float | None = None
    note: str = ""


class RunView:
    """Feed it the engine's events (from any thread), once ``start`` named the run; ``finish``
    shows the run's final statuses.

    The live table is drawn from the rows each time it is refreshed (8 times a second), so a
    running step's elapsed time ticks between events; ``clock`` gives the seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.rows: dict[str, _Row] = {}
        self.lock = threading.Lock()
        self.muted = False  # progress is not worth a run: stop writing once stderr is gone
        self.live: Any = None
        self.clock = clock

    def start(self, run_id: str, definition: MobDefinition, flow_id: str) -> None:
        """The run exists: say which it is, and show its steps (live on a terminal)."""
        self.note(f"run {run_id} ({definition.mob.id}/{flow_id})")
        self.rows = {step: _Row() for step in definition.flows[flow_id].steps}
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(
                console=Console(stderr=True), refresh_per_second=8, get_renderable=self.table
            )
            self.live.start()

    def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        with self.lock:
            row = self.rows.get(str(fields.get("step_id")))
            now = self.clock()
            if row is not None:
                if kind == "step_dispatched":
                    row.status, row.member, row.attempt = (
                        "running",
                        fields["target"]["identity"],
                        fields["attempt"],
                    )
                    row.started = row.started or now
                elif kind in ("step_completed", "step_failed", "step_skipped"):
                    row.status = kind.removeprefix("step_")
                    row.finished = now
                    row.note = str(fields.get("reason", ""))
        if self.live is not None:
            self.live.refresh()
            return
        line = _LINES.get(kind)
        if line is not None:
            self.note(line(fields))

    def note(self, line: str) -> None:
        """A line on stderr (progress, the run id, a warning), escaped; once stderr is gone
        (`2>&1 | head`), nothing more: the run goes on."""
        if self.muted:
            return
        try:
            sys.stderr.write(printable(line) + "\n")
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            self.muted = True

    def table(self) -> Any:
        """The live table as it is now (the rows, and the clock for running steps)."""
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False)
        for column in ("step", "status", "member", "attempt", "elapsed", ""):
            table.add_column(column)
        with self.lock:
            now = self.clock()
            rows = [(step, _Row(**vars(row))) for step, row in self.rows.items()]
        for step, row in rows:
            elapsed = "" if row.started is None else f"{(row.finished or now) - row.started:.1f}s"
            style = _STYLE.get(row.status, "")
            table.add_row(  # Text, not markup: a reason like "[link=...]" stays text
                Text(printable(step)),
                Text(row.status, style=style),
                Text(printable(row.member)),
                str(row.attempt or ""),
                elapsed,
                Text(printable(row.note[:60])),
            )
        return table

    def finish(self, statuses: Mapping[str, str]) -> None:
        """The run ended: each step takes its final status (a cancel or Ctrl-C folds the
        steps that were running or pending into ``canceled`` without an event), and the
        clock stops; the live table's last frame shows that."""
        with self.lock:
            now = self.clock()
            for step, row in self.rows.items():
                row.status = statuses.get(step, row.status)
                if row.started is not None and row.finished is None:
                    row.finished = now
        self.close()

    def close(self) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None
