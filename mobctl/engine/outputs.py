"""Turn outputs: parsing (flow-semantics §7.7), collection policy and aggregate (§7.8), and the
result envelope of a completed run (§11.3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from mobctl.canonical import NestedTooDeeply, strict_json
from mobctl.definition.model import AllPolicy, AnyPolicy, CollectionPolicy, QuorumPolicy

FENCE = "```"
# How deeply an output may nest arrays and objects, well inside what every reader of the store
# takes: pydantic validates a JSON value to 255 levels (deeper, a snapshot would not read back),
# and an output sits up to 4 levels down in one (flow_completed's structured_output, kept in
# mobctl.terminal_event: {"steps": {step: [{"target": ..., "output": HERE}]}}).
MAX_OUTPUT_DEPTH = 200
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
    reads back equal: objects with string keys, arrays, finite numbers, text without lone
    surrogates (UTF-8 cannot encode them), nested at most :data:`MAX_OUTPUT_DEPTH` levels.
    Iterative, so a value of any depth is only walked down to the limit."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth == MAX_OUTPUT_DEPTH:
                raise MalformedOutput(TOO_DEEP)
            if isinstance(item, list):
                stack += [(child, depth + 1) for child in item]
                continue
            for key, child in item.items():
                if not isinstance(key, str):
                    raise MalformedOutput(f"object keys are strings, not {type(key).__name__}")
                _unicode(key)
                stack.append((child, depth + 1))
        elif isinstance(item, str):
            _unicode(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise MalformedOutput(f"{item} is not a JSON number")
        elif isinstance(item, int):  # bool included
            if item.bit_length() > 64:
                try:
                    str(item)  # past 4300 digits Python refuses to write it in decimal
                except ValueError as exc:
                    raise MalformedOutput(str(exc).split(";")[0]) from None
        elif item is not None:
            raise MalformedOutput(f"a value of type {type(item).__name__} is not JSON")


def _unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise MalformedOutput(
            f"a string holds a lone surrogate (U+{code:04X}), which UTF-8 cannot encode"
        ) from None


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
