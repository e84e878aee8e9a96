"""Turn outputs: parsing (flow-semantics §7.7), collection policy and aggregate (§7.8), and the
result envelope of a completed run (§11.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mobctl.canonical import MAX_VALUE_DEPTH, NestedTooDeeply, strict_json, unwritable
from mobctl.definition.model import AllPolicy, AnyPolicy, CollectionPolicy, QuorumPolicy

FENCE = "```"
# How deeply an output may nest (the store reads documents nested a little deeper, to hold it)
MAX_OUTPUT_DEPTH = MAX_VALUE_DEPTH
TOO_DEEP = f"nested more than {MAX_OUTPUT_DEPTH} levels deep"


class MalformedOutput(Exception):
    """The member's output is not JSON (even without a Markdown fence), or is a value the store
    cannot write and read back."""


def _loads(text: str) -> Any:
    return strict_json(text, not_json="is not valid JSON")


def parse_output(raw: str, structured: Any, output_format: Literal["json", "text"]) -> Any:
    """The value of one target's output: one the store can write and read back equal."""
    if output_format == "text":
        value = raw
    elif structured is not None:
        value = structured
    else:
        value = _parse_json(raw)
    ensure_storable(value)
    return value


def ensure_storable(value: Any) -> None:
    """Raise :class:`MalformedOutput` unless ``value`` is plain JSON that the store writes and
    reads back equal, nested at most :data:`MAX_OUTPUT_DEPTH` levels (:func:`unwritable`)."""
    problem = unwritable(value, MAX_OUTPUT_DEPTH)
    if problem is not None:
        raise MalformedOutput(str(problem))


def _parse_json(raw: str) -> Any:
    try:
        return _loads(raw.strip())
    except ValueError:
        pass
    text = raw.strip()
    start = text.find(FENCE)
    if start != -1:
        newline = text.find("\n", start)
        body = "" if newline == -1 else text[newline + 1 :]
        end = body.find(FENCE)
        text = (body if end == -1 else body[:end]).strip()
    try:
        return _loads(text)
    except NestedTooDeeply:
        raise MalformedOutput(TOO_DEEP) from None
    except ValueError as exc:
        raise MalformedOutput(str(exc)) from exc


@dataclass(frozen=True)
class TargetResult:
    target: str
    ok: bool
    value: Any = None  # the parsed output when ok
    reason: str = ""  # why it failed otherwise


@dataclass(frozen=True)
class Collected:
    ok: bool
    aggregate: Any = None
    reason: str = ""


def policy_name(policy: CollectionPolicy) -> str:
    if isinstance(policy, QuorumPolicy):
        return f"Quorum {{ n: {policy.n} }}"
    return "All" if isinstance(policy, AllPolicy) else "Any"


def collect(
    results: list[TargetResult],
    policy: CollectionPolicy,
    dispatch_mode: Literal["fan_out", "one_to_one", "fan_in"],
) -> Collected:
    """Apply the collection policy to results in completion order."""
    successes = [r for r in results if r.ok]
    failures = [r for r in results if not r.ok]
    if len(results) == 1:
        ok = results[0].ok
    elif isinstance(policy, AllPolicy):
        ok = not failures
    elif isinstance(policy, AnyPolicy):
        ok = bool(successes)
    else:
        ok = len(successes) >= policy.n
    if not ok:
        reason = "; ".join(r.reason for r in failures) or (
            f"collection policy {policy_name(policy)} not satisfied: {len(successes)} "
            f"successes, {len(failures)} failures"
        )
        return Collected(False, reason=reason)
    return Collected(True, aggregate=aggregate(successes, policy, dispatch_mode))


def aggregate(
    successes: list[TargetResult],
    policy: CollectionPolicy,
    dispatch_mode: Literal["fan_out", "one_to_one", "fan_in"],
) -> Any:
    if dispatch_mode == "fan_in":
        return [{"target": r.target, "output": r.value} for r in successes]
    if isinstance(policy, AnyPolicy):
        return successes[0].value if successes else None
    return {r.target: r.value for r in sorted(successes, key=lambda r: r.target)}


def result_envelope(root_outputs: dict[str, Any]) -> Any:
    """``result``: the single output, ``{"steps": outputs}`` for several, None for none."""
    if not root_outputs:
        return None
    if len(root_outputs) == 1:
        return next(iter(root_outputs.values()))
    return {"steps": dict(root_outputs)}


def structured_output(
    root_outputs: dict[str, Any], loop_outputs: dict[str, list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """``flow_completed.structured_output``: root outputs, then every loop iteration in order
    (later iterations overwrite); None when no step produced output."""
    steps = dict(root_outputs)
    for history in loop_outputs.values():
        for iteration in history:
            steps.update(iteration)
    return {"steps": steps} if steps else None
