"""What is wrong with a store file, in words that never quote it (store contract §8.7a).

The store is untrusted, and its files hold secrets (supervisor seeds, bootstrap tokens, the
text of skills, outputs): an error about a file names the file, the field and what the field
should be, never a value. pydantic's own text is not used as it is: its ``str()`` quotes the
input (``input_value=…``), some of its messages quote it too (a union tag, a parser's error),
and an error's location holds the keys of a mapping, which are file content as well. So a
message is built from the location's field names (any other key shown as ``<key>``) and
pydantic's message only when its context is the schema's, never the input's.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mobctl.canonical import Unwritable
from mobctl.errors import StoreCorrupt

# context keys whose values come from the schema (or are counts), never from the input
_SCHEMA_CONTEXT = frozenset(
    {
        "expected",
        "class_name",
        "pattern",
        "min_length",
        "max_length",
        "actual_length",
        "gt",
        "ge",
        "lt",
        "le",
        "multiple_of",
        "max_digits",
        "decimal_places",
        "whole_digits",
        "discriminator",
        "expected_tags",
    }
)


def unreadable(
    path: Path | str,
    what: str,
    exc: ValueError,
    model: type[BaseModel] | None = None,
    *,
    hint: str | None = None,
) -> StoreCorrupt:
    """``store_corrupt`` for the file ``path`` that is not ``what`` ("a spec record"):
    "<path> is not valid JSON (<where>)" or "<path> is not <what>: <field>: <reason>".

    ``exc`` is what reading it raised: a JSON error (``parse_json``), or ``model``'s
    ``ValidationError``."""
    return StoreCorrupt(f"{path} {defect(what, exc, model)}", hint=hint)


def defect(
    what: str,
    exc: ValueError,
    model: type[BaseModel] | None = None,
    *,
    names: frozenset[str] = frozenset(),
) -> str:
    """The part of :func:`unreadable`'s message after the path; ``names``: keys that may be
    named besides ``model``'s field names."""
    known = names | (field_names(model) if model is not None else frozenset())
    if isinstance(exc, ValidationError):
        return f"is not {what}: {shape_defect(exc, model)}"
    if isinstance(exc, Unwritable):  # JSON, but holding what mobctl never writes
        where = location(exc.location, known)
        return f"is not {what}: {where}: {exc}" if where else f"is not {what}: {exc}"
    return f"is not valid JSON ({json_defect(exc)})"


def json_defect(exc: ValueError) -> str:
    """Where a JSON text breaks, from the parser's error (its messages name no content), or
    what it holds that mobctl never writes."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    return str(exc) if isinstance(exc, Unwritable) else "unreadable"


SHOWN_PARTS = 8  # of a location: a value nested too deeply has one as deep as it goes


def location(parts: Sequence[str | int], names: frozenset[str]) -> str:
    """A dotted location: indexes and the keys in ``names`` as they are, any other key (file
    content) as ``<key>``; at most :data:`SHOWN_PARTS` parts, then "…"."""
    shown = ".".join(
        str(part) if isinstance(part, int) or part in names else "<key>"
        for part in parts[:SHOWN_PARTS]
    )
    return shown + ".…" if len(parts) > SHOWN_PARTS else shown


def shape_defect(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """ "<field path>: <what it should be>" for the first problem (and how many more)."""
    problems = exc.errors(include_url=False, include_input=False, include_context=True)
    first = problems[0]
    where = location(first["loc"], field_names(model) if model is not None else frozenset())
    if first["type"] == "json_invalid":
        reason = "invalid JSON"
    elif set(first.get("ctx", {})) <= _SCHEMA_CONTEXT:
        reason = first["msg"]
    else:  # the message would quote the input
        reason = f"invalid value ({first['type']})"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{where}: {reason}{more}" if where else f"{reason}{more}"


@cache
def field_names(model: type[BaseModel]) -> frozenset[str]:
    """Every field name (and alias) of ``model`` and of the models its fields hold."""
    names: set[str] = set()
    pending: list[type[BaseModel]] = [model]
    seen: set[type[BaseModel]] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, info in current.model_fields.items():
            names.update(n for n in (name, info.alias) if n)
            pending.extend(_models_in(info.annotation))
    return frozenset(names)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) is not None or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            found += _models_in(argument)
    return found
