"""``expected_schema_ref``: inline JSON schema or a named file (definition-schema §5.5.1)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import regex


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

    Its ``pattern``, ``patternProperties`` and ``additionalProperties`` match with a time
    limit (:data:`PATTERN_SECONDS`): a schema may come from a pull request, and jsonschema's
    ``re`` would let ``"^(a+)+$"`` hold the process (GIL, Ctrl-C) for hours on 40 characters.
    A pattern that takes longer fails the value.
    """
    import jsonschema
    from referencing import Registry

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return _time_limited(cls)(schema, registry=Registry())


PATTERN_SECONDS = 1.0


@functools.cache
def _time_limited(cls: Any) -> Any:
    import jsonschema

    return jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        cls,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )


class _SlowPattern(Exception):
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern


def _search(pattern: str, text: str) -> bool:
    try:
        return regex.search(pattern, text, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        raise _SlowPattern(pattern) from None


def _failing(patterns: Iterator[Any]) -> Iterator[Any]:
    """The errors ``patterns`` yields, ended by one for a pattern that took too long or is
    not a regular expression."""
    from jsonschema import ValidationError

    try:
        yield from patterns
    except _SlowPattern as slow:
        yield ValidationError(
            f"the pattern {slow.pattern!r} took longer than {PATTERN_SECONDS:g}s to match"
        )
    except regex.error as exc:
        yield ValidationError(f"a pattern is not a regular expression: {exc}")


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema import ValidationError

    def errors() -> Iterator[Any]:
        if validator.is_type(instance, "string") and not _search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    return _failing(errors())


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    def errors() -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        for pattern, subschema in patterns.items():
            for key, value in instance.items():
                if _search(pattern, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=pattern)

    return _failing(errors())


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``additionalProperties``, with the patterns matched by :func:`_search`."""
    from jsonschema import ValidationError

    def errors() -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        properties, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
        extras = [
            key
            for key in instance
            if key not in properties and not any(_search(p, key) for p in patterns)
        ]
        if validator.is_type(extra, "object"):
            for key in extras:
                yield from validator.descend(instance[key], extra, path=key)
        elif not extra and extras:
            listed = ", ".join(repr(key) for key in sorted(extras))
            if patterns:
                regexes = ", ".join(repr(p) for p in sorted(patterns))
                verb = "does" if len(extras) == 1 else "do"
                yield ValidationError(f"{listed} {verb} not match any of the regexes: {regexes}")
            else:
                verb = "was" if len(extras) == 1 else "were"
                yield ValidationError(
                    f"Additional properties are not allowed ({listed} {verb} unexpected)"
                )

    return _failing(errors())


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
