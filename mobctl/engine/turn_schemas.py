"""A step's expected schema, as the run reads it and as each of its turns is given it.

The schema is the inline ``expected_schema_ref`` or the copy of the named file made at
registration: a run reads no file (flow-semantics §7.9). It validates the step's aggregate
(§7.8), so a turn is given the part of it that its own answer must meet: the whole schema when
the aggregate is the answer itself (policy ``any``, not ``fan_in``); for ``all`` and ``quorum``,
whose aggregate is ``{member: answer}``, the schema of the member's entry (``properties``, else
``additionalProperties``), with the root's ``$defs`` so its local ``$ref`` still resolve;
otherwise none (``fan_in``, or no entry schema): the aggregate is still checked after.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mobctl.definition.model import AnyPolicy, Step
from mobctl.definition.schemas import InlineSchema, parse_schema_ref

_CARRIED = ("$schema", "$defs", "definitions")  # kept from the root in a member's schema


def step_schema(step: Step, copies: Mapping[str, Any]) -> dict[str, Any] | None:
    """The step's schema (inline, or the registration copy); None without one, or when the
    copy is missing (the step then fails when its aggregate is checked)."""
    if step.expected_schema_ref is None:
        return None
    ref = parse_schema_ref(step.expected_schema_ref)
    schema = ref.schema if isinstance(ref, InlineSchema) else copies.get(ref.name)
    return schema if isinstance(schema, dict) else None


def turn_schema(schema: dict[str, Any] | None, step: Step, member: str) -> dict[str, Any] | None:
    """What ``member``'s answer must meet for the step's aggregate to meet ``schema``."""
    if schema is None or step.dispatch_mode == "fan_in":
        return None
    if isinstance(step.collection_policy, AnyPolicy):
        return schema
    properties = schema.get("properties")
    entry = properties.get(member) if isinstance(properties, dict) else None
    if entry is None:
        entry = schema.get("additionalProperties")
    if not isinstance(entry, dict):
        return None
    carried = {key: schema[key] for key in _CARRIED if key in schema and key not in entry}
    return carried | entry
