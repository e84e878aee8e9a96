"""Structured output: which schema a JSON turn asks the provider for, how its answer is
checked, and the repair prompt (worded as Meerkat's extraction retries word it).

The schema is the step's resolved ``expected_schema_ref`` when it has one, else the profile's
``output_schema``. Sending the step's schema to the model is an improvement over Meerkat,
which only checks it after the turn.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from referencing.exceptions import Unresolvable

from mobctl.canonical import strict_json
from mobctl.definition.schemas import schema_validator
from mobctl.drivers.base import TurnRequest

MAX_REPAIRS = 2


def wanted_schema(request: TurnRequest) -> dict[str, Any] | None:
    if request.output_format != "json":
        return None
    if request.expected_schema is not None:
        return request.expected_schema
    return request.profile.output_schema if request.profile is not None else None


def strip_fences(text: str) -> str:
    """Meerkat's ``strip_code_fences``: a leading ```json or ``` and a trailing ```."""
    trimmed = text.strip()
    for prefix in ("```json", "```"):
        if trimmed.startswith(prefix):
            body = trimmed[len(prefix) :].strip()
            return body[: -len("```")].strip() if body.endswith("```") else body
    return trimmed


def check(text: str, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    """The answer's JSON value and None, or None and what is wrong with it."""
    try:
        value = strict_json(strip_fences(text), not_json="is not valid JSON")
    except ValueError as exc:
        return None, f"Invalid JSON: {exc}"
    if schema is None:
        return value, None
    try:
        error = jsonschema.exceptions.best_match(schema_validator(schema).iter_errors(value))
    except jsonschema.SchemaError as exc:
        return None, f"the schema itself is invalid: {exc.message}"
    except Unresolvable as exc:
        return None, f"the schema's $ref {exc.ref!r} is not inside the schema (never fetched)"
    if error is None:
        return value, None
    where = "/".join(str(part) for part in error.absolute_path)
    return None, f"Schema validation failed: {error.message}" + (f" at /{where}" if where else "")


def repair_prompt(problem: str) -> str:
    """Meerkat's ``retry_prompt_for_error``."""
    return (
        f"The previous output was invalid: {problem}. Please provide valid JSON matching the "
        "schema. Output ONLY the JSON, no additional text."
    )
