"""``expected_schema_ref``: inline JSON schema or a named file (definition-schema §5.5.1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class InlineSchema:
    schema: dict[str, Any]  # normalised


@dataclass(frozen=True, slots=True)
class NamedSchema:
    name: str  # a file, read through mobctl.definition.files (contained in the definition's folder)


SchemaRef = InlineSchema | NamedSchema


def parse_schema_ref(text: str) -> SchemaRef:
    """Text that parses as a JSON object is an inline schema; anything else names a file."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return NamedSchema(text)
    if isinstance(value, dict):
        return InlineSchema(normalise_schema(value))
    return NamedSchema(text)


def normalise_schema(value: Any) -> Any:
    """Add ``properties = {}`` / ``required = []`` to every object schema that lacks them."""
    if isinstance(value, list):
        return [normalise_schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {key: normalise_schema(item) for key, item in value.items()}
    kind = result.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object or "properties" in result or "required" in result:
        result.setdefault("properties", {})
        result.setdefault("required", [])
    return result


def schema_validator(schema: Any) -> Any:
    """A validator for ``schema`` in its ``$schema`` dialect (default 2020-12).

    Its registry holds only the JSON Schema meta-schemas: a ``$ref`` to anything else (a file,
    a URL) raises ``referencing.exceptions.Unresolvable`` instead of being fetched, which is
    jsonschema's default and would let a definition read a file or reach the network.
    """
    import jsonschema
    from referencing import Registry

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, registry=Registry())


_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})  # values, not schemas


def outside_refs(schema: Any) -> list[str]:
    """Every ``$ref`` / ``$dynamicRef`` of ``schema`` that does not point inside it (``#...``)."""
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                    if not item.startswith("#"):
                        found.append(item)
                elif key not in _DATA_KEYWORDS:
                    stack.append(item)
    return found


def canonical_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
