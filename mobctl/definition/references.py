"""Context references: the paths that conditions and templates read (flow-semantics §8.1).

``params[.seg…]``, ``steps.<id>[.output][.seg…]`` and
``loops.<loop>.iterations.<n>.steps.<step>[.seg…]``; anything else is unparsable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_INDEX = re.compile(r"^\+?[0-9]+$")


@dataclass(frozen=True, slots=True)
class ParamsRef:
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepRef:
    step_id: str
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoopRef:
    loop_id: str
    iteration: int
    step_id: str
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unparsable:
    path: str
    reason: Literal["UnknownRoot", "MalformedStructure"]

    def describe(self) -> str:
        if self.reason == "UnknownRoot":
            return f"unknown root in '{self.path}': expected params, steps.<id> or loops.<id>"
        return f"malformed reference '{self.path}'"


Reference = ParamsRef | StepRef | LoopRef | Unparsable


def is_index(segment: str) -> bool:
    """Whether a path segment can index an array (``^\\+?[0-9]+$``)."""
    return _INDEX.match(segment) is not None


def parse_reference(path: str) -> Reference:
    parts = path.split(".")
    root, rest = parts[0], parts[1:]
    if root == "params":
        return ParamsRef(tuple(rest))
    if root == "steps":
        if not rest or not rest[0]:
            return Unparsable(path, "MalformedStructure")
        segments = rest[1:]
        if segments[:1] == ["output"]:
            segments = segments[1:]
        return StepRef(rest[0], tuple(segments))
    if root == "loops":
        if (
            len(rest) < 5
            or not rest[0]
            or rest[1] != "iterations"
            or not is_index(rest[2])
            or rest[3] != "steps"
            or not rest[4]
        ):
            return Unparsable(path, "MalformedStructure")
        return LoopRef(rest[0], int(rest[2]), rest[4], tuple(rest[5:]))
    return Unparsable(path, "UnknownRoot")
