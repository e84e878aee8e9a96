"""Custody of a run (flow-semantics §12): who owns it, whether it is orphaned, and converging
an orphaned (or unresponsive) run to ``canceled`` from another process.

``orphan_reason`` is pure: the snapshot, the clock and a probe of local processes go in, a
reason comes out. ``runs list``, ``runs cancel``, ``runs recover`` and ``runs resume`` share it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from mobctl import host
from mobctl.clock import parse_timestamp, timestamp
from mobctl.engine.flow_state import FlowState
from mobctl.errors import CustodyLost
from mobctl.store.changes import RunExpectation, RunMutation
from mobctl.store.contract import Store
from mobctl.store.models import (
    EventKind,
    FlowRunState,
    FrameSnapshot,
    LoopSnapshot,
    MobEvent,
    MobRun,
    NewMobEvent,
    RunOwner,
)

ProcessProbe = Callable[[int, str, str], host.Liveness]
"""``(pid, host, process_start)`` -> whether that process is gone, alive or unknown."""

CLOCK_SKEW_MARGIN_MS = 60_000
"""How far another host's clock may be off before its owner's heartbeat is misjudged: a lease
held from another host counts as expired only ``ttl_ms`` plus this margin after its last
heartbeat (a lease of this host is judged by its process, never by the clock)."""

TERMINAL_NODE = frozenset({"Completed", "Failed", "Skipped", "Canceled"})
TERMINAL_LOOP = frozenset({"Completed", "Exhausted", "Failed", "Canceled"})


def orphan_reason(run: MobRun, now: datetime, *, probe: ProcessProbe = host.liveness) -> str | None:
    """Why ``run`` is orphaned (flow-semantics §12.2), or None when it is terminal or owned.

    Orphaned: non-terminal and its lease is missing or released; or its owner is on this host
    and that process is gone (or the pid now belongs to another process); or its owner is on
    another host and its heartbeat is older than the lease's ``ttl_ms`` plus
    :data:`CLOCK_SKEW_MARGIN_MS`. A live owner on this host is never orphaned, whatever the
    clocks say (a process whose clock runs ahead must not take a healthy run over)."""
    if run.terminal:
        return None
    owner = run.mobctl.owner if run.mobctl else None
    if owner is None:
        return "it has no owner lease"
    if owner.released_at is not None:
        return f"its owner released the lease at {owner.released_at}"
    state = probe(owner.pid, owner.host, owner.process_start)
    if state == "gone":
        return f"its owner process (pid {owner.pid} on {owner.host}) is gone"
    if state == "alive":
        return None
    expiry = parse_timestamp(owner.heartbeat_at) + timedelta(
        milliseconds=owner.ttl_ms + CLOCK_SKEW_MARGIN_MS
    )
    if expiry < now:
        return (
            f"its owner (pid {owner.pid} on {owner.host}) has not renewed its lease "
            f"since {owner.heartbeat_at}"
        )
    return None


def new_owner(token: str | None = None, *, ttl_ms: int = 30_000) -> RunOwner:
    """A lease for this process (``token``: the one it will fence its writes with)."""
    pid, where, started = host.me()
    now = timestamp()
    return RunOwner(
        token=token or str(uuid.uuid4()),
        pid=pid,
        host=where,
        process_start=started,
        acquired_at=now,
        heartbeat_at=now,
        ttl_ms=ttl_ms,
    )


def take_over(store: Store, run: MobRun) -> RunOwner | None:
    """Take the run's lease over from the holder judged at ``run`` (a CAS on its token); the
    new lease, or None when the run changed hands or became terminal meanwhile."""
    current = run.mobctl.owner if run.mobctl else None
    expected = current.token if current is not None and current.released_at is None else None
    owner = new_owner()
    won = store.runs(run.mob_id).acquire_run_lease(run.run_id, owner, expected_token=expected)
    return owner if won else None


def cancel_in_custody(
    store: Store, mob_id: str, run_id: str, owner: RunOwner, cause: str
) -> MobEvent:
    """Converge a run whose lease ``owner`` holds to ``canceled`` (flow-semantics §12.4): start
    it if pending (no ``flow_started``), set every non-terminal node, frame and loop and every
    unfinished step to Canceled, then write the terminal status with ``flow_canceled {cause}``
    (exactly once: the snapshot CAS decides, the event is appended if absent). The lease is
    released at the end, whatever happens.

    Raises :class:`~mobctl.errors.CustodyLost` when another process took the run over meanwhile."""
    runs = store.runs(mob_id)
    try:
        run = runs.get_run(run_id)
        if run is None or run.terminal:
            raise CustodyLost(mob_id, run_id)
        state = _canceled_state(run.flow_state)
        settle = RunMutation(
            status="running" if run.status == "pending" else None,
            flow_state=FlowRunState.model_validate(state | {"phase": "Running"}),
            frames={
                frame_id: _canceled_frame(frame)
                for frame_id, frame in run.frames.items()
                if _frame_open(frame)
            },
            loops={
                loop_id: _canceled_loop(loop)
                for loop_id, loop in run.loops.items()
                if loop.kernel_state.get("phase") not in TERMINAL_LOOP
            },
        )
        expect = RunExpectation(status=run.status, non_terminal=True, flow_state=run.flow_state)
        if not runs.mutate_run(run_id, expect, settle, fence=owner.token):
            raise CustodyLost(mob_id, run_id)
        assert settle.flow_state is not None
        event = NewMobEvent(
            mob_id=mob_id,
            kind=EventKind(type="flow_canceled", run_id=run_id, flow_id=run.flow_id, cause=cause),
        )
        appended = runs.cas_run_snapshot_and_append_terminal_event(
            run_id,
            "running",
            settle.flow_state,
            "canceled",
            FlowRunState.model_validate(state | {"phase": "Canceled"}),
            event,
            fence=owner.token,
        )
        if appended is None:
            raise CustodyLost(mob_id, run_id)
        return appended
    finally:
        runs.release_run_lease(run_id, owner.token)


# --- the canceled shapes (pure) -------------------------------------------------------------


def _canceled_state(flow_state: FlowRunState) -> dict[str, Any]:
    state = FlowState.from_document(flow_state.model_dump(mode="json"))
    state.fold_unfinished()
    # nothing is ready, pending or active any more (the §15 invariants)
    state.pending_body_frame_loops = []
    state.set_registrations([])
    state.active_node_count = state.active_frame_count = 0
    return state.document()


def _frame_open(frame: FrameSnapshot) -> bool:
    kernel = frame.kernel_state
    statuses = kernel.get("node_status")
    open_nodes = isinstance(statuses, dict) and any(
        s not in TERMINAL_NODE for s in statuses.values()
    )
    return open_nodes or kernel.get("phase") not in TERMINAL_NODE


def _canceled_frame(frame: FrameSnapshot) -> FrameSnapshot:
    kernel = dict(frame.kernel_state)
    statuses = kernel.get("node_status")
    if isinstance(statuses, dict):
        kernel["node_status"] = {
            node: status if status in TERMINAL_NODE else "Canceled"
            for node, status in statuses.items()
        }
    kernel["ready_queue"] = []
    if kernel.get("phase") not in TERMINAL_NODE:
        kernel["phase"] = "Canceled"
    return FrameSnapshot.model_validate(frame.model_dump(mode="json") | {"kernel_state": kernel})


def _canceled_loop(loop: LoopSnapshot) -> LoopSnapshot:
    kernel = dict(loop.kernel_state) | {"phase": "Canceled", "stage": "Terminal"}
    return LoopSnapshot.model_validate(loop.model_dump(mode="json") | {"kernel_state": kernel})
