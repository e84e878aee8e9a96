"""What a case's run left, as its expectations read it: the run snapshot and the run's events
from the event log (with their cursors, which a report cites as evidence)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mobctl.engine.context import Context, build_context
from mobctl.engine.flow_state import FlowState
from mobctl.store.contract import Store
from mobctl.store.models import TERMINAL_EVENT_TYPES, MobEvent, MobRun


@dataclass(frozen=True)
class RunRecord:
    run: MobRun
    cause: str | None
    events: list[MobEvent]  # the run's own, by cursor
    loop_ids: frozenset[str]  # every loop of the run's flow, run or not

    @classmethod
    def read(cls, store: Store, run: MobRun, cause: str | None) -> RunRecord:
        events = [
            event
            for event in store.events(run.mob_id).replay_all()
            if event.kind.field("run_id") == run.run_id
        ]
        spec = store.specs.get_spec(run.mob_id)
        definition: Any = spec.definition if spec is not None else {}
        flow = definition.get("flows", {}).get(run.flow_id) or {}
        return cls(run, cause, events, frozenset(_loop_ids(flow.get("root"))))

    def step_statuses(self) -> dict[str, str]:
        """Each step's run-level status (``completed``, ``skipped``, ..., as ``runs show``)."""
        state = FlowState.from_document(self.run.flow_state.model_dump(mode="json"))
        return state.step_statuses()

    def of_type(self, *types: str) -> list[MobEvent]:
        return [e for e in self.events if e.kind.type in types]

    def of_step(self, step_id: str, *types: str) -> list[MobEvent]:
        return [
            e
            for e in self.events
            if e.kind.field("step_id") == step_id and (not types or e.kind.type in types)
        ]

    def terminal(self) -> list[MobEvent]:
        return self.of_type(*TERMINAL_EVENT_TYPES)

    def dispatches(self, step_id: str) -> list[MobEvent]:
        return self.of_step(step_id, "step_dispatched")

    def retries(self, step_id: str) -> list[MobEvent]:
        return [e for e in self.dispatches(step_id) if _attempt(e) > 1]

    def loop_iterations(self) -> dict[str, int]:
        """Iterations each loop started (its body frames), by the loop's id."""
        loop_of = {
            instance: str(snapshot.kernel_state.get("loop_id"))
            for instance, snapshot in self.run.loops.items()
        }
        counts: dict[str, int] = {}
        for entry in self.run.loop_iteration_ledger:
            loop_id = loop_of.get(entry.loop_instance_id)
            if loop_id is not None:
                counts[loop_id] = counts.get(loop_id, 0) + 1
        return counts

    def context(self) -> Context:
        """What a flow condition would read at the end of the run (flow-semantics §7.1)."""
        run = self.run
        outputs: dict[str, list[dict[str, Any]]] = {
            loop: [dict(i) for i in history] for loop, history in run.loop_iteration_outputs.items()
        }
        return build_context(dict(run.activation_params), dict(run.root_step_outputs), outputs)


def _loop_ids(frame: Any) -> Iterator[str]:
    """The ``loop_id`` of every ``repeat_until`` node in a stored flow frame, at any depth."""
    nodes = frame.get("nodes") if isinstance(frame, dict) else None
    for node in nodes.values() if isinstance(nodes, dict) else ():
        if isinstance(node, dict) and node.get("kind") == "repeat_until":
            yield str(node.get("loop_id"))
            yield from _loop_ids(node.get("body"))


def _attempt(event: MobEvent) -> int:
    attempt = event.kind.field("attempt")
    return attempt if isinstance(attempt, int) else 1
