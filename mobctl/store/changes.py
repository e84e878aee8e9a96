"""Run changes (store contract §4.6): what ``mutate_run`` compares, what it writes, and how a
change becomes patch ops on the run document.

Backend-neutral and pure: a backend reads the current run document under its lock (or in its
transaction), asks :func:`plan` for the ops, and writes them atomically, or nothing. The
directory backend appends them as one journal line; a database applies them in one
transaction. An op is ``("set", path, value)`` (replace or add the value at a path of object
keys and array indexes) or ``("push", path, value)`` (append to the array at the path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import JsonValue

from mobctl.canonical import json_equal
from mobctl.clock import timestamp
from mobctl.errors import InternalStoreError
from mobctl.store.models import (
    FLOW_SYSTEM_MEMBER,
    SNAPSHOT_FORMAT,
    TERMINAL_STATUSES,
    FailureLedgerEntry,
    FlowRunState,
    FrameSnapshot,
    LoopIterationLedgerEntry,
    LoopSnapshot,
    RunStatus,
    StepLedgerEntry,
)

Path_ = tuple[str | int, ...]
Op = tuple[Literal["set", "push"], Path_, Any]
Document = dict[str, Any]
TERMINAL_LEDGER = frozenset({"completed", "failed", "skipped"})


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
"""An expected frame or loop that must not exist yet."""


@dataclass
class RunExpectation:
    """What ``mutate_run`` compares before writing; unset parts are not compared. A mismatch
    is a lost CAS (``False``, nothing written)."""

    status: RunStatus | None = None
    non_terminal: bool = False
    flow_state: FlowRunState | None = None
    frames: dict[str, FrameSnapshot | _Absent] = field(default_factory=dict)
    loops: dict[str, LoopSnapshot | _Absent] = field(default_factory=dict)
    lease: str | None = None  # the owner lease's token must be this (released or not) ...
    lease_free: bool = False  # ... or there is no lease, or it was released
    cancel_unrequested: bool = False  # no cancel requested yet
    step_entry_absent: StepLedgerEntry | None = None  # no entry of its (step, identity, status)
    # no failure entry of its step; one with another reason, error or error_report is a conflict
    failure_absent: FailureLedgerEntry | None = None


@dataclass
class Output:
    key: str
    value: JsonValue
    loop_context: tuple[str, int] | None = None  # (loop id, iteration) for a loop body's step


@dataclass
class RunMutation:
    """What ``mutate_run`` writes when every expectation holds, in this order."""

    status: RunStatus | None = None  # terminal: ``completed_at`` is set if it was null
    flow_state: FlowRunState | None = None
    frames: dict[str, FrameSnapshot] = field(default_factory=dict)
    loops: dict[str, LoopSnapshot] = field(default_factory=dict)
    step_entries: list[StepLedgerEntry] = field(default_factory=list)
    step_entries_if_absent: list[StepLedgerEntry] = field(default_factory=list)
    step_output: tuple[str, JsonValue] | None = None  # the latest ledger entry of the step
    failure_entries: list[FailureLedgerEntry] = field(default_factory=list)
    loop_ledger: list[LoopIterationLedgerEntry] = field(default_factory=list)  # idempotent
    outputs: list[Output] = field(default_factory=list)
    mobctl: dict[str, JsonValue] = field(default_factory=dict)
    # patch ops applied last (the engine's exact changes to the flow state and frames)
    sets: list[Op] = field(default_factory=list)


class RunView:
    """A run document as a backend read it, with lazily built indexes, so that a change
    costs the size of what it touches, not the size of the run."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self._by_step: dict[str, list[Document]] = {}
        self._indexed = 0  # step-ledger entries in ``_by_step``
        self._iterations: set[str] = set()  # loop-iteration ledger entries, as sorted JSON
        self._iterations_indexed = 0

    def ledger_of(self, step_id: str) -> list[Document]:
        """The step's ledger entries (the index catches up: O(new entries))."""
        ledger = self.doc["step_ledger"]
        for entry in ledger[self._indexed :]:
            self._by_step.setdefault(entry["step_id"], []).append(entry)
        self._indexed = len(ledger)
        return self._by_step.get(step_id, [])

    def iteration_recorded(self, entry: Document) -> bool:
        ledger = self.doc["loop_iteration_ledger"]
        self._iterations.update(_key(e) for e in ledger[self._iterations_indexed :])
        self._iterations_indexed = len(ledger)
        return _key(entry) in self._iterations


