"""``mobctl runs logs``: the turn transcripts of a run (store contract §4.10), of one step or
one member if asked, in key order (step, iteration, member, attempt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mobctl.api.runs import resolve_run
from mobctl.store.contract import Store, Transcript
from mobctl.store.models import MobRun


@dataclass(frozen=True)
class RunLogs:
    run: MobRun
    transcripts: list[Transcript]

    def document(self) -> dict[str, Any]:
        """The ``--json`` document: the run, and each turn's key and record."""
        return {
            "run_id": self.run.run_id,
            "mob_id": self.run.mob_id,
            "turns": [
                {
                    "step_id": t.key.step_id,
                    "iteration": t.key.iteration,
                    "member": t.key.member,
                    "attempt": t.key.attempt,
                    "escalation": t.key.escalation,
                    "record": t.record,
                }
                for t in self.transcripts
            ],
        }


def run_logs(
    store: Store, mob_id: str, ref: str, *, step: str | None = None, member: str | None = None
) -> RunLogs:
    """The transcripts of the run ``ref`` names (a run id or a prefix of exactly one)."""
    run = resolve_run(store, mob_id, ref)
    kept = store.transcripts(run.mob_id).list_transcripts(run.run_id, step=step, member=member)
    return RunLogs(run, kept)
