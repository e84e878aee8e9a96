"""A hypothesis state machine: the directory backend against a plain in-memory model."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mobctl.clock import timestamp
from mobctl.errors import SpecRevisionConflict
from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.log_lines import ANCHORS
from mobctl.store.models import EventKind, FlowRunState, MobRun, NewMobEvent

MOB = "state"
KINDS = st.sampled_from(["step_completed", "flow_started", "member_spawned", "mob_created"])


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp())
        self.store = DirectoryStore(self.tmp / "store", lock_timeout=5)
        self.events: list[tuple[int, str, bool]] = []  # cursor, type, old
        self.next_cursor = 1
        self.spec_revision = 0
        self.runs: dict[str, int] = {}  # run id -> counter value
        self.batches: list[list[int]] = []  # cursors of each batch of two or more

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _new(self, kind: str, old: bool) -> NewMobEvent:
        moment = datetime.now(UTC) - timedelta(hours=1) if old else None
        return NewMobEvent(
            mob_id=MOB, kind=EventKind(type=kind), timestamp=timestamp(moment) if moment else None
        )

    @rule(kind=KINDS, old=st.booleans())
    def append(self, kind: str, old: bool) -> None:
        stored = self.store.events(MOB).append(self._new(kind, old))
        assert stored.cursor == self.next_cursor
        self.events.append((stored.cursor, kind, old))
        self.next_cursor += 1

    @rule(batch=st.lists(st.tuples(KINDS, st.booleans()), min_size=1, max_size=4))
    def append_batch(self, batch: list[tuple[str, bool]]) -> None:
        stored = self.store.events(MOB).append_batch([self._new(k, o) for k, o in batch])
        assert [e.cursor for e in stored] == list(
            range(self.next_cursor, self.next_cursor + len(batch))
        )
        group = [(e.cursor, k, o) for e, (k, o) in zip(stored, batch, strict=True)]
        self.events.extend(group)
        self.next_cursor += len(batch)
        if len(batch) > 1:
            self.batches.append([c for c, _, _ in group])

    @rule()
    def prune(self) -> None:
        batches = {c: tuple(b) for b in self.batches for c in b}
        old = {c for c, k, o in self.events if o and k not in ANCHORS}
        doomed = {c for c in old if all(x in old for x in batches.get(c, (c,)))}
        assert self.store.events(MOB).prune(datetime.now(UTC) - timedelta(minutes=1)) == len(doomed)
        self.events = [e for e in self.events if e[0] not in doomed]

    @rule()
    def clear(self) -> None:
        self.store.events(MOB).clear()
        self.events = []
        self.next_cursor = 1
        self.batches = []

    @rule(expected=st.one_of(st.none(), st.integers(0, 4)))
    def put_spec(self, expected: int | None) -> None:
        try:
            revision = self.store.specs.put_spec(MOB, {"id": MOB}, expected)
        except SpecRevisionConflict as exc:
            assert expected is not None and expected != self.spec_revision
            assert exc.actual == self.spec_revision
            return
        assert expected is None or expected == self.spec_revision
        self.spec_revision += 1
        assert revision == self.spec_revision

    @rule()
    def create_run(self) -> None:
        run_id = str(uuid.uuid4())
        self.store.runs(MOB).create_run(
            MobRun(
                run_id=run_id,
                mob_id=MOB,
                flow_id="f",
                created_at=timestamp(),
                status="running",
                flow_state=FlowRunState(phase="Running", n=0),
            )
        )
        self.runs[run_id] = 0

    @precondition(lambda self: bool(self.runs))
    @rule(data=st.data(), stale=st.booleans())
    def cas(self, data: Any, stale: bool) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.runs)))
        value = self.runs[run_id] + (1 if stale else 0)
        won = self.store.runs(MOB).cas_flow_state(
            run_id,
            FlowRunState(phase="Running", n=value),
            FlowRunState(phase="Running", n=value + 1),
        )
        assert won == (not stale)
        if won:
            self.runs[run_id] = value + 1

    @invariant()
    def log_matches(self) -> None:
        log = self.store.events(MOB)
        assert [(e.cursor, e.kind.type) for e in log.replay_all()] == [
            (c, k) for c, k, _ in self.events
        ]
        assert log.latest_cursor() == (self.events[-1][0] if self.events else 0)
        assert log.verify() == []

    @invariant()
    def runs_match(self) -> None:
        for run_id, value in self.runs.items():
            run = self.store.runs(MOB).get_run(run_id)
            assert run is not None and (run.flow_state.model_extra or {})["n"] == value


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