def holds(doc: Document, fence: str) -> bool:
    """Whether the run's owner lease has the token ``fence`` and is not released (§2.6)."""
    owner = (doc.get("mobctl") or {}).get("owner") or {}
    return bool(owner.get("token") == fence and owner.get("released_at") is None)


def matches(view: RunView, expect: RunExpectation) -> bool:
    """Whether every expected component holds (type-strict JSON equality, §2.2)."""
    doc = view.doc
    if expect.non_terminal and doc["status"] in TERMINAL_STATUSES:
        return False
    if expect.status is not None and doc["status"] != expect.status:
        return False
    if expect.flow_state is not None and not json_equal(
        doc["flow_state"], expect.flow_state.document()
    ):
        return False
    for table, wanted in (("frames", expect.frames), ("loops", expect.loops)):
        for key, value in wanted.items():
            current = doc[table].get(key)
            if isinstance(value, _Absent):
                if current is not None:
                    return False
            elif current is None or not json_equal(current, value.document()):
                return False
    extras = doc.get("mobctl") or {}
    owner = extras.get("owner")
    if expect.lease is not None and (owner is None or owner.get("token") != expect.lease):
        return False
    if expect.lease_free and owner is not None and owner.get("released_at") is None:
        return False
    if expect.cancel_unrequested and extras.get("cancel_requested") is not None:
        return False
    entry = expect.step_entry_absent
    if entry is not None and any(
        e["agent_identity"] == entry.agent_identity and e["status"] == entry.status
        for e in view.ledger_of(entry.step_id)
    ):
        return False
    failure = expect.failure_absent
    if failure is not None:
        _check_failure(failure)
        for existing in doc["failure_ledger"]:
            if existing["step_id"] != failure.step_id:
                continue
            if (
                existing.get("reason") == failure.reason
                and json_equal(existing.get("error_report"), failure.error_report)
                and json_equal(existing.get("error"), failure.error)
            ):
                return False
            raise InternalStoreError(f"failure ledger conflict for step '{failure.step_id}'")
    return True


def plan(view: RunView, change: RunMutation) -> list[Op]:
    """The patch ops of a mutation (the document is only read). Integrity violations raise
    ``InternalStoreError`` before anything is written."""
    doc = view.doc
    ops: list[Op] = []
    if change.status is not None:
        ops.append(("set", ("status",), change.status))
        if change.status in TERMINAL_STATUSES and doc.get("completed_at") is None:
            ops.append(("set", ("completed_at",), timestamp()))
    if change.flow_state is not None:
        ops += diff(doc["flow_state"], change.flow_state.document(), ("flow_state",))
    for table, snapshots in (("frames", change.frames), ("loops", change.loops)):
        for key, snapshot in snapshots.items():
            current = doc[table].get(key)
            document = snapshot.document()
            if current is None:
                ops.append(("set", (table, key), document))
            else:
                ops += diff(current, document, (table, key))
    ops += _ledger_ops(view, change)
    for failure in change.failure_entries:
        _check_failure(failure)
        ops.append(("push", ("failure_ledger",), failure.document()))
    pushed: set[str] = set()
    for ledger in change.loop_ledger:
        document = ledger.document()
        if not view.iteration_recorded(document) and _key(document) not in pushed:
            pushed.add(_key(document))
            ops.append(("push", ("loop_iteration_ledger",), document))
    ops += _output_ops(doc, change.outputs)
    if change.mobctl:
        if isinstance(doc.get("mobctl"), dict):
            ops += [("set", ("mobctl", key), value) for key, value in change.mobctl.items()]
        else:  # a run another tool wrote, now changed by mobctl
            ops.append(("set", ("mobctl",), {"snapshot_format": SNAPSHOT_FORMAT, **change.mobctl}))
    return ops + list(change.sets)


