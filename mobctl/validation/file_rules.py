"""Checks that read files beside the definition: schemas and path skills (schema §8.2, §8.4)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from mobctl.definition.files import DefinitionFiles, PathOutsideDefinition
from mobctl.definition.model import AllPolicy, MobDefinition, PathSkill, QuorumPolicy, Step
from mobctl.definition.schemas import (
    InlineSchema,
    normalise_schema,
    outside_refs,
    parse_schema_ref,
)
from mobctl.diagnostics import Diagnostic, Path, diagnostic

_WRAPPER_HINT = (
    'use collection_policy = { type = "any" } with dispatch_mode = "one_to_one" to validate '
    "the bare output"
)


def check_files(definition: MobDefinition, files: DefinitionFiles) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for name, skill in definition.skills.items():
        if isinstance(skill, PathSkill):
            path: Path = ("skills", name, "path")
            try:
                files.read_text(skill.path)
            except PathOutsideDefinition as exc:
                found.append(_outside(f"skill '{name}' {exc}", path))
            except (OSError, UnicodeDecodeError) as exc:
                found.append(
                    diagnostic(
                        "skill_path_not_found",
                        f"skill '{name}' file '{skill.path}' {_unreadable(exc)}",
                        path,
                        hint="paths resolve relative to the definition's folder "
                        f"({files.directory})",
                    )
                )
    for flow_id, flow in definition.flows.items():
        for step_id, step in flow.steps.items():
            if step.expected_schema_ref is not None:
                path = ("flows", flow_id, "steps", step_id, "expected_schema_ref")
                found += _check_schema(step_id, step, step.expected_schema_ref, path, files)
    return found


def _outside(message: str, path: Path) -> Diagnostic:
    return diagnostic(
        "path_outside_definition",
        message,
        path,
        hint="a definition reads files only inside its own directory; "
        "pass --allow-path DIR to trust another directory",
    )


def _unreadable(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "is not UTF-8 text"
    if isinstance(exc, FileNotFoundError):
        return f"does not exist ({exc.filename})"
    return f"cannot be read ({exc.filename}: {exc.strerror or exc})"


def _check_schema(
    step_id: str, step: Step, text: str, path: Path, files: DefinitionFiles
) -> list[Diagnostic]:
    found = []
    ref = parse_schema_ref(text)
    schema: dict[str, Any] | None = None
    if isinstance(ref, InlineSchema):
        schema = ref.schema
        problem = meta_schema_problem(json.dumps(json.loads(text), sort_keys=True))
        if problem is not None:
            found.append(
                diagnostic(
                    "invalid_schema",
                    f"step '{step_id}' inline schema is not a valid JSON Schema: {problem}",
                    path,
                )
            )
    else:
        try:
            content = files.read_text(ref.name)
        except PathOutsideDefinition as exc:
            found.append(_outside(f"step '{step_id}' schema {exc}", path))
        except (OSError, UnicodeDecodeError) as exc:
            found.append(
                diagnostic(
                    "schema_ref_not_found",
                    f"step '{step_id}' schema file '{ref.name}' {_unreadable(exc)}",
                    path,
                    hint="named refs resolve relative to the definition's folder; "
                    "`mobctl run` fails the step if it is still missing",
                )
            )
        else:
            try:
                loaded = json.loads(content)
            except (json.JSONDecodeError, RecursionError) as exc:
                found.append(
                    diagnostic(
                        "invalid_schema",
                        f"step '{step_id}' schema file '{ref.name}' is not JSON: {exc}",
                        path,
                    )
                )
            else:
                if not isinstance(loaded, dict):
                    found.append(
                        diagnostic(
                            "invalid_schema",
                            f"step '{step_id}' schema file '{ref.name}' is not a JSON object",
                            path,
                        )
                    )
                else:
                    schema = normalise_schema(loaded)
                    problem = meta_schema_problem(json.dumps(loaded, sort_keys=True))
                    if problem is not None:
                        found.append(
                            diagnostic(
                                "invalid_schema",
                                f"step '{step_id}' schema file '{ref.name}' is not a valid JSON "
                                f"Schema: {problem}",
                                path,
                            )
                        )
    wrapper = _aggregate_wrapper(step)
    if wrapper is not None and not _describes_wrapper(schema, wrapper):
        shape = "[{target, output}, …]" if wrapper == "array" else "{member: output}"
        found.append(
            diagnostic(
                "aggregate_schema_mismatch",
                f"step '{step_id}' schema validates the aggregate {shape}, "
                "not each member's output",
                path,
                hint=_WRAPPER_HINT,
            )
        )
    return found


def _aggregate_wrapper(step: Step) -> str | None:
    if step.dispatch_mode == "fan_in":
        return "array"
    if isinstance(step.collection_policy, AllPolicy | QuorumPolicy):
        return "object"
    return None


def _describes_wrapper(schema: dict[str, Any] | None, wrapper: str) -> bool:
    if schema is None:
        return False
    if wrapper == "array":
        return schema.get("type") == "array" and "items" in schema
    return "patternProperties" in schema or isinstance(schema.get("additionalProperties"), dict)


@cache
def meta_schema_problem(schema_json: str) -> str | None:
    """The first meta-schema error of a schema (``$schema`` honoured, default 2020-12)."""
    import jsonschema  # heavy: only when a definition has schemas

    schema = json.loads(schema_json)
    dialect = schema.get("$schema")
    if dialect is not None and not isinstance(dialect, str):
        return "$schema must be a string (the URI of a JSON Schema dialect)"
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{exc.message}" + (f" (at {where})" if where else "")
    except RecursionError:  # re.compile of a pattern whose groups nest thousands deep
        return "a pattern in the schema is nested too deeply to compile"
    outside = outside_refs(schema)
    if outside:
        return (
            f"$ref {outside[0]!r} points outside the schema; mobctl resolves only references "
            "inside it ('#...') and never fetches a file or URL"
        )
    return None
