"""Canonical JSON and type-strict JSON equality (store contract §2.2-§2.3), strict parsing of
JSON a user or an agent wrote."""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical(value: Any) -> str:
    """Compact JSON in the given key order; NaN and infinities are refused."""
    return _ENCODER.encode(value)


# How deeply a value a member or a user hands over (an output, the params) may nest arrays
# and objects, well inside what every reader of the store takes: pydantic validates a JSON
# value to 255 levels (deeper, a snapshot would not read back).
MAX_VALUE_DEPTH = 200
# How deeply a store document may nest: such a value sits up to 9 levels down in one (a run
# journal line setting a run's terminal event: {"ops": [["set", path, {"structured_output":
# {"steps": {step: [{"target": ..., "output": HERE}]}}}]]}), so a little more than that.
MAX_DOCUMENT_DEPTH = MAX_VALUE_DEPTH + 16

Location = tuple[str | int, ...]


class Unwritable(ValueError):
    """A value mobctl never writes to its store, so never takes from it either: NaN or an
    infinity, a lone surrogate (UTF-8 cannot encode it), a key that is not a string, nesting
    deeper than a limit. The message says what, never the value; ``location`` is where in the
    value (keys and indexes), for a caller that knows which keys it may name."""

    def __init__(self, problem: str, location: Location = ()) -> None:
        super().__init__(problem)
        self.location = location


def unwritable(value: Any, max_depth: int) -> Unwritable | None:
    """What makes ``value`` one the store could not write and read back equal (None: it
    can): objects with string keys, arrays, finite numbers, integers Python writes in decimal,
    text without lone surrogates, nested at most ``max_depth`` levels. Iterative, so a value
    of any depth is only walked down to the limit."""
    # (item, depth, trail): a trail is (parent trail, key), built only as deep as the walk goes
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]
    while stack:
        item, depth, trail = stack.pop()
        problem: str | None = None
        if isinstance(item, dict | list):
            if depth == max_depth:
                problem = f"nested more than {max_depth} levels deep"
            elif isinstance(item, list):
                stack += [(child, depth + 1, (trail, i)) for i, child in enumerate(item)]
                continue
            else:
                for key, child in item.items():
                    if not isinstance(key, str):
                        problem = f"object keys are strings, not {type(key).__name__}"
                    else:
                        problem = _surrogate(key)
                    if problem is not None:
                        break
                    stack.append((child, depth + 1, (trail, key)))
        elif isinstance(item, str):
            problem = _surrogate(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                problem = f"{item} is not a JSON number"
        elif isinstance(item, int):  # bool included
            if item.bit_length() > 64:
                try:
                    str(item)  # past 4300 digits Python refuses to write it in decimal
                except ValueError as exc:
                    problem = str(exc).split(";")[0]
        elif item is not None:
            problem = f"a value of type {type(item).__name__} is not JSON"
        if problem is not None:
            return Unwritable(problem, _location(trail))
    return None


def _surrogate(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"a string holds a lone surrogate (U+{code:04X}), which UTF-8 cannot encode"
    return None


def _location(trail: Any) -> Location:
    parts: list[str | int] = []
    while trail is not None:
        trail, key = trail
        parts.append(key)
    return tuple(reversed(parts))


class _NotFinite(Exception):
    pass


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # 1e400: read, it would be Infinity
        raise _NotFinite
    return value


def _no_constant(name: str) -> float:  # NaN, Infinity, -Infinity
    raise _NotFinite


# one decoder for every read (json.loads with hooks would build one per call)
_STORE_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def parse_json(data: bytes) -> Any:
    """A store document: JSON in UTF-8 as mobctl writes it, or a ``ValueError`` for anything
    else: :class:`Unwritable` for what it never writes (NaN and infinities, lone surrogates,
    nesting deeper than :data:`MAX_DOCUMENT_DEPTH`), so that a reader never holds a value it
    could not write back or print. As cheap as ``json.loads`` for what mobctl writes: the
    value is walked only when the text may hold one of those (a surrogate escape, more
    brackets than the depth), or to say where a non-finite number is."""
    text = data.decode("utf-8")  # strict: an encoded surrogate is no UTF-8
    try:
        try:
            value = _STORE_DECODER.decode(text)
        except _NotFinite:
            value = json.loads(text)  # again, keeping the number, to say where it is
            suspect = True
        else:  # only an escape can make a surrogate
            escape = "\\ud" in text or "\\uD" in text
            suspect = escape or _deeper_than(text, MAX_DOCUMENT_DEPTH)
    except RecursionError:
        raise Unwritable(f"nested more than {MAX_DOCUMENT_DEPTH} levels deep") from None
    problem = unwritable(value, MAX_DOCUMENT_DEPTH) if suspect else None
    if problem is not None:
        raise problem
    return value


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: 4x faster on long text
_BRACKET = re.compile(r"[\[\]{}]")


def _deeper_than(text: str, limit: int) -> bool:
    """Whether valid JSON ``text`` nests deeper than ``limit``: its brackets outside strings,
    counted. A large snapshot has far more brackets than the limit, and walking its value
    cost a run about a tenth of its time."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(1 if b in "[{" else -1 for b in brackets)) > limit


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