def _ledger_ops(view: RunView, change: RunMutation) -> list[Op]:
    added: list[Document] = []
    entries = [(e, False) for e in change.step_entries]
    entries += [(e, True) for e in change.step_entries_if_absent]
    for entry, if_absent in entries:
        same_step = [*view.ledger_of(entry.step_id), *added]
        if _step_entry_fits(same_step, entry, if_absent=if_absent):
            added.append(entry.document())
    ops: list[Op] = [("push", ("step_ledger",), entry) for entry in added]
    if change.step_output is not None:
        step_id, value = change.step_output
        ledger = view.doc["step_ledger"]
        index = next(
            (i for i in range(len(ledger) - 1, -1, -1) if ledger[i]["step_id"] == step_id), None
        )
        if index is None:
            raise InternalStoreError(f"no ledger entry for step '{step_id}'")
        ops.append(("set", ("step_ledger", index, "output"), value))
    return ops


def _output_ops(doc: Document, outputs: list[Output]) -> list[Op]:
    """Root outputs set by key; a loop body's output as the one key of its iteration (a new
    iteration's map pushed, padded with empty maps), never the whole history."""
    ops: list[Op] = []
    lengths: dict[str, int] = {}  # of the loop histories, as the ops so far leave them
    for output in outputs:
        if output.loop_context is None:
            ops.append(("set", ("root_step_outputs", output.key), output.value))
            continue
        loop_id, iteration = output.loop_context
        path: Path_ = ("loop_iteration_outputs", loop_id)
        if loop_id not in lengths:
            history = doc["loop_iteration_outputs"].get(loop_id)
            if history is None:
                ops.append(("set", path, []))
            lengths[loop_id] = len(history or [])
        while lengths[loop_id] <= iteration:
            ops.append(("push", path, {}))
            lengths[loop_id] += 1
        ops.append(("set", (*path, iteration, output.key), output.value))
    return ops


def _key(document: Document) -> str:
    """A ledger entry as JSON with sorted keys: equal keys, equal JSON values."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _step_entry_fits(ledger: list[Document], entry: StepLedgerEntry, *, if_absent: bool) -> bool:
    """Whether ``entry`` is appended to ``ledger`` (False: present, for an if-absent entry)."""
    if entry.agent_identity != FLOW_SYSTEM_MEMBER:
        raise InternalStoreError(f"step ledger entries belong to {FLOW_SYSTEM_MEMBER}")
    same_step = [e for e in ledger if e["step_id"] == entry.step_id]
    if if_absent and any(
        e["agent_identity"] == entry.agent_identity and e["status"] == entry.status
        for e in same_step
    ):
        return False
    if entry.status in TERMINAL_LEDGER and any(e["status"] in TERMINAL_LEDGER for e in same_step):
        raise InternalStoreError(f"step '{entry.step_id}' already has a terminal ledger entry")
    return True


def _check_failure(entry: FailureLedgerEntry) -> None:
    if entry.error_report is not None or entry.error is not None:
        raise InternalStoreError("failure ledger entries may not carry error metadata")


# --- patch ops ---------------------------------------------------------------------------------


def apply(doc: Document, ops: list[list[Any]] | list[Op]) -> None:
    """Apply ops to a run document, in place."""
    for kind, path, value in ops:
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if kind == "set":
            parent[path[-1]] = value
        elif kind == "push":
            parent[path[-1]].append(value)
        else:
            raise ValueError(f"unknown op {kind!r}")


def diff(old: Any, new: Any, path: Path_ = ()) -> list[Op]:
    """The ops that turn ``old`` into ``new``: objects key by key, arrays that only grew as
    pushes, anything else replaced whole (``path`` empty: the document, whose keys stay)."""
    if isinstance(old, dict) and isinstance(new, dict) and not (path and old.keys() - new.keys()):
        ops: list[Op] = []
        for key, value in new.items():
            if key not in old:
                ops.append(("set", (*path, key), value))
            elif old[key] is not value:
                ops += diff(old[key], value, (*path, key))
        return ops
    grew = isinstance(old, list) and isinstance(new, list) and 0 < len(old) <= len(new)
    if grew and json_equal(old, new[: len(old)]):
        return [("push", path, item) for item in new[len(old) :]]
    if json_equal(old, new):
        return []
    return [("set", path, new)]
