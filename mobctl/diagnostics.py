"""Diagnostics: what validation says about a definition, as data.

A diagnostic names its place twice: ``location`` is Meerkat's dotted path (``profiles.w.model``,
``wiring.role_wiring[0].a``) and ``line``/``column`` point into the file. Rules only fill in
``path`` (the document path) and say whether they judge the key or the value; the loader turns
that into line and column with the file's source map.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

Path = tuple[str | int, ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# code -> (default severity, one-line summary). The README's table is tested against this.
CODES: dict[str, tuple[Severity, str]] = {
    # Meerkat's codes.
    "empty_profiles": (Severity.ERROR, "the definition has no profiles"),
    "missing_orchestrator_profile": (Severity.ERROR, "the orchestrator names no profile"),
    "invalid_profile_name": (Severity.ERROR, "a profile name breaks the identifier rule"),
    "reserved_system_identifier": (Severity.ERROR, "a profile name starts with __flow_"),
    "missing_skill_ref": (Severity.ERROR, "a profile lists a skill that is not defined"),
    "unknown_model": (Severity.ERROR, "a model is not catalogued, defined or provider-annotated"),
    "invalid_image_generation_provider": (
        Severity.ERROR,
        "an image generation provider is not image-capable",
    ),
    "invalid_inline_peer_notification_threshold": (
        Severity.ERROR,
        "max_inline_peer_notifications is below -1",
    ),
    "invalid_custom_model": (
        Severity.ERROR,
        "a [models.<id>] entry has provider self_hosted/other",
    ),
    "invalid_wiring_profile": (Severity.ERROR, "a role_wiring side names no profile"),
    "missing_external_backend_config": (
        Severity.ERROR,
        "the external backend is used but [backend.external] is missing",
    ),
    "invalid_external_backend_config": (
        Severity.ERROR,
        "[backend.external] has a blank or unusable address",
    ),
    "flow_unknown_role": (Severity.ERROR, "a step or the supervisor names an unknown role"),
    "topology_unknown_role": (Severity.ERROR, "a topology rule names an unknown role"),
    "flow_unknown_step": (Severity.ERROR, "a dependency or node names an unknown step"),
    "flow_cycle_detected": (Severity.ERROR, "dependencies form a cycle (or an id is reused)"),
    "flow_depth_exceeded": (Severity.ERROR, "a dependency chain or frame nesting exceeds 32"),
    "quorum_invalid": (Severity.ERROR, "quorum n = 0 or max_iterations = 0"),
    "branch_group_empty": (Severity.ERROR, "a branch group has a single step"),
    "branch_step_missing_condition": (Severity.ERROR, "a branch step has no condition"),
    "branch_step_conflicting_deps": (
        Severity.ERROR,
        "a branch step's dependencies differ from its group's first step",
    ),
    "branch_join_without_branch": (
        Severity.WARNING,
        "depends_on_mode = any but no dependency is a branch step",
    ),
    "json_output_without_schema": (
        Severity.WARNING,
        "output_format = json without expected_schema_ref",
    ),
    # mobctl's additions.
    "toml_syntax": (Severity.ERROR, "the file is not valid TOML"),
    "json_syntax": (Severity.ERROR, "the file is not valid JSON"),
    "invalid_value": (Severity.ERROR, "a missing required key, a wrong type or a bad value"),
    "unknown_key": (Severity.WARNING, "a key the schema does not know (error in closed tables)"),
    "realm_profile_mixed_keys": (
        Severity.WARNING,
        "a realm_profile reference carries other keys, which are ignored",
    ),
    "unsafe_id": (Severity.WARNING, "the mob id cannot name a store directory"),
    "deprecated_key": (Severity.WARNING, "a key of the 0.5.2 schema that newer Meerkat dropped"),
    "invalid_mcp_server": (
        Severity.ERROR,
        "an [mcp.<name>] server sets both or neither of command/url",
    ),
    "invalid_template": (
        Severity.ERROR,
        "a message template has bad syntax or a malformed reference",
    ),
    "unknown_template_ref": (
        Severity.ERROR,
        "a template or condition names a step or loop that does not exist",
    ),
    "template_ref_not_upstream": (
        Severity.WARNING,
        "a template or condition reads a step that is not upstream",
    ),
    "schema_ref_not_found": (Severity.WARNING, "an expected_schema_ref file is missing"),
    "invalid_schema": (Severity.ERROR, "a schema is not a valid JSON Schema object"),
    "aggregate_schema_mismatch": (
        Severity.WARNING,
        "the schema will see a {member: output} or [{target, output}] wrapper",
    ),
    "skill_path_not_found": (
        Severity.WARNING,
        "a source = path skill file is missing or not UTF-8",
    ),
    "path_outside_definition": (
        Severity.ERROR,
        "a path skill or schema file resolves outside the definition's directory",
    ),
    "unreachable_step": (
        Severity.WARNING,
        "a step needs two steps of one branch group: always skipped",
    ),
    "tool_overlay_autonomous": (
        Severity.WARNING,
        "a tool overlay on an autonomous_host role is rejected at run time",
    ),
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    location: str | None
    path: Path = ()
    point: Literal["key", "value", "missing"] = "value"
    offset: int | None = None  # index into the string value (templates)
    file: str | None = None
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    suggestion: str | None = None
    hint: str | None = None

    def as_error(self) -> Diagnostic:
        return replace(self, severity=Severity.ERROR)


def dotted(path: Path) -> str:
    """Meerkat's location string: keys joined with dots, indices as ``[i]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def diagnostic(
    code: str,
    message: str,
    path: Path,
    *,
    point: Literal["key", "value", "missing"] = "value",
    location: str | None = None,
    offset: int | None = None,
    suggestion: str | None = None,
    hint: str | None = None,
    severity: Severity | None = None,
) -> Diagnostic:
    """A diagnostic at ``path`` with the code's default severity."""
    return Diagnostic(
        code=code,
        severity=severity or CODES[code][0],
        message=message,
        location=dotted(path) if location is None else location,
        path=path,
        point=point,
        offset=offset,
        suggestion=suggestion,
        hint=hint,
    )
