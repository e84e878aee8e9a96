"""Turn transcripts (store contract §4.10): what each turn was asked and what its driver did,
written through the store contract before the turn's result is recorded.

The record is the engine's account of the turn (its key, member, status, output or reason,
usage, timing) with the driver's own transcript under ``driver``; it is made storable (text
the store can encode, numbers JSON has, nesting within the store's reach) and cut to the
store's record cap, longest texts first.
"""

from __future__ import annotations

import math
from typing import Any

from mobctl.canonical import canonical
from mobctl.drivers.base import Canceled, Completed, DispatchError, Failed, Outcome, TurnRequest
from mobctl.engine.outputs import MAX_OUTPUT_DEPTH
from mobctl.engine.reasons import encodable
from mobctl.store.contract import TranscriptStore, TurnKey

FORMAT = 1
ENVELOPE = 4096  # bytes of the record cap kept for the store's envelope around a record
SHORTEST_CUT = 64  # characters a cut text keeps at least
MAX_INT_BITS = 4096  # an integer longer than this is kept as a note (about 1233 digits)


def iteration_path(frame_id: str) -> str:
    """The loop iterations of a frame, outermost first (``0`` outside every loop): a body
    frame's id ends in ``::iter-<k>`` once per enclosing loop."""
    found = [part[len("iter-") :] for part in frame_id.split("::") if part.startswith("iter-")]
    return ".".join(found) or "0"


def turn_key(request: TurnRequest) -> TurnKey:
    step = request.step_id or ""
    if request.kind == "escalation":
        return TurnKey(step, "0", request.member.identity, request.attempt, escalation=True)
    return TurnKey(step, iteration_path(request.frame_id), request.member.identity, request.attempt)


def turn_record(
    request: TurnRequest,
    outcome: Outcome | DispatchError,
    *,
    timed_out: bool,
    started_at: str,
    duration_ms: int,
) -> dict[str, Any]:
    """The engine's record of one turn."""
    key = turn_key(request)
    record: dict[str, Any] = {
        "schema_version": FORMAT,
        "run_id": request.run_id,
        "flow_id": request.flow_id,
        "kind": request.kind,
        "step_id": request.step_id,
        "iteration": key.iteration,
        "loop_id": request.loop_id,
        "member": request.member.identity,
        "generation": request.member.generation,
        "role": request.member.role,
        "attempt": request.attempt,
        "status": _status(outcome, timed_out),
        "started_at": started_at,
        "duration_ms": duration_ms,
        "message": request.message,
        "output": None,
        "structured_output": None,
        "reason": None,
        "usage": None,
        "driver": None,
    }
    if isinstance(outcome, DispatchError):
        return record | {"reason": str(outcome)}
    usage = outcome.usage
    record |= {"usage": usage.document() if usage else None, "driver": outcome.transcript}
    if isinstance(outcome, Completed):
        record |= {"output": outcome.output, "structured_output": outcome.structured_output}
    elif isinstance(outcome, Failed):
        record["reason"] = outcome.reason
    return record


def _status(outcome: Outcome | DispatchError, timed_out: bool) -> str:
    if isinstance(outcome, DispatchError):
        return "not_started"
    if timed_out:
        return "timed_out"
    if isinstance(outcome, Canceled):
        return "canceled"
    return "completed" if isinstance(outcome, Completed) else "failed"


def storable(value: Any, cut: int | None = None, depth: int = 0) -> Any:
    """``value`` as JSON the store writes and reads back: text with lone surrogates escaped
    (and, with ``cut``, longer texts cut to ``cut`` characters and a marker), non-finite
    numbers and other values as text, integers too long to write and nesting past the
    store's reach replaced by a note."""
    if isinstance(value, str):
        text = encodable(value)
        if cut is not None and len(text) > cut:
            return text[:cut] + f"… [cut: {len(text) - cut} more characters]"
        return text
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # past 4300 digits Python refuses to write one in decimal
        return value if value.bit_length() <= MAX_INT_BITS else "[integer too large to keep]"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_OUTPUT_DEPTH:
        return "[nested too deeply to keep]"
    if isinstance(value, dict):
        return {encodable(str(k)): storable(v, cut, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item, cut, depth + 1) for item in value]
    return storable(str(value), cut, depth)


def capped(record: dict[str, Any], limit: int) -> dict[str, Any]:
    """``record`` made storable, within ``limit`` bytes of canonical JSON: as it is when it
    fits; else with every text cut to the longest length that fits (``"truncated": true``);
    else (countless small parts) only its top-level scalars."""
    kept: dict[str, Any] = storable(record)
    text = canonical(kept)
    if len(text.encode()) <= limit:
        return kept
    cut = len(text)
    while cut > SHORTEST_CUT:
        cut //= 2
        shorter: dict[str, Any] = storable(record, cut) | {"truncated": True}
        if len(canonical(shorter).encode()) <= limit:
            return shorter
    summary = {k: v for k, v in kept.items() if not isinstance(v, dict | list)}
    return storable(summary, SHORTEST_CUT) | {"truncated": True}  # type: ignore[no-any-return]


class TranscriptWriter:
    """Writes each turn's record to the mob's transcripts, within the store's record cap."""

    def __init__(self, transcripts: TranscriptStore, max_record_bytes: int) -> None:
        self.transcripts = transcripts
        self.limit = max(max_record_bytes - ENVELOPE, 1024)

    def write(
        self,
        request: TurnRequest,
        outcome: Outcome | DispatchError,
        *,
        timed_out: bool,
        started_at: str,
        duration_ms: int,
    ) -> None:
        record = turn_record(
            request, outcome, timed_out=timed_out, started_at=started_at, duration_ms=duration_ms
        )
        self.transcripts.put_transcript(
            request.run_id, turn_key(request), capped(record, self.limit)
        )
