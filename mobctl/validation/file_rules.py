"""Checks that read files beside the definition: schemas and path skills (schema §8.2, §8.4)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path as FsPath
from typing import Any

from mobctl.definition.model import AllPolicy, MobDefinition, PathSkill, QuorumPolicy, Step
from mobctl.definition.schemas import InlineSchema, normalise_schema, parse_schema_ref
from mobctl.diagnostics import Diagnostic, Path, diagnostic

_WRAPPER_HINT = (
    'use collection_policy = { type = "any" } with dispatch_mode = "one_to_one" to validate '
    "the bare output"
)


def check_files(definition: MobDefinition, base_dir: FsPath) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for name, skill in definition.skills.items():
        if isinstance(skill, PathSkill):
            problem = _unreadable_text(_resolve(skill.path, base_dir))
            if problem is not None:
                found.append(
                    diagnostic(
                        "skill_path_not_found",
                        f"skill '{name}' file '{skill.path}' {problem}",
                        ("skills", name, "path"),
                        hint=f"paths resolve relative to the definition's folder ({base_dir})",
                    )
                )
    for flow_id, flow in definition.flows.items():
        for step_id, step in flow.steps.items():
            if step.expected_schema_ref is not None:
                path = ("flows", flow_id, "steps", step_id, "expected_schema_ref")
                found += _check_schema(step_id, step, step.expected_schema_ref, path, base_dir)
    return found


def _resolve(name: str, base_dir: FsPath) -> FsPath:
    path = FsPath(name)
    return path if path.is_absolute() else base_dir / path


def _unreadable_text(path: FsPath) -> str | None:
    try:
        path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return f"does not exist ({path})"
    except UnicodeDecodeError:
        return f"is not UTF-8 text ({path})"
    except OSError as exc:
        return f"cannot be read ({path}: {exc.strerror or exc})"
    return None


def _check_schema(
    step_id: str, step: Step, text: str, path: Path, base_dir: FsPath
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
        file = ref.resolve(base_dir)
        try:
            content = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "does not exist" if isinstance(exc, FileNotFoundError) else "cannot be read"
            found.append(
                diagnostic(
                    "schema_ref_not_found",
                    f"step '{step_id}' schema file '{ref.name}' {reason} ({file})",
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
    return None
