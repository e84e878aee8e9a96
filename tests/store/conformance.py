"""The store contract's acceptance list (store contract §9, items 1-29 and 33-35), as a
reusable conformance suite.

It never imports a backend: a backend's test module does ``from tests.store.conformance import *``
and provides the fixture ``open_store``, a factory returning a new store object on the same
data each call (the first finds it empty); ``store`` is its first object. Items 30-32 (many
real processes) are in ``test_store_processes.py``. Beyond §9: ``mutate_run`` with patch ops,
the roster and run indexes (§4.9), and signing and verifying the log through the contract.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mobctl.clock import timestamp
from mobctl.errors import (
    CasConflict,
    InternalStoreError,
    NotFound,
    RecordTooLarge,
    SpecRevisionConflict,
    StaleCursor,
    TerminalEventPending,
    WriteFailed,
)
from mobctl.store.authority import display_key, peer_id, public_key
from mobctl.store.changes import RunExpectation, RunMutation
from mobctl.store.contract import Store, Transcript, TurnKey
from mobctl.store.models import (
    EventKind,
    ExternalBindingOverlayRecord,
    FailureLedgerEntry,
    FlowRunState,
    FrameSnapshot,
    LoopIterationLedgerEntry,
    LoopSnapshot,
    MobctlRunState,
    MobRun,
    NewMobEvent,
    PendingRotation,
    Roster,
    RunOwner,
    StepLedgerEntry,
    SupervisorAuthorityRecord,
)

MOB = "review"


def event(kind: str, moment: datetime | None = None, **fields: Any) -> NewMobEvent:
    return NewMobEvent(
        mob_id=MOB,
        kind=EventKind(type=kind, **fields),
        timestamp=timestamp(moment) if moment else None,
    )


def new_run(**changes: Any) -> MobRun:
    base = {
        "run_id": str(uuid.uuid4()),
        "mob_id": MOB,
        "flow_id": "main",
        "created_at": timestamp(),
        "status": "running",
        "flow_state": FlowRunState(phase="Running", n=0),
    }
    return MobRun(**(base | changes))


def frame(n: int) -> FrameSnapshot:
    return FrameSnapshot(kernel_state={"phase": "Running", "n": n})


def loop(n: int) -> LoopSnapshot:
    return LoopSnapshot(kernel_state={"phase": "Running", "current_iteration": n})


def state(n: int) -> FlowRunState:
    return FlowRunState(phase="Running", n=n)


# --- events ---------------------------------------------------------------------------------


def test_01_cursors_start_at_one_and_replay_ascends(store: Store) -> None:
    log = store.events(MOB)
    cursors = [log.append(event("x", i=i)).cursor for i in range(3)]
    assert cursors == [1, 2, 3]
    assert [e.cursor for e in log.replay_all()] == [1, 2, 3]
    assert [e.kind.field("i") for e in log.replay_all()] == [0, 1, 2]


def test_02_poll(store: Store) -> None:
    log = store.events(MOB)
    for i in range(15):
        log.append(event("x", i=i))
    assert [e.cursor for e in log.poll(0, 10)] == list(range(1, 11))
    assert [e.cursor for e in log.poll(12, 10)] == [13, 14, 15]
    assert log.poll(3, 0) == []
    assert log.poll(log.latest_cursor() + 5, 10) == []
    with pytest.raises(ValueError, match="negative"):
        log.poll(-1, 1)


def test_03_prune_keeps_anchors_and_whole_batches(store: Store) -> None:
    log = store.events(MOB)
    now = datetime.now(UTC)
    old = now - timedelta(minutes=10)
    log.append(event("step_completed", old))
    log.append(event("step_completed", now))
    assert log.prune(now - timedelta(minutes=1)) == 1
    assert len(log.replay_all()) == 1
    log.append(event("member_spawned", old, agent_identity="w-1"))
    log.append(event("mob_created", old, definition={}))
    log.append_batch([event("a", old), event("b", now)])  # one young record keeps the batch
    assert log.prune(now - timedelta(minutes=1)) == 0
    kinds = [e.kind.type for e in log.replay_all()]
    assert kinds == ["step_completed", "member_spawned", "mob_created", "a", "b"]
    assert log.prune(now + timedelta(minutes=1)) == 3  # anchors survive any prune
    assert [e.kind.type for e in log.replay_all()] == ["member_spawned", "mob_created"]


def test_04_cursors_are_never_reused_after_pruning_the_tail(store: Store) -> None:
    log = store.events(MOB)
    old = datetime.now(UTC) - timedelta(hours=1)
    for _ in range(3):
        log.append(event("x", old))
    assert log.prune(datetime.now(UTC)) == 3
    assert log.latest_cursor() == 0
    assert log.append(event("y")).cursor == 4


def test_05_clear_restarts_at_one(store: Store) -> None:
    log = store.events(MOB)
    log.append(event("x"))
    log.clear()
    assert log.replay_all() == []
    assert log.latest_cursor() == 0
    assert log.append(event("y")).cursor == 1


def test_06_reopen_sees_everything(store: Store, open_store: Callable[[], Store]) -> None:
    log = store.events(MOB)
    for i in range(4):
        log.append(event("x", i=i))
    again = open_store().events(MOB)
    assert [e.cursor for e in again.replay_all()] == [1, 2, 3, 4]
    assert again.append(event("y")).cursor == 5


def test_07_follow_sees_appends_and_refuses_stale_cursors(store: Store) -> None:
    log = store.events(MOB)
    log.append(event("first"))
    with pytest.raises(StaleCursor) as caught:
        next(iter(log.follow(log.latest_cursor() + 1)))
    assert (caught.value.after, caught.value.latest) == (2, 1)
    seen: list[int] = []
    done = threading.Event()

    def reader() -> None:
        for item in log.follow(1, poll_interval=0.01, stop=done.is_set):
            seen.append(item.cursor)
            if len(seen) == 3:
                done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(3):
        log.append(event("later", i=i))
    thread.join(timeout=10)
    done.set()
    assert seen == [2, 3, 4]


def test_08_terminal_event_if_absent(store: Store) -> None:
    log = store.events(MOB)
    first = log.append_terminal_event_if_absent(event("flow_completed", run_id="r", flow_id="f"))
    assert first is not None
    again = log.append_terminal_event_if_absent(
        event("flow_failed", run_id="r", flow_id="f", cause="x", reason="y")
    )
    assert again is None
    assert len(log.replay_all()) == 1
    with pytest.raises(InternalStoreError):
        log.append_terminal_event_if_absent(event("step_completed", run_id="r"))


def test_09_step_failed_if_absent(store: Store) -> None:
    log = store.events(MOB)
    failed = event("step_failed", run_id="r", step_id="s", reason="boom")
    assert log.append_step_failed_event_if_absent(failed) is not None
    assert log.append_step_failed_event_if_absent(failed) is None
    with pytest.raises(InternalStoreError, match="step_failed event conflict for run r, step s"):
        log.append_step_failed_event_if_absent(
            event("step_failed", run_id="r", step_id="s", reason="other")
        )


def test_10_batches_are_all_or_nothing_and_contiguous(store: Store) -> None:
    log = store.events(MOB)
    log.append(event("x"))
    with pytest.raises(InternalStoreError):
        log.append_batch([event("ok"), event("Bad Type")])
    assert log.latest_cursor() == 1
    stored = log.append_batch([event("a"), event("b"), event("c")])
    assert [e.cursor for e in stored] == [2, 3, 4]
    assert log.append_batch([]) == []


def test_11_step_target_failed_with_error_metadata_is_refused(store: Store) -> None:
    log = store.events(MOB)
    for key in ("error_report", "error"):
        with pytest.raises(InternalStoreError):
            log.append(event("step_target_failed", run_id="r", step_id="s", **{key: {"x": 1}}))
    with pytest.raises(InternalStoreError):
        log.append(NewMobEvent(mob_id="other", kind=EventKind(type="x")))


# Item 12 (hash chain, flipped byte, prune) is backend-specific: test_directory_store.py.


# --- runs -----------------------------------------------------------------------------------


def test_13_one_winner_among_concurrent_status_cas(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run()
    runs.create_run(run)
    results: list[bool] = []
    barrier = threading.Barrier(10)

    def racer() -> None:
        barrier.wait()
        results.append(runs.cas_run_status(run.run_id, "running", "completed"))

    threads = [threading.Thread(target=racer) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 9 + [True]
    stored = runs.get_run(run.run_id)
    assert stored is not None and stored.status == "completed" and stored.completed_at
    assert runs.cas_run_status(run.run_id, "completed", "running") is False


def test_14_ledgers(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run()
    runs.create_run(run)
    dispatched = StepLedgerEntry(step_id="a", status="dispatched", timestamp=timestamp())
    assert runs.append_step_entry_if_absent(run.run_id, dispatched) is True
    assert runs.append_step_entry_if_absent(run.run_id, dispatched) is False
    done = StepLedgerEntry(step_id="a", status="completed", timestamp=timestamp())
    runs.append_step_entry(run.run_id, done)
    with pytest.raises(InternalStoreError):
        runs.append_step_entry(run.run_id, done.model_copy(update={"status": "failed"}))
    with pytest.raises(InternalStoreError):
        runs.append_step_entry(run.run_id, done.model_copy(update={"agent_identity": "w-1"}))
    failure = FailureLedgerEntry(step_id="b", reason="boom", timestamp=timestamp())
    with pytest.raises(InternalStoreError):
        runs.append_failure_entry(run.run_id, failure.model_copy(update={"error": {"x": 1}}))
    assert runs.append_failure_entry_if_absent(run.run_id, failure) is True
    assert runs.append_failure_entry_if_absent(run.run_id, failure) is False
    with pytest.raises(InternalStoreError, match="failure ledger conflict"):
        runs.append_failure_entry_if_absent(run.run_id, failure.model_copy(update={"reason": "x"}))


def test_15_create_run_refuses_bad_runs(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run()
    runs.create_run(run)
    with pytest.raises(InternalStoreError, match=f"run already exists: {run.run_id}"):
        runs.create_run(run)
    with pytest.raises(InternalStoreError):
        runs.create_run(new_run(schema_version=6))
    entry = StepLedgerEntry(step_id="a", status="dispatched", timestamp=timestamp())
    with pytest.raises(InternalStoreError):
        runs.create_run(new_run(step_ledger=[entry]))
    with pytest.raises(InternalStoreError):
        runs.create_run(new_run(status="completed"))


def test_16_terminal_variant(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = store.runs(MOB)
    log = store.events(MOB)
    run = new_run()
    runs.create_run(run)
    terminal = event("flow_completed", run_id=run.run_id, flow_id="main")
    won = runs.cas_run_snapshot_and_append_terminal_event(
        run.run_id, "running", state(0), "completed", state(1), terminal
    )
    assert won is not None and won.kind.type == "flow_completed"
    stale = runs.cas_run_snapshot_and_append_terminal_event(
        run.run_id, "running", state(0), "completed", state(1), terminal
    )
    assert stale is None
    assert len(log.replay_all()) == 1

    other = new_run()
    runs.create_run(other)
    failing = event("flow_failed", run_id=other.run_id, flow_id="main", cause="x", reason="y")

    def broken(*args: object, **kwargs: object) -> None:
        raise WriteFailed("disk full")

    # the failure a full disk gives the append that follows the snapshot (the run store appends
    # through the event store the store hands out)
    monkeypatch.setattr(store.events(MOB), "append_terminal_event_if_absent", broken)
    with pytest.raises(TerminalEventPending):
        runs.cas_run_snapshot_and_append_terminal_event(
            other.run_id, "running", state(0), "failed", state(1), failing
        )
    monkeypatch.undo()
    stored = runs.get_run(other.run_id)
    assert stored is not None and stored.status == "failed"
    from mobctl.store.repair import repair_terminal_events

    assert repair_terminal_events(store, MOB) == [other.run_id]
    assert repair_terminal_events(store, MOB) == []
    assert [e.kind.type for e in log.replay_all()] == ["flow_completed", "flow_failed"]


def test_17_missing_runs(store: Store) -> None:
    runs = store.runs(MOB)
    missing = str(uuid.uuid4())
    assert runs.cas_run_status(missing, "running", "completed") is False
    assert runs.cas_flow_state(missing, state(0), state(1)) is False
    assert runs.cas_run_snapshot(missing, "running", state(0), "completed", state(1)) is False
    terminal = event("flow_completed", run_id=missing, flow_id="main")
    assert (
        runs.cas_run_snapshot_and_append_terminal_event(
            missing, "running", state(0), "completed", state(1), terminal
        )
        is None
    )
    entry = StepLedgerEntry(step_id="a", status="dispatched", timestamp=timestamp())
    failure = FailureLedgerEntry(step_id="a", reason="x", timestamp=timestamp())
    owner = RunOwner(token="t", pid=1, host="h", acquired_at=timestamp(), heartbeat_at=timestamp())
    ledger = LoopIterationLedgerEntry(loop_instance_id="L", iteration=0, frame_id="f")
    calls = [
        lambda: runs.cas_frame_state(missing, "f", None, frame(0)),
        lambda: runs.cas_grant_node_slot(missing, state(0), state(1), "f", frame(0), frame(1)),
        lambda: runs.cas_complete_step_and_record_output(
            missing, "f", frame(0), frame(1), "a", 1, None
        ),
        lambda: runs.cas_start_loop(
            missing, "L", state(0), state(1), "f", frame(0), frame(1), loop(0)
        ),
        lambda: runs.cas_loop_request_body_frame(
            missing, "L", loop(0), loop(1), state(0), state(1)
        ),
        lambda: runs.cas_grant_body_frame_start(
            missing, "L", loop(0), loop(1), "b", frame(0), ledger, state(0), state(1)
        ),
        lambda: runs.cas_complete_body_frame(
            missing, "L", loop(0), loop(1), "b", frame(0), frame(1), state(0), state(1)
        ),
        lambda: runs.cas_complete_loop(
            missing, "L", loop(0), loop(1), "f", frame(0), frame(1), state(0), state(1)
        ),
        lambda: runs.append_step_entry(missing, entry),
        lambda: runs.append_step_entry_if_absent(missing, entry),
        lambda: runs.append_failure_entry(missing, failure),
        lambda: runs.append_failure_entry_if_absent(missing, failure),
        lambda: runs.put_step_output(missing, "a", 1),
        lambda: runs.upsert_loop_snapshot(missing, "L", loop(0)),
        lambda: runs.acquire_run_lease(missing, owner, expected_token=None),
        lambda: runs.renew_run_lease(missing, "t"),
        lambda: runs.release_run_lease(missing, "t"),
        lambda: runs.request_cancel(missing, {"pid": 1}),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert runs.get_run(missing) is None


def test_18_frame_state_insert_and_stale(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run()
    runs.create_run(run)
    assert runs.cas_frame_state(run.run_id, "root", None, frame(0)) is True
    assert runs.cas_frame_state(run.run_id, "root", None, frame(9)) is False
    assert runs.cas_frame_state(run.run_id, "root", frame(5), frame(9)) is False
    stored = runs.get_run(run.run_id)
    assert stored is not None and stored.frames["root"] == frame(0)
    assert runs.cas_frame_state(run.run_id, "root", frame(0), frame(1)) is True


def test_19_outputs_root_and_loop(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run(frames={"f": frame(0)})
    runs.create_run(run)
    assert runs.cas_complete_step_and_record_output(
        run.run_id, "f", frame(0), frame(1), "s", {"w": 1}, ("L", 2)
    )
    assert runs.cas_complete_step_and_record_output(
        run.run_id, "f", frame(1), frame(2), "a", 1, None
    )
    assert runs.cas_complete_step_and_record_output(
        run.run_id, "f", frame(2), frame(3), "b", 2, None
    )
    assert runs.cas_complete_step_and_record_output(
        run.run_id, "f", frame(3), frame(4), "a", 3, None
    )
    stored = runs.get_run(run.run_id)
    assert stored is not None
    assert stored.loop_iteration_outputs == {"L": [{}, {}, {"s": {"w": 1}}]}
    assert list(stored.root_step_outputs.items()) == [("a", 3), ("b", 2)]


def test_20_loops_and_body_frames_are_never_duplicated(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run(frames={"root": frame(0)})
    runs.create_run(run)
    rid = run.run_id
    assert runs.cas_start_loop(rid, "L", state(0), state(1), "root", frame(0), frame(1), loop(0))
    assert not runs.cas_start_loop(
        rid, "L", state(1), state(2), "root", frame(1), frame(2), loop(0)
    )
    ledger = LoopIterationLedgerEntry(loop_instance_id="L", iteration=0, frame_id="L::iter-0")
    assert runs.cas_grant_body_frame_start(
        rid, "L", loop(0), loop(1), "L::iter-0", frame(0), ledger, state(1), state(2)
    )
    assert not runs.cas_grant_body_frame_start(
        rid, "L", loop(1), loop(2), "L::iter-0", frame(0), ledger, state(2), state(3)
    )
    runs.upsert_loop_snapshot(rid, "L", loop(1), ledger)
    runs.upsert_loop_snapshot(rid, "L", loop(1), ledger)
    stored = runs.get_run(rid)
    assert stored is not None and stored.loop_iteration_ledger == [ledger]


def test_21_multi_part_cas_mismatch_changes_nothing(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run(frames={"root": frame(0), "body": frame(0)}, loops={"L": loop(0)})
    runs.create_run(run)
    rid = run.run_id
    before = runs.get_run(rid)
    ledger = LoopIterationLedgerEntry(loop_instance_id="L", iteration=1, frame_id="new")
    lost = [
        runs.cas_grant_node_slot(rid, state(0), state(1), "root", frame(7), frame(1)),
        runs.cas_grant_node_slot(rid, state(7), state(1), "root", frame(0), frame(1)),
        runs.cas_start_loop(rid, "M", state(0), state(1), "root", frame(7), frame(1), loop(0)),
        runs.cas_loop_request_body_frame(rid, "L", loop(7), loop(1), state(0), state(1)),
        runs.cas_loop_request_body_frame(rid, "L", loop(0), loop(1), state(7), state(1)),
        runs.cas_grant_body_frame_start(
            rid, "L", loop(0), loop(1), "new", frame(0), ledger, state(7), state(1)
        ),
        runs.cas_complete_body_frame(
            rid, "L", loop(0), loop(1), "body", frame(7), frame(1), state(0), state(1)
        ),
        runs.cas_complete_loop(
            rid, "L", loop(0), loop(1), "root", frame(0), frame(1), state(7), state(1)
        ),
        runs.mutate_run(
            rid,
            RunExpectation(flow_state=state(0), frames={"root": frame(7)}),
            RunMutation(status="completed", flow_state=state(1), frames={"root": frame(1)}),
        ),
    ]
    assert lost == [False] * len(lost)
    assert runs.get_run(rid) == before


def test_22_put_step_output(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run()
    runs.create_run(run)
    with pytest.raises(InternalStoreError):
        runs.put_step_output(run.run_id, "a", 1)
    runs.append_step_entry(
        run.run_id, StepLedgerEntry(step_id="a", status="dispatched", timestamp=timestamp())
    )
    runs.append_step_entry(
        run.run_id, StepLedgerEntry(step_id="a", status="completed", timestamp=timestamp())
    )
    runs.put_step_output(run.run_id, "a", {"v": 1})
    stored = runs.get_run(run.run_id)
    assert stored is not None
    assert [e.output for e in stored.step_ledger] == [None, {"v": 1}]


def test_23_fencing_and_lease_takeover(store: Store) -> None:
    runs = store.runs(MOB)
    run = new_run(mobctl=MobctlRunState())
    runs.create_run(run)
    rid = run.run_id

    def owner(token: str) -> RunOwner:
        return RunOwner(
            token=token, pid=1, host="h", acquired_at=timestamp(), heartbeat_at=timestamp()
        )

    assert runs.acquire_run_lease(rid, owner("a"), expected_token=None)
    assert not runs.acquire_run_lease(rid, owner("b"), expected_token=None)
    assert runs.cas_flow_state(rid, state(0), state(1), fence="a")
    assert not runs.cas_flow_state(rid, state(1), state(2), fence="zz")
    assert runs.acquire_run_lease(rid, owner("b"), expected_token="a")
    assert not runs.renew_run_lease(rid, "a")
    assert not runs.cas_flow_state(rid, state(1), state(2), fence="a")
    terminal = event("flow_completed", run_id=rid, flow_id="main")
    assert (
        runs.cas_run_snapshot_and_append_terminal_event(
            rid, "running", state(1), "completed", state(2), terminal, fence="a"
        )
        is None
    )
    assert runs.renew_run_lease(rid, "b")
    assert runs.release_run_lease(rid, "b")
    assert not runs.renew_run_lease(rid, "b")
    assert runs.request_cancel(rid, {"pid": 2}) is True
    stored = runs.get_run(rid)
    assert stored is not None and stored.mobctl is not None
    assert stored.mobctl.cancel_requested is not None
    assert stored.mobctl.cancel_requested["by"] == {"pid": 2}
    assert stored.flow_state == state(1)


# --- specs, profiles, metadata --------------------------------------------------------------


def test_24_spec_revisions(store: Store) -> None:
    specs = store.specs
    definition = {"id": MOB, "profiles": {}}
    assert specs.put_spec(MOB, definition, None) == 1
    assert specs.put_spec(MOB, definition, 1) == 2
    with pytest.raises(SpecRevisionConflict) as caught:
        specs.put_spec(MOB, definition, 1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    with pytest.raises(SpecRevisionConflict):
        specs.put_spec(MOB, definition, 0)
    assert specs.put_spec("fresh", definition, 0) == 1
    assert specs.delete_spec(MOB, 1) is False
    assert specs.delete_spec(MOB, 2) is True
    assert specs.put_spec(MOB, definition, None) == 1
    assert specs.list_specs() == ["fresh", MOB]
    record = specs.get_spec(MOB)
    assert record is not None and record.digest.startswith("sha256:") and len(record.digest) == 71


def test_25_realm_profiles(store: Store) -> None:
    profiles = store.profiles
    assert profiles.list() == []
    before = timestamp()
    created = profiles.create("house", {"model": "claude-opus-4-8"})
    assert created.revision == 1 and before <= created.created_at <= timestamp()
    assert profiles.get("house") == created
    assert profiles.get("nope") is None
    with pytest.raises(CasConflict):
        profiles.create("house", {"model": "x"})
    updated = profiles.update("house", {"model": "y"}, 1)
    assert updated.revision == 2 and updated.updated_at >= created.updated_at
    assert updated.created_at == created.created_at
    with pytest.raises(CasConflict):
        profiles.update("house", {"model": "z"}, 99)
    with pytest.raises(NotFound):
        profiles.update("nope", {"model": "z"}, 1)
    with pytest.raises(CasConflict):
        profiles.delete("house", 99)
    assert profiles.get("house") is not None
    with pytest.raises(NotFound):
        profiles.delete("nope", 1)
    profiles.create("alpha", {"model": "a"})
    assert [p.name for p in profiles.list()] == ["alpha", "house"]
    deleted = profiles.delete("house", 2)
    assert deleted.revision == 2
    assert profiles.get("house") is None


SEED = bytes(range(32))


def authority(
    seed: bytes = SEED, epoch: int = 0, pending: bytes | None = None
) -> SupervisorAuthorityRecord:
    record = SupervisorAuthorityRecord(
        secret_key=list(seed), public_peer_id=peer_id(public_key(seed)), epoch=epoch
    )
    if pending is not None:
        record = record.model_copy(
            update={
                "pending_rotation": PendingRotation(
                    operation_id="op-1",
                    secret_key=list(pending),
                    public_peer_id=peer_id(public_key(pending)),
                    epoch=epoch + 1,
                    protocol_version=5,
                )
            }
        )
    return record


def test_26_supervisor_record(store: Store) -> None:
    meta = store.metadata
    first = authority()
    assert meta.load_supervisor_authority(MOB) is None
    assert meta.put_supervisor_authority_if_absent(MOB, first) is True
    assert meta.put_supervisor_authority_if_absent(MOB, authority(bytes(32))) is False
    assert meta.load_supervisor_authority(MOB) == first
    rotated = authority(SEED, 0, pending=bytes(32))
    assert meta.compare_and_put_supervisor_authority(MOB, authority(bytes(32)), rotated) is False
    assert meta.load_supervisor_authority(MOB) == first
    assert meta.compare_and_put_supervisor_authority(MOB, first, rotated) is True
    assert meta.load_supervisor_authority(MOB) == rotated
    assert meta.delete_supervisor_authority(MOB, first) is False
    assert meta.delete_supervisor_authority(MOB, rotated) is True
    assert meta.load_supervisor_authority(MOB) is None
    meta.put_supervisor_authority(MOB, first)
    assert meta.delete_supervisor_authority(MOB) is True


def test_27_invalid_authority_records_and_test_vectors(store: Store) -> None:
    vectors = [
        (
            SEED,
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
            "20717512-f552-54ae-94a6-3103e70650a2",
        ),
        (
            bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "799d7474-517f-5045-9ae5-ca7af62e35c6",
        ),
        (
            bytes(32),
            "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
            "11ff8d51-631c-5918-8d48-2c6538ffb3fd",
        ),
    ]
    for seed, public_hex, expected_peer in vectors:
        assert public_key(seed).hex() == public_hex
        assert peer_id(public_key(seed)) == expected_peer
    assert display_key(public_key(SEED)) == "ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    wrong_peer = authority().model_copy(update={"public_peer_id": peer_id(public_key(bytes(32)))})
    with pytest.raises(InternalStoreError):
        store.metadata.put_supervisor_authority(MOB, wrong_peer)
    bad = authority(SEED, 3, pending=bytes(32))
    assert bad.pending_rotation is not None
    skipped = bad.model_copy(
        update={"pending_rotation": bad.pending_rotation.model_copy(update={"epoch": 5})}
    )
    with pytest.raises(InternalStoreError):
        store.metadata.put_supervisor_authority(MOB, skipped)
    assert store.metadata.load_supervisor_authority(MOB) is None


def test_28_overlays(store: Store) -> None:
    meta = store.metadata
    record = ExternalBindingOverlayRecord(
        agent_identity="w-1", generation=1, updated_at=timestamp()
    )
    assert meta.put_external_binding_overlay_if_absent(MOB, record) is True
    assert meta.put_external_binding_overlay_if_absent(MOB, record) is False
    assert meta.list_external_binding_overlays(MOB) == [record]
    replaced = record.model_copy(update={"status": {"Failed": {"reason": "x"}}})
    meta.upsert_external_binding_overlay(MOB, replaced)
    assert meta.list_external_binding_overlays(MOB) == [replaced]
    meta.delete_external_binding_overlays(MOB)
    assert meta.list_external_binding_overlays(MOB) == []


# --- beyond §9: patch ops, indexes, signing ------------------------------------------------------


def test_mutate_run_with_patch_ops(store: Store) -> None:
    """``sets`` (§4.6): set and push at paths of keys and indexes, applied after the structured
    fields, all-or-nothing with the expectations."""
    runs = store.runs(MOB)
    run = new_run(frames={"f": frame(0)})
    runs.create_run(run)
    rid = run.run_id
    patch = RunMutation(
        status="running",
        sets=[
            ("set", ("flow_state", "n"), 7),
            ("set", ("frames", "f", "kernel_state", "n"), 1),
            ("set", ("root_step_outputs", "a"), []),
            ("push", ("root_step_outputs", "a"), {"x": 1}),
            ("set", ("root_step_outputs", "a", 0, "x"), 2),
        ],
    )
    assert runs.mutate_run(rid, RunExpectation(status="running"), patch)
    stored = runs.get_run(rid)
    assert stored is not None
    assert stored.flow_state.model_extra == {"n": 7}
    assert stored.frames["f"] == frame(1)
    assert stored.root_step_outputs == {"a": [{"x": 2}]}
    # a lost CAS writes none of it
    lost = RunMutation(sets=[("set", ("flow_state", "n"), 99)], status="failed")
    assert not runs.mutate_run(rid, RunExpectation(frames={"f": frame(0)}), lost)
    again = runs.get_run(rid)
    assert again is not None and again.status == "running" and again.flow_state == state(7)
    # a fenced change needs the lease; an unknown run is NotFound
    assert not runs.mutate_run(rid, RunExpectation(), patch, fence="not-the-token")
    with pytest.raises(NotFound):
        runs.mutate_run(str(uuid.uuid4()), RunExpectation(), patch)


def test_roster_index_and_member_cas(store: Store, open_store: Callable[[], Store]) -> None:
    """§4.9: the roster folds member events; ``append_member_event`` is a CAS on it."""
    log = store.events(MOB)
    assert log.roster().active == {}

    def spawn(identity: str, role: str) -> Callable[[Roster], NewMobEvent | None]:
        def build(current: Roster) -> NewMobEvent | None:
            if current.of_role(role):
                return None  # the role has a member: nothing to do
            return event(
                "member_spawned", agent_identity=identity, generation=0, role=role,
                runtime_mode="turn_driven",
            )  # fmt: skip

        return build

    assert log.append_member_event(spawn("w-1", "w")) is not None
    assert log.append_member_event(spawn("w-2", "w")) is None  # declined: w has w-1
    log.append(event("x"))  # other events change nothing
    seen = log.roster()
    assert [(m.identity, m.role, m.runtime_mode) for m in seen.of_role("w")] == [
        ("w-1", "w", "turn_driven")
    ]
    log.append(event("member_retired", agent_identity="w-1", generation=0, role="w"))
    assert open_store().events(MOB).roster().active == {}  # another store object agrees
    assert log.roster(since=seen).active == {}  # brought up to date from where it stopped
    assert log.roster().last_generation == {"w-1": 0}


def test_run_index_lists_finds_and_settles(store: Store) -> None:
    """§4.9: a run is indexed when created and settled once its terminal event is in the
    log; listing is newest first; a prefix finds a run without reading snapshots."""
    runs = store.runs(MOB)
    first, second = new_run(created_at=timestamp(datetime(2026, 1, 1, tzinfo=UTC))), new_run()
    for run in (first, second):
        runs.create_run(run)
    newest = runs.newest_runs()
    assert newest is not None
    assert [e.run_id for e in newest] == [second.run_id, first.run_id]
    assert sorted(runs.unsettled_runs()) == sorted([first.run_id, second.run_id])
    assert runs.match_runs(first.run_id[:8]) == [first.run_id]
    assert runs.match_runs("") == sorted([first.run_id, second.run_id])
    terminal = event("flow_failed", run_id=first.run_id, flow_id="main", cause="c", reason="r")
    won = runs.cas_run_snapshot_and_append_terminal_event(
        first.run_id, "running", state(0), "failed", state(1), terminal
    )
    assert won is not None
    assert runs.unsettled_runs() == [second.run_id]
    entries = {e.run_id: e for e in runs.newest_runs() or []}
    settled = entries[first.run_id]
    assert (settled.status, settled.cause, settled.terminal_cursor) == ("failed", "c", won.cursor)
    assert not entries[second.run_id].settled
    runs.rebuild_index()  # from the snapshots and the log: the same
    assert runs.unsettled_runs() == [second.run_id]
    assert {e.run_id: e.status for e in runs.newest_runs() or []} == {
        first.run_id: "failed",
        second.run_id: None,
    }


def test_signing_and_verifying_through_the_contract(store: Store) -> None:
    """§8.8: checkpoints sign the chain through the contract; verification reads the chain,
    the history and the checkpoints through it too, on any backend."""
    from mobctl.store import checkpoints, signatures, supervisor

    log = store.events(MOB)
    for i in range(3):
        log.append(event("x", i=i))
    assert supervisor.create(store, MOB) is not None
    sealed = checkpoints.seal(store, MOB)
    assert (sealed.written, sealed.checkpoint.cursor) == (True, 3)
    assert checkpoints.seal(store, MOB).written is False  # the same head, the same key
    found, malformed = log.checkpoints()
    assert ([c.cursor for _, c in found], malformed) == ([3], [])
    report = signatures.verify_signatures(store, MOB)
    assert (report.ok, report.verified, report.sealed_through) == (True, 1, 3)
    chain = log.chain()
    assert [r.cursor for r in chain.records] == [1, 2, 3]
    assert chain.records[-1].hash == sealed.checkpoint.hash
    log.prune(datetime.now(UTC) + timedelta(days=1))  # every non-anchor record, the sealed one
    log.append(event("y"))
    pruned = signatures.verify_signatures(store, MOB)
    assert (pruned.ok, pruned.pruned) == (True, 1)


# --- turn transcripts (§4.10) ----------------------------------------------------------------


def test_transcripts_round_trip_filter_and_replace(
    store: Store, open_store: Callable[[], Store]
) -> None:
    run_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    turns = store.transcripts(MOB)
    assert turns.list_transcripts(run_id) == []
    keys = [
        TurnKey("review", "0", "reviewer-2", 1),
        TurnKey("review", "0", "reviewer-1", 2),
        TurnKey("review", "0", "reviewer-1", 1),
        TurnKey("plan", "1.3", "lead-1", 1),
        TurnKey("plan", "0", "lead-1", 1, escalation=True),
    ]
    for n, key in enumerate(keys):
        turns.put_transcript(run_id, key, {"n": n, "text": "é\u2028", "usage": None})
    turns.put_transcript(other, keys[0], {"n": 99})
    every = turns.list_transcripts(run_id)
    assert [t.key for t in every] == [keys[3], keys[2], keys[1], keys[0], keys[4]]
    assert every[0] == Transcript(keys[3], {"n": 3, "text": "é\u2028", "usage": None})
    assert [t.key for t in turns.list_transcripts(run_id, step="review")] == [
        keys[2],
        keys[1],
        keys[0],
    ]
    assert [t.key for t in turns.list_transcripts(run_id, member="lead-1")] == [keys[3], keys[4]]
    assert turns.list_transcripts(run_id, step="plan", member="reviewer-1") == []
    turns.put_transcript(run_id, keys[0], {"n": "again"})  # one record per turn: replaced
    again = open_store().transcripts(MOB).list_transcripts(run_id, member="reviewer-2")
    assert again == [Transcript(keys[0], {"n": "again"})]
    assert [t.record for t in turns.list_transcripts(other)] == [{"n": 99}]


def test_transcript_keys_are_never_paths(store: Store) -> None:
    run_id = str(uuid.uuid4())
    turns = store.transcripts(MOB)
    hostile = [
        TurnKey("../../x", "0", "a/b", 1),
        TurnKey(".", "0", "..", 1),
        TurnKey("s+t%2B", "0", "m+1", 1),
        TurnKey("s" * 300, "0", "m", 1),  # too long for a file name
        TurnKey("s" * 300, "0", "m", 2),
        TurnKey("escalation", "0", "m", 1),
        TurnKey("m", "0", "escalation", 1, escalation=True),
    ]
    for n, key in enumerate(hostile):
        turns.put_transcript(run_id, key, {"n": n})
    found = {t.key: t.record["n"] for t in turns.list_transcripts(run_id)}
    assert found == {key: n for n, key in enumerate(hostile)}
    assert [t.key for t in turns.list_transcripts(run_id, step="s" * 300)] == hostile[3:5]
    with pytest.raises(NotFound):
        turns.put_transcript("../x", hostile[0], {})


def test_a_transcript_over_the_record_cap_is_refused(store: Store) -> None:
    run_id = str(uuid.uuid4())
    turns = store.transcripts(MOB)
    key = TurnKey("s", "0", "m", 1)
    with pytest.raises(RecordTooLarge):
        turns.put_transcript(run_id, key, {"text": "x" * store.max_record_bytes})
    assert turns.list_transcripts(run_id) == []
