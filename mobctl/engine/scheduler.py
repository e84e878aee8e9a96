"""The scheduler loop (flow-semantics §6): guards, node and body-frame grants, frames sealed,
one write per pass, then waiting for the next turn to end."""

from __future__ import annotations

import queue
import time

from mobctl.engine.loops import Loops
from mobctl.engine.recorder import Recorder
from mobctl.engine.records import FrameRun, RunFatal
from mobctl.engine.run_context import RunContext
from mobctl.engine.steps import Steps
from mobctl.engine.turns import Turns
from mobctl.store.models import DEADLINE_EXCEEDED

CANCEL_POLL = 0.25  # how often a cancel request in the snapshot is looked for (seconds)
RENEW_EVERY = 5.0  # an idle owner renews its lease this often (seconds)


class Scheduler:
    def __init__(
        self, run: RunContext, recorder: Recorder, turns: Turns, steps: Steps, loops: Loops
    ) -> None:
        self.run = run
        self.recorder = recorder
        self.turns = turns
        self.steps = steps
        self.loops = loops
        self._last_cancel_check = 0.0

    def loop(self, redispatch: list[tuple[FrameRun, str]]) -> None:
        """Until the root frame is sealed and no turn is in flight. ``redispatch``: a resumed
        run's steps that were running, executed again first."""
        run = self.run
        root = run.root
        for frame, node_id in redispatch:
            self.steps.start(frame, node_id, again=True)
        attempts = self.steps.attempts
        while True:
            self.guards()
            attempts.dispatch_due()
            granted = self._grant_nodes() | self.loops.grant_body_frames()
            advanced = self.loops.revisit_frames()
            self.recorder.flush()
            if root.sealed_as is not None and not run.tasks:
                return
            if run.tasks:
                due = attempts.next_due()
                wait = CANCEL_POLL if due is None else max(min(due, CANCEL_POLL), 0.0)
                try:
                    report = self.turns.reports.get(timeout=wait)
                except queue.Empty:
                    self._heartbeat()
                    continue
                while True:  # every report that is in: one flush for all of them
                    self.steps.turn_ended(report)
                    try:
                        report = self.turns.reports.get_nowait()
                    except queue.Empty:
                        break
            elif not granted and not advanced:
                raise RunFatal(
                    "internal",
                    f"frame runtime stalled for root frame '{root.frame_id}' in run '{run.run_id}'",
                )

    def guards(self) -> None:
        """Cancel requested, or the flow's deadline passed: run-fatal (§6 step 1)."""
        run = self.run
        if run.cancel_flag.is_set() or self._cancel_requested():
            raise RunFatal("cancel_requested", "run canceled")
        remaining = run.remaining_ms()
        if remaining is not None and remaining <= 0:
            over = -remaining
            extra = f" (+{int(over)}ms)" if over >= 1 else ""
            raise RunFatal(
                "step_error",
                f"flow failed for run {run.run_id}: {DEADLINE_EXCEEDED}{run.run_id}{extra}",
                detail="deadline",
            )

    def _cancel_requested(self) -> bool:
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_POLL:
            return False
        self._last_cancel_check = now
        return bool(self.run.runs.cancel_request(self.run.run_id))

    def _heartbeat(self) -> None:
        if time.monotonic() - self.recorder.last_write > RENEW_EVERY:
            self.recorder.renew()

    def _grant_nodes(self) -> bool:
        """Admit ready nodes, smallest frame id first, within ``max_active_nodes``."""
        run, state = self.run, self.run.flow_state
        granted = False
        while True:
            ready = sorted(
                f
                for f, frame in run.live.items()
                if not frame.sealed_as and frame.state.ready_queue()
            )
            if not ready:
                return granted
            frame = run.frames[ready[0]]
            node_id = frame.state.ready_queue()[0]
            if frame.state.specs[node_id].kind == "Step":
                limit = state.max_active_nodes
                if limit and state.active_node_count >= limit:
                    return granted
                frame.state.admit()
                state.active_node_count += 1
                state.last_granted_frame = frame.frame_id
                self.steps.start(frame, node_id)
            else:  # a loop node takes no slot (deviation c)
                frame.state.admit()
                self.loops.start(frame, node_id)
            granted = True
