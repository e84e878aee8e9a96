"""``repeat_until`` loops (flow-semantics §10): starting a loop, granting its body frames,
sealing frames, evaluating ``until``, and settling a root-level loop's body steps."""

from __future__ import annotations

from mobctl.clock import timestamp
from mobctl.definition.model import RepeatUntilNode
from mobctl.engine.conditions import ConditionError, evaluate
from mobctl.engine.frames import FrameState, node_specs
from mobctl.engine.recorder import Recorder
from mobctl.engine.records import RANK, FrameRun, LoopRun, RunFatal
from mobctl.engine.run_context import RunContext
from mobctl.engine.steps import Steps
from mobctl.store.models import FailureLedgerEntry, LoopIterationLedgerEntry, StepLedgerEntry


class Loops:
    def __init__(self, run: RunContext, recorder: Recorder, steps: Steps) -> None:
        self.run = run
        self.recorder = recorder
        self.steps = steps

    def start(self, frame: FrameRun, node_id: str) -> None:
        """A granted loop node: a new loop instance waiting for its first body frame."""
        run = self.run
        node = frame.spec.nodes[node_id]
        assert isinstance(node, RepeatUntilNode)
        depth = frame.depth + 1
        limit = run.flow_state.max_frame_depth
        if limit and depth > limit:
            raise RunFatal(
                "internal",
                f"loop '{node.loop_id}' would exceed max_frame_depth={limit} "
                f"(current depth={depth})",
            )
        instance = f"{frame.frame_id}::{node_id}"
        loop = LoopRun(instance, node.loop_id, frame.frame_id, node_id, depth, node)
        run.loops[instance] = loop
        run.flow_state.add_pending_loop(instance)
        self.recorder.stage(loops=(loop,))

    def grant_body_frames(self) -> bool:
        """Body frames for the loops waiting for one, within ``max_active_frames`` (§6.3)."""
        run, state = self.run, self.run.flow_state
        granted = False
        while state.pending_body_frame_loops:
            limit = state.max_active_frames
            if limit and state.active_frame_count >= limit:
                break
            instance = state.take_pending_loop()
            loop = run.loops[instance]
            k = loop.current_iteration
            frame_id = f"{instance}::iter-{k}"
            body = loop.spec.body
            frame = FrameRun(frame_id, body, FrameState.seed(node_specs(body)), loop.depth, loop, k)
            run.frames[frame_id] = run.live[frame_id] = frame
            loop.stage = "BodyFrameActive"
            loop.body_frame = frame_id
            state.active_frame_count += 1
            state.last_granted_loop = instance
            entry = LoopIterationLedgerEntry(
                loop_instance_id=instance, iteration=k, frame_id=frame_id
            )
            self.recorder.stage(loops=(loop,), loop_ledger=[entry])
            granted = True
        return granted

    def revisit_frames(self) -> bool:
        """Seal finished frames and advance their loops; True if anything changed."""
        changed = False
        for frame in sorted(self.run.live.values(), key=lambda f: -len(f.frame_id)):
            if frame.sealed_as is not None:
                continue
            outcome = frame.state.sealed()
            if outcome is None:
                continue
            frame.sealed_as = outcome
            changed = True
            if frame.loop is None:
                continue
            self.run.flow_state.active_frame_count -= 1
            self._advance(frame.loop, frame, outcome)
        return changed

    def _advance(self, loop: LoopRun, body: FrameRun, outcome: str) -> None:
        """A body frame sealed: the next iteration, or the loop's end (§10.2)."""
        run = self.run
        parent = run.frames[loop.parent_frame]
        loop.body_frame = None
        if outcome == "Completed":
            loop.last_completed_iteration = loop.current_iteration
            loop.current_iteration += 1
            loop.stage = "AwaitingUntilEvaluation"
            try:
                done = evaluate(loop.spec.until, run.context(body))
            except ConditionError as exc:
                raise RunFatal("internal", exc.message(loop=loop.loop_id)) from exc
            if not done and loop.current_iteration < loop.spec.max_iterations:
                loop.stage = "AwaitingBodyFrame"
                run.flow_state.add_pending_loop(loop.instance_id)
                self.recorder.stage(loops=(loop,))
                return
            loop.phase = "Completed" if done else "Exhausted"
            node_status = "Completed" if done else "Failed"
        else:
            loop.phase = outcome
            node_status = outcome
        loop.stage = "Terminal"
        skipped = parent.state.finish(loop.node_id, node_status)  # type: ignore[arg-type]
        entries: list[StepLedgerEntry] = []
        now = timestamp()
        events = self.steps.record_skips(parent, skipped, entries, now)
        body_events: list[tuple[str, str, str]] = []
        failures: list[FailureLedgerEntry] = []
        if parent.loop is None:
            body_events = self._settle_body_steps(loop, node_status, entries, failures, now)
        self.recorder.stage(loops=(loop,), step_entries=entries, failures=failures)
        for kind, step_id, reason in body_events:
            if kind == "step_failed":
                self.recorder.step_failed(step_id, reason)
            else:
                self.recorder.emit(
                    "step_skipped", run_id=run.run_id, step_id=step_id, reason=reason
                )
        for step_id, why in events:
            self.recorder.emit("step_skipped", run_id=run.run_id, step_id=step_id, reason=why)

    def _settle_body_steps(
        self,
        loop: LoopRun,
        node_status: str,
        entries: list[StepLedgerEntry],
        failures: list[FailureLedgerEntry],
        now: str,
    ) -> list[tuple[str, str, str]]:
        """§10.5: a root-level loop's body steps get their run-level status now."""
        run, state = self.run, self.run.flow_state
        events = []
        for step_id in self.steps.body_steps(loop.spec.body):
            results = run.body_results.pop(step_id, {})
            if node_status == "Canceled" or not results:
                if node_status == "Canceled":
                    state.step_status[step_id] = "Canceled"
                continue
            best = max(results, key=lambda status: RANK.get(status, 0))
            value, reason = results[best]
            state.step_status[step_id] = best
            if best == "Completed":
                entries.append(
                    StepLedgerEntry(
                        step_id=step_id, status="completed", output=value, timestamp=now
                    )
                )
            elif best == "Failed":
                entries.append(StepLedgerEntry(step_id=step_id, status="failed", timestamp=now))
                failures.append(
                    FailureLedgerEntry(step_id=step_id, reason=reason or "", timestamp=now)
                )
                state.failure_count += 1
                events.append(("step_failed", step_id, reason or ""))
            else:
                entries.append(StepLedgerEntry(step_id=step_id, status="skipped", timestamp=now))
                events.append(("step_skipped", step_id, reason or ""))
        return events
