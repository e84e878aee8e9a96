"""Canonical JSON and type-strict JSON equality (store contract §2.2-§2.3), strict parsing of
JSON a user or an agent wrote."""

from __future__ import annotations

import json
import math
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical(value: Any) -> str:
    """Compact JSON in the given key order; NaN and infinities are refused."""
    return _ENCODER.encode(value)


def parse_json(data: bytes | str) -> Any:
    """``json.loads``, with nesting too deep for the parser reported as a ``ValueError`` like
    any other malformed JSON (a file edited by hand must not crash a reader)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


class OutOfRangeNumber(ValueError):
    """A JSON number too large for a float: read, it would be Infinity, which is not JSON."""


class NestedTooDeeply(ValueError):
    """JSON nested deeper than Python's parser goes (about 1000 levels less the caller's stack
    depth, so the exact depth varies)."""


def strict_json(text: str, *, not_json: str = "is not JSON") -> Any:
    """JSON as RFC 8259 has it: NaN and Infinity refused ("NaN {not_json}"), a number that
    overflows to infinity refused (:class:`OutOfRangeNumber`, raised only once the rest of the
    text parses), and nesting too deep for the parser :class:`NestedTooDeeply`."""
    overflowing: list[str] = []

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} {not_json}")

    def finite(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            overflowing.append(literal)
        return value

    try:
        value = json.loads(text, parse_constant=refuse, parse_float=finite)
    except RecursionError:
        raise NestedTooDeeply("nested too deeply") from None
    if overflowing:
        literal = overflowing[0] if len(overflowing[0]) <= 40 else overflowing[0][:40] + "…"
        infinity = "-Infinity" if literal.startswith("-") else "Infinity"
        raise OutOfRangeNumber(f"the number {literal} is out of range ({infinity} {not_json})")
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality: key order ignored, ``true != 1 != 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a is None and b is None
