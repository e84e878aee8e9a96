"""Token accounting: a run's usage per member and per step, kept in its snapshot
(``mobctl.accounting``) as each turn's result is recorded, and shown in Meerkat's shape.

Kept: ``{"members": {identity: tally}, "steps": {step_id: tally}}``, a tally being
``{"role"?, "turns", "measured_turns", "usage"}``: every turn whose result the run recorded
counts, and its usage when its driver measured one (``echo``, ``scripted`` and ``command``
measure none). Each change is a patch op on one tally, so a step costs the same however many
members and steps the run has. Escalation turns count for their member, not for a step.

Shown (``run --json``, ``runs show``) as Meerkat's ``WireMobRunAccounting``: ``members`` with
``usage`` or ``usage_unavailable``, ``usage_total`` (input and output only: cache counters are
provider-specific, so they are read per member or per step), ``members_usage_unavailable``,
``unpriced_reason``; plus mobctl's ``steps``. ``attribution`` is ``run_turns``: exactly this
run's turns (Meerkat's ``session_cumulative`` counts whole member sessions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mobctl.drivers.base import Member, Usage
from mobctl.store.changes import Op

UNPRICED_REASON = (
    "no price data in the model catalog; token counts are exact, monetary cost is not computed"
)
NOT_MEASURED = "no turn reported token usage (its driver measures none)"


@dataclass
class Tally:
    turns: int = 0
    measured_turns: int = 0
    usage: Usage = field(default_factory=Usage)
    role: str | None = None

    def add(self, usage: Usage | None) -> None:
        self.turns += 1
        if usage is not None:
            self.measured_turns += 1
            self.usage += usage

    def document(self) -> dict[str, Any]:
        kept: dict[str, Any] = {"role": self.role} if self.role is not None else {}
        return kept | {
            "turns": self.turns,
            "measured_turns": self.measured_turns,
            "usage": self.usage.document(),
        }

    @classmethod
    def from_document(cls, document: Any) -> Tally:
        if not isinstance(document, dict):
            return cls()
        role = document.get("role")
        usage = document.get("usage")
        return cls(
            _count(document.get("turns")),
            _count(document.get("measured_turns")),
            Usage.from_document(usage if isinstance(usage, dict) else {}),
            role if isinstance(role, str) else None,
        )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Accounting:
    """The run's tallies, and the patch ops of those that changed since the last write."""

    def __init__(self, kept: Mapping[str, Any] | None) -> None:
        """``kept``: the snapshot's ``mobctl.accounting`` (None: not kept yet, written whole
        with the next change)."""
        self._whole = kept is None
        kept = kept or {}
        self.members = _tallies(kept.get("members"))
        self.steps = _tallies(kept.get("steps"))
        self._changed: set[tuple[str, str]] = set()

    def count(self, member: Member, step_id: str | None, usage: Usage | None) -> None:
        tally = self.members.setdefault(member.identity, Tally(role=member.role))
        tally.add(usage)
        self._changed.add(("members", member.identity))
        if step_id is not None:
            self.steps.setdefault(step_id, Tally()).add(usage)
            self._changed.add(("steps", step_id))

    def document(self) -> dict[str, Any]:
        return {
            "members": {k: t.document() for k, t in self.members.items()},
            "steps": {k: t.document() for k, t in self.steps.items()},
        }

    def ops(self) -> list[Op]:
        changed, self._changed = self._changed, set()
        if self._whole:
            self._whole = False
            return [("set", ("mobctl", "accounting"), self.document())]
        tables = {"members": self.members, "steps": self.steps}
        return [
            ("set", ("mobctl", "accounting", table, key), tables[table][key].document())
            for table, key in sorted(changed)
        ]


def _tallies(kept: Any) -> dict[str, Tally]:
    if not isinstance(kept, dict):
        return {}
    return {str(key): Tally.from_document(value) for key, value in kept.items()}


def shown(kept: Mapping[str, Any] | None, step_order: Iterable[str] = ()) -> dict[str, Any]:
    """The accounting as ``run --json`` and ``runs show`` give it (Meerkat's field names):
    members by identity, steps in run order (then any others)."""
    accounting = Accounting(kept)
    members = []
    unavailable = 0
    total = Usage()
    for identity, tally in sorted(accounting.members.items()):
        entry: dict[str, Any] = {
            "agent_identity": identity,
            "role": tally.role,
            "turns": tally.turns,
        }
        if tally.measured_turns:
            total += tally.usage
            entry["usage"] = tally.usage.document()
            if tally.measured_turns < tally.turns:
                entry["turns_without_usage"] = tally.turns - tally.measured_turns
        else:
            unavailable += 1
            entry["usage_unavailable"] = NOT_MEASURED
        members.append(entry)
    order = {step: n for n, step in enumerate(step_order)}
    steps = [
        {"step_id": step, "turns": tally.turns}
        | ({"usage": tally.usage.document()} if tally.measured_turns else {})
        for step, tally in sorted(
            accounting.steps.items(), key=lambda item: (order.get(item[0], len(order)), item[0])
        )
    ]
    return {
        "attribution": "run_turns",
        "members": members,
        "steps": steps,
        "usage_total": {
            "input_tokens": total.input_tokens,
            "output_tokens": total.output_tokens,
            "total_tokens": total.input_tokens + total.output_tokens,
        },
        "members_usage_unavailable": unavailable,
        "unpriced_reason": UNPRICED_REASON,
    }
