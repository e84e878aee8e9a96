"""Meerkat's JSON form, read exactly: one case per field of every model class.

``tests/data/meerkat/`` holds definitions in the JSON form as Meerkat's serde writes them,
derived field by field from the serde attributes (docs/meerkat-json-audit.md): ``null`` for an
unset ``Option``, nothing for a field with ``skip_serializing_if``, every default written.
Beside each HEAD (meerkat-mob c7b8518b4) document is the TOML that Meerkat parses into the same
``MobDefinition``:

- ``upstream-*``: the TOML of meerkat-mob's own round-trip tests (verbatim), and the JSON those
  tests serialise it to (``test_flow_and_topology_roundtrip``, ``example_toml``,
  ``test_mob_definition_from_toml_parses_models_and_image_provider``);
- ``all-fields``, ``spawn-none``: the fields those tests leave out;
- ``mobpack``: a HEAD definition from a mobpack (``source_identity``, JSON only);
- ``meerkat-0.5.2-*``, ``meerkat-0.6.34-implicit``: what those versions wrote (the seed's
  ``example_toml``; ``MobDefinition::implicit``), with the fields HEAD dropped.

Each case checks that the JSON loads with the exact value and the exact diagnostics at that
field, that mobctl's JSON form writes the field back as Meerkat wrote it, and that the JSON form
of the TOML equivalent holds the same (present, absent or null), so nothing is invented.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mobctl.definition import model as m
from mobctl.definition.loader import load_text
from mobctl.definition.serialize import to_json_form
from mobctl.diagnostics import dotted
from mobctl.engine.config import flow_digest
from mobctl.validation.catalog import bundled_catalog
from mobctl.validation.validate import Report, validate_bytes, validate_path
from tests.conftest import REPO, cli
from tests.helpers import diagnose, messages

DATA = Path(__file__).resolve().parents[1] / "data" / "meerkat"
AUDIT = REPO / "docs" / "meerkat-json-audit.md"
ABSENT = object()


@functools.cache
def report(name: str, fmt: str = "json") -> Report:
    return validate_path(DATA / f"{name}.{fmt}", bundled_catalog())


@functools.cache
def meerkat(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text("utf-8"))


def json_at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        if not ((isinstance(document, dict) and part in document) or isinstance(document, list)):
            return ABSENT
        document = document[part]
    return document


def model_at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = getattr(value, part) if isinstance(value, BaseModel) else value[part]
    return value


def model_path(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The JSON form keeps id/orchestrator on top and names the 0.5.2 servers mcp_servers."""
    if path[0] in ("id", "orchestrator"):
        return ("mob", *path)
    if path[0] == "mcp_servers":
        return ("mcp", *path[1:])
    return path


@dataclass(frozen=True)
class Case:
    field: str  # Class.field
    doc: str
    path: tuple[str | int, ...]  # in the JSON form; () for the reshaped [mob] table
    value: Any  # the loaded value; a type: any instance of it
    diagnostics: tuple[tuple[str, str, str | None], ...] = ()


def deprecated(message: str, hint: str) -> tuple[tuple[str, str, str | None], ...]:
    return (("deprecated_key", message, hint),)


FLOW = ("flows", "pipeline")
STEP = (*FLOW, "steps")
LEAD = ("profiles", "lead")
TOOLS = (*LEAD, "tools")
PARAMS = (*LEAD, "provider_params")
STDIO = (*TOOLS, "mcp_servers", 0)
HTTP = (*TOOLS, "mcp_servers", 1)
MODEL = ("models", "claude-internal-preview")
BRIDGE = ("backend", "external", "supervisor_bridge")
ASK = ("flows", "main", "steps", "ask")
COND = (*ASK, "condition")
BLOCKS = (*ASK, "message")
NODES = ("flows", "main", "root", "nodes")
LOOP = (*NODES, "rounds")
OLD_LEAD = ("profiles", "lead", "tools")
SERVER = ("mcp_servers", "code-server")
UP, CR, CM = "upstream-flow-and-topology", "upstream-code-review", "upstream-custom-models"
ALL, V052, V06 = "all-fields", "meerkat-0.5.2-code-review", "meerkat-0.6.34-implicit"
UUID = "00000000-0000-4b11-8111-000000000002"

CASES = [
    Case("McpServer.command", V052, (*SERVER, "command"), ["npx", "-y", "@mcp/code-server"]),
    Case("McpServer.url", V052, (*SERVER, "url"), None),
    Case("McpServer.env", V052, (*SERVER, "env"), {}),
    Case("McpStdioServer.name", ALL, (*STDIO, "name"), "files"),
    Case("McpStdioServer.command", ALL, (*STDIO, "command"), "mcp-files"),
    Case("McpStdioServer.args", ALL, (*STDIO, "args"), ["--root", "."]),
    Case("McpStdioServer.env", ALL, (*STDIO, "env"), {"LOG": "1"}),
    Case("McpStdioServer.connect_timeout_secs", ALL, (*STDIO, "connect_timeout_secs"), 5),
    Case("McpHttpServer.name", ALL, (*HTTP, "name"), "search"),
    Case("McpHttpServer.url", ALL, (*HTTP, "url"), "https://search.example.com/mcp"),
    Case("McpHttpServer.headers", ALL, (*HTTP, "headers"), {"X-Team": "docs"}),
    Case("McpHttpServer.transport", ALL, (*HTTP, "transport"), None),
    Case("McpHttpServer.connect_timeout_secs", ALL, (*HTTP, "connect_timeout_secs"), None),
    Case("ToolConfig.builtins", ALL, (*TOOLS, "builtins"), True),
    Case("ToolConfig.shell", ALL, (*TOOLS, "shell"), True),
    Case("ToolConfig.comms", ALL, (*TOOLS, "comms"), True),
    Case("ToolConfig.memory", ALL, (*TOOLS, "memory"), True),
    Case("ToolConfig.workgraph", ALL, (*TOOLS, "workgraph"), True),
    Case("ToolConfig.mob", ALL, (*TOOLS, "mob"), True),
    Case("ToolConfig.schedule", ALL, (*TOOLS, "schedule"), True),
    Case("ToolConfig.image_generation", ALL, (*TOOLS, "image_generation"), True),
    Case("ToolConfig.read_only", ALL, (*TOOLS, "read_only"), True),
    Case("ToolConfig.mcp", ALL, (*TOOLS, "mcp"), ["host-search"]),
    Case("ToolConfig.rust_bundles", ALL, (*TOOLS, "rust_bundles"), ["bundle-a"]),
    Case("ToolConfig.mcp_servers", ALL, (*TOOLS, "mcp_servers"), list),
    Case(
        "ToolConfig.mob_tasks",
        V052,
        (*OLD_LEAD, "mob_tasks"),
        True,
        deprecated(
            "'mob_tasks' is a meerkat-mob 0.5.x tool flag",
            "removed after meerkat-mob 0.5.x; has no effect",
        ),
    ),
    Case("ProviderTag.provider", ALL, (*PARAMS, "provider_tag", "provider"), "anthropic"),
    Case("ProviderParams.temperature", ALL, (*PARAMS, "temperature"), 0.5),
    Case("ProviderParams.top_p", ALL, (*PARAMS, "top_p"), 0.25),
    Case("ProviderParams.max_output_tokens", ALL, (*PARAMS, "max_output_tokens"), 4096),
    Case("ProviderParams.reasoning", ALL, (*PARAMS, "reasoning"), "silent"),
    Case("ProviderParams.thinking_budget_tokens", ALL, (*PARAMS, "thinking_budget_tokens"), 2048),
    Case("ProviderParams.provider_tag", ALL, (*PARAMS, "provider_tag"), m.ProviderTag),
    Case("InlineProfile.model", ALL, (*LEAD, "model"), "house-model"),
    Case("InlineProfile.provider", UP, ("profiles", "lead", "provider"), None),
    Case("InlineProfile.self_hosted_server_id", ALL, (*LEAD, "self_hosted_server_id"), "gpu-1"),
    Case(
        "InlineProfile.image_generation_provider",
        ALL,
        (*LEAD, "image_generation_provider"),
        "gemini",
    ),
    Case("InlineProfile.auto_compact_threshold", ALL, (*LEAD, "auto_compact_threshold"), 120000),
    Case(
        "InlineProfile.resume_overrides",
        ALL,
        (*LEAD, "resume_overrides"),
        ["model", "provider_params"],
    ),
    Case("InlineProfile.skills", ALL, (*LEAD, "skills"), ["style"]),
    Case("InlineProfile.tools", ALL, (*LEAD, "tools"), m.ToolConfig),
    Case("InlineProfile.peer_description", ALL, (*LEAD, "peer_description"), "Leads the work"),
    Case("InlineProfile.external_addressable", ALL, (*LEAD, "external_addressable"), True),
    Case("InlineProfile.backend", ALL, (*LEAD, "backend"), "session"),
    Case("InlineProfile.runtime_mode", ALL, (*LEAD, "runtime_mode"), "turn_driven"),
    Case(
        "InlineProfile.max_inline_peer_notifications",
        ALL,
        (*LEAD, "max_inline_peer_notifications"),
        -1,
    ),
    Case(
        "InlineProfile.output_schema",
        ALL,
        (*LEAD, "output_schema"),
        {"type": "object", "properties": {"answer": {"type": "string"}}, "required": []},
    ),
    Case("InlineProfile.provider_params", UP, ("profiles", "worker", "provider_params"), None),
    Case(
        "RealmProfileRef.realm_profile",
        ALL,
        ("profiles", "writer", "realm_profile"),
        "house-writer",
    ),
    Case("ModelDefinition.provider", CM, (*MODEL, "provider"), "anthropic"),
    Case("ModelDefinition.display_name", CM, (*MODEL, "display_name"), "Claude Internal Preview"),
    Case("ModelDefinition.context_window", CM, (*MODEL, "context_window"), 500000),
    Case("ModelDefinition.max_output_tokens", CM, (*MODEL, "max_output_tokens"), 16384),
    Case("ModelDefinition.vision", CM, (*MODEL, "vision"), True),
    Case("ModelDefinition.web_search", CM, (*MODEL, "web_search"), None),
    Case("ModelDefinition.call_timeout_secs", CM, (*MODEL, "call_timeout_secs"), 900),
    Case("InlineSkill.source", CR, ("skills", "orchestrator-skill", "source"), "inline"),
    Case(
        "InlineSkill.content",
        CR,
        ("skills", "orchestrator-skill", "content"),
        "You are the lead code reviewer.",
    ),
    Case("PathSkill.source", CR, ("skills", "reviewer-skill", "source"), "path"),
    Case("PathSkill.path", CR, ("skills", "reviewer-skill", "path"), "skills/reviewer.md"),
    Case("RoleWiring.a", CR, ("wiring", "role_wiring", 0, "a"), "reviewer"),
    Case("RoleWiring.b", CR, ("wiring", "role_wiring", 0, "b"), "reviewer"),
    Case("Wiring.auto_wire_orchestrator", CR, ("wiring", "auto_wire_orchestrator"), True),
    Case("Wiring.role_wiring", CR, ("wiring", "role_wiring"), list),
    Case("SupervisorBridge.bind_address", ALL, (*BRIDGE, "bind_address"), "127.0.0.1:42000"),
    Case(
        "SupervisorBridge.advertised_address",
        ALL,
        (*BRIDGE, "advertised_address"),
        "tcp://supervisor.example.com:42000",
    ),
    Case(
        "ExternalBackend.address_base",
        ALL,
        ("backend", "external", "address_base"),
        "tcp://mesh.example.com",
    ),
    Case("ExternalBackend.supervisor_bridge", ALL, BRIDGE, m.SupervisorBridge),
    Case("Backend.default", ALL, ("backend", "default"), "external"),
    Case("Backend.external", UP, ("backend", "external"), None),
    Case("EqCondition.op", UP, (*STEP, "branch_a", "condition", "op"), "eq"),
    Case("EqCondition.path", UP, (*STEP, "branch_a", "condition", "path"), "params.choice"),
    Case("EqCondition.value", UP, (*STEP, "branch_a", "condition", "value"), "a"),
    Case("InCondition.op", ALL, (*COND, "exprs", 0, "op"), "in"),
    Case("InCondition.path", ALL, (*COND, "exprs", 0, "path"), "params.env"),
    Case("InCondition.values", ALL, (*COND, "exprs", 0, "values"), ["dev", "prod"]),
    Case("GtCondition.op", ALL, (*COND, "exprs", 1, "exprs", 0, "op"), "gt"),
    Case("GtCondition.path", ALL, (*COND, "exprs", 1, "exprs", 0, "path"), "params.n"),
    Case("GtCondition.value", ALL, (*COND, "exprs", 1, "exprs", 0, "value"), 1),
    Case("LtCondition.op", ALL, (*COND, "exprs", 1, "exprs", 1, "op"), "lt"),
    Case("LtCondition.path", ALL, (*COND, "exprs", 1, "exprs", 1, "path"), "params.n"),
    Case("LtCondition.value", ALL, (*COND, "exprs", 1, "exprs", 1, "value"), -1),
    Case("AndCondition.op", ALL, (*COND, "op"), "and"),
    Case("AndCondition.exprs", ALL, (*COND, "exprs"), list),
    Case("OrCondition.op", ALL, (*COND, "exprs", 1, "op"), "or"),
    Case("OrCondition.exprs", ALL, (*COND, "exprs", 1, "exprs"), list),
    Case("NotCondition.op", ALL, (*COND, "exprs", 2, "op"), "not"),
    Case("NotCondition.expr", ALL, (*COND, "exprs", 2, "expr"), m.EqCondition),
    Case("AllPolicy.type", UP, (*STEP, "start", "collection_policy", "type"), "all"),
    Case("AnyPolicy.type", ALL, (*ASK, "collection_policy", "type"), "any"),
    Case("QuorumPolicy.type", UP, (*STEP, "join", "collection_policy", "type"), "quorum"),
    Case("QuorumPolicy.n", UP, (*STEP, "join", "collection_policy", "n"), 1),
    Case("TextBlock.type", ALL, (*BLOCKS, 0, "type"), "text"),
    Case("TextBlock.text", ALL, (*BLOCKS, 0, "text"), "Hello {{ params.topic }}"),
    Case("ImageBlock.type", ALL, (*BLOCKS, 1, "type"), "image"),
    Case("ImageBlock.media_type", ALL, (*BLOCKS, 1, "media_type"), "image/png"),
    Case("ImageBlock.source", ALL, (*BLOCKS, 1, "source"), "inline"),
    Case("ImageBlock.data", ALL, (*BLOCKS, 1, "data"), "iVBORw0KGgo="),
    Case("ImageBlock.blob_id", ALL, (*BLOCKS, 2, "blob_id"), "blob-1"),
    Case("VideoBlock.type", ALL, (*BLOCKS, 3, "type"), "video"),
    Case("VideoBlock.media_type", ALL, (*BLOCKS, 3, "media_type"), "video/mp4"),
    Case("VideoBlock.duration_ms", ALL, (*BLOCKS, 4, "duration_ms"), 0),
    Case("VideoBlock.source", ALL, (*BLOCKS, 4, "source"), "uri"),
    Case("VideoBlock.data", ALL, (*BLOCKS, 3, "data"), "AAAA"),
    Case("VideoBlock.uri", ALL, (*BLOCKS, 4, "uri"), "gs://b/v.mp4"),
    Case("StructuredBlock.type", ALL, (*BLOCKS, 5, "type"), "structured"),
    Case("StructuredBlock.data", ALL, (*BLOCKS, 5, "data"), {"k": [1, 2]}),
    Case("SkillKey.source_uuid", ALL, (*BLOCKS, 6, "skill_key", "source_uuid"), UUID),
    Case("SkillKey.skill_name", ALL, (*BLOCKS, 6, "skill_key", "skill_name"), "house-style"),
    Case("SkillContextBlock.type", ALL, (*BLOCKS, 6, "type"), "skill_context"),
    Case("SkillContextBlock.skill_key", ALL, (*BLOCKS, 6, "skill_key"), m.SkillKey),
    Case("SkillContextBlock.text", ALL, (*BLOCKS, 6, "text"), "Be brief."),
    Case("Step.role", UP, (*STEP, "start", "role"), "lead"),
    Case("Step.message", UP, (*STEP, "start", "message"), "go"),
    Case("Step.depends_on", UP, (*STEP, "join", "depends_on"), ["branch_a", "branch_b"]),
    Case("Step.depends_on_mode", UP, (*STEP, "join", "depends_on_mode"), "any"),
    Case("Step.dispatch_mode", UP, (*STEP, "start", "dispatch_mode"), "one_to_one"),
    Case("Step.collection_policy", UP, (*STEP, "join", "collection_policy"), m.QuorumPolicy),
    Case("Step.condition", UP, (*STEP, "start", "condition"), None),
    Case("Step.timeout_ms", UP, (*STEP, "start", "timeout_ms"), None),
    Case(
        "Step.expected_schema_ref",
        ALL,
        (*ASK, "expected_schema_ref"),
        '{"properties":{"answer":{"type":"string"}},"required":[],"type":"object"}',
    ),
    Case("Step.branch", UP, (*STEP, "branch_a", "branch"), "choose"),
    Case("Step.allowed_tools", UP, (*STEP, "start", "allowed_tools"), None),
    Case("Step.blocked_tools", ALL, (*ASK, "blocked_tools"), ["shell"]),
    Case("Step.failure_policy", ALL, (*ASK, "failure_policy"), "continue"),
    Case("Step.output_format", UP, (*STEP, "start", "output_format"), None),
    Case("StepNode.kind", ALL, (*NODES, "ask", "kind"), "step"),
    Case("StepNode.step_id", ALL, (*NODES, "ask", "step_id"), "ask"),
    Case("StepNode.depends_on", ALL, (*NODES, "ask", "depends_on"), []),
    Case("StepNode.depends_on_mode", ALL, (*NODES, "ask", "depends_on_mode"), "all"),
    Case("StepNode.branch", ALL, (*NODES, "ask", "branch"), None),
    Case("StepNode.failure_policy", ALL, (*NODES, "ask", "failure_policy"), "continue"),
    Case("RepeatUntilNode.kind", ALL, (*LOOP, "kind"), "repeat_until"),
    Case("RepeatUntilNode.loop_id", ALL, (*LOOP, "loop_id"), "rounds"),
    Case("RepeatUntilNode.depends_on", ALL, (*LOOP, "depends_on"), ["ask"]),
    Case("RepeatUntilNode.depends_on_mode", ALL, (*LOOP, "depends_on_mode"), "any"),
    Case("RepeatUntilNode.body", ALL, (*LOOP, "body"), m.Frame),
    Case("RepeatUntilNode.until", ALL, (*LOOP, "until"), m.EqCondition),
    Case("RepeatUntilNode.max_iterations", ALL, (*LOOP, "max_iterations"), 3),
    Case("RepeatUntilNode.failure_policy", ALL, (*LOOP, "failure_policy"), "escalate"),
    Case("Frame.nodes", ALL, NODES, dict),
    Case("Flow.description", ALL, ("flows", "main", "description"), None),
    Case("Flow.steps", UP, (*FLOW, "steps"), dict),
    Case("Flow.root", UP, (*FLOW, "root"), None),  # the synthesised root: flat steps
    Case("TopologyRule.from_role", UP, ("topology", "rules", 0, "from_role"), "lead"),
    Case("TopologyRule.to_role", UP, ("topology", "rules", 0, "to_role"), "worker"),
    Case("TopologyRule.allowed", UP, ("topology", "rules", 0, "allowed"), True),
    Case("Topology.mode", UP, ("topology", "mode"), "strict"),
    Case("Topology.rules", UP, ("topology", "rules"), list),
    Case("Supervisor.role", UP, ("supervisor", "role"), "lead"),
    Case("Supervisor.escalation_threshold", UP, ("supervisor", "escalation_threshold"), 2),
    Case(
        "Supervisor.escalation_turn_timeout_ms",
        UP,
        ("supervisor", "escalation_turn_timeout_ms"),
        None,
    ),
    Case("Limits.max_flow_duration_ms", UP, ("limits", "max_flow_duration_ms"), 30000),
    Case("Limits.max_step_retries", UP, ("limits", "max_step_retries"), 1),
    Case("Limits.max_orphaned_turns", UP, ("limits", "max_orphaned_turns"), 8),
    Case("Limits.cancel_grace_timeout_ms", UP, ("limits", "cancel_grace_timeout_ms"), None),
    Case("Limits.max_active_nodes", UP, ("limits", "max_active_nodes"), None),
    Case("Limits.max_active_frames", UP, ("limits", "max_active_frames"), None),
    Case("Limits.max_frame_depth", UP, ("limits", "max_frame_depth"), None),
    Case("NoSpawnPolicy.mode", "spawn-none", ("spawn_policy", "mode"), "none"),
    Case("AutoSpawnPolicy.mode", ALL, ("spawn_policy", "mode"), "auto"),
    Case("AutoSpawnPolicy.profile_map", ALL, ("spawn_policy", "profile_map"), {"reviewer": "lead"}),
    Case("EventRouter.buffer_size", ALL, ("event_router", "buffer_size"), 128),
    Case("EventRouter.include_patterns", ALL, ("event_router", "include_patterns"), None),
    Case("EventRouter.exclude_patterns", ALL, ("event_router", "exclude_patterns"), None),
    Case("Orchestrator.profile", CR, ("orchestrator", "profile"), "lead"),
    Case("MobSection.id", CR, ("id",), "code-review"),
    Case("MobSection.orchestrator", UP, ("orchestrator",), None),
    Case("SourceIdentity.kind", "mobpack", ("source_identity", "kind"), "mobpack"),
    Case(
        "SourceIdentity.digest",
        "mobpack",
        ("source_identity", "digest"),
        "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    ),
    Case(
        "SourceIdentity.trust_warnings",
        "mobpack",
        ("source_identity", "trust_warnings"),
        ["unsigned pack"],
    ),
    Case("MobDefinition.image_generation_provider", CM, ("image_generation_provider",), "gemini"),
    Case("MobDefinition.mob", CR, (), m.MobSection),
    Case("MobDefinition.profiles", CR, ("profiles",), dict),
    Case("MobDefinition.models", UP, ("models",), {}),
    Case("MobDefinition.skills", CR, ("skills",), dict),
    Case("MobDefinition.wiring", CR, ("wiring",), m.Wiring),
    Case("MobDefinition.backend", UP, ("backend",), m.Backend),
    Case("MobDefinition.flows", UP, ("flows",), dict),
    Case("MobDefinition.topology", UP, ("topology",), m.Topology),
    Case("MobDefinition.supervisor", UP, ("supervisor",), m.Supervisor),
    Case("MobDefinition.limits", UP, ("limits",), m.Limits),
    Case("MobDefinition.spawn_policy", UP, ("spawn_policy",), None),
    Case("MobDefinition.event_router", UP, ("event_router",), None),
    Case(
        "MobDefinition.mcp",
        V052,
        ("mcp_servers",),
        dict,
        deprecated(
            "top-level MCP servers are a meerkat-mob 0.5.x feature",
            "newer Meerkat uses profiles.<p>.tools.mcp_servers",
        ),
    ),
    Case("MobDefinition.source_identity", "mobpack", ("source_identity",), m.SourceIdentity),
    Case(
        "MobDefinition.owner_session_id",
        "meerkat-0.5.2-implicit",
        ("owner_session_id",),
        "s-1",
        deprecated(
            "'owner_session_id' is a meerkat-mob 0.5.x field",
            "renamed owner_bridge_session_id in meerkat-mob 0.6.0, removed in 0.7.0; has no effect",
        ),
    ),
    Case(
        "MobDefinition.owner_bridge_session_id",
        V06,
        ("owner_bridge_session_id",),
        "019dbd3d-d7ad-75a1-96d0-8013927e78f8",
        deprecated(
            "'owner_bridge_session_id' is a meerkat-mob 0.6.x field",
            "a MobDefinition field from meerkat-mob 0.6.0 until 0.7.0; has no effect",
        ),
    ),
    Case(
        "MobDefinition.session_cleanup_policy",
        V06,
        ("session_cleanup_policy",),
        "destroy_on_owner_archive",
        deprecated(
            "'session_cleanup_policy' is a meerkat-mob 0.5.x and 0.6.x field",
            "removed in meerkat-mob 0.7.0; has no effect",
        ),
    ),
    Case(
        "MobDefinition.is_implicit",
        V052,
        ("is_implicit",),
        False,
        deprecated(
            "'is_implicit' is a meerkat-mob 0.5.x and 0.6.x field",
            "removed in meerkat-mob 0.7.0; has no effect",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.field for case in CASES])
def test_field_reads_and_writes_as_meerkat_does(case: Case) -> None:
    loaded = report(case.doc)
    assert loaded.definition is not None, loaded.diagnostics
    where = {dotted(model_path(case.path)) if case.path else "mob", dotted(case.path)}
    found = [(d.code, d.message, d.hint) for d in loaded.diagnostics if d.location in where]
    assert found == list(case.diagnostics)
    value = model_at(loaded.definition, model_path(case.path) if case.path else ("mob",))
    if isinstance(case.value, type):
        assert isinstance(value, case.value)
    else:
        assert value == case.value and type(value) is type(case.value)
    if not case.path:
        return  # [mob] has no key of its own in the JSON form
    written = json_at(meerkat(case.doc), case.path)
    assert json_at(to_json_form(loaded.definition), case.path) == written
    toml = DATA / f"{case.doc}.toml"
    if toml.exists() and case.path[0] not in m.JSON_ONLY_KEYS:
        from_toml = report(case.doc, "toml").definition
        assert from_toml is not None
        assert json_at(to_json_form(from_toml), case.path) == written


def test_every_field_of_every_model_class_has_a_case_and_an_audit_row() -> None:
    fields = sorted(
        f"{cls.__name__}.{name}"
        for cls in vars(m).values()
        if inspect.isclass(cls)
        and issubclass(cls, m.Table)
        and cls.__module__ == m.__name__
        and cls not in (m.Table, m.ClosedTable)
        for name in cls.model_fields
    )
    assert sorted(case.field for case in CASES) == fields
    rows = re.findall(r"^\| `([A-Z]\w*\.\w+)` \|", AUDIT.read_text("utf-8"), re.M)
    assert sorted(rows) == fields


HEAD_DOCUMENTS = [UP, CR, CM, ALL, "spawn-none", "mobpack"]


@pytest.mark.parametrize("name", HEAD_DOCUMENTS)
def test_the_json_form_is_exactly_what_meerkat_writes(name: str) -> None:
    loaded = report(name)
    assert loaded.definition is not None
    assert to_json_form(loaded.definition) == meerkat(name)
    if (DATA / f"{name}.toml").exists():
        from_toml = report(name, "toml").definition
        assert from_toml is not None
        assert to_json_form(from_toml) == meerkat(name)


def test_documents_load_with_exactly_these_diagnostics() -> None:
    def listed(name: str, fmt: str = "json") -> list[str]:
        return [f"{d.code} {d.location}" for d in report(name, fmt).diagnostics]

    mismatch = "aggregate_schema_mismatch flows.pipeline.steps.join.expected_schema_ref"
    assert listed(UP) == listed(UP, "toml") == [mismatch]
    for name in (CR, CM, ALL, "spawn-none", "mobpack"):
        assert listed(name) == [], name
    old_tools = [f"deprecated_key profiles.{p}.tools.mob_tasks" for p in ("lead", "reviewer")]
    assert listed(V052) == [*old_tools, "deprecated_key mcp_servers", "deprecated_key is_implicit"]
    assert listed("meerkat-0.5.2-implicit") == [
        "deprecated_key profiles.delegate.tools.mob_tasks",
        "deprecated_key mcp_servers",
        "deprecated_key owner_session_id",
        "deprecated_key session_cleanup_policy",
        "deprecated_key is_implicit",
    ]
    assert listed(V06) == [
        "deprecated_key owner_bridge_session_id",
        "deprecated_key session_cleanup_policy",
        "deprecated_key is_implicit",
    ]


def test_convert_writes_the_upstream_round_trip_output_and_invents_nothing() -> None:
    def convert(name: str) -> Any:
        result = cli("convert", DATA / f"{name}.toml", "--to", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    written = convert(UP)
    assert written == meerkat(UP)
    assert written["supervisor"]["escalation_turn_timeout_ms"] is None  # not 2000
    assert written["limits"]["cancel_grace_timeout_ms"] is None  # not 5000
    written = convert(ALL)
    assert written == meerkat(ALL)
    assert written["event_router"] == {"buffer_size": 128}  # no [] patterns: route all
    assert written["profiles"]["lead"]["tools"]["mcp_servers"][1]["transport"] is None


# --- what Meerkat rejects, and the shapes mobctl used to get wrong ---------------------------

HEAD = {"id": "x", "profiles": {"w": {"model": "claude-opus-4-8"}}}


def with_step(**step: Any) -> str:
    document = HEAD | {"flows": {"f": {"steps": {"s": {"role": "w", **step}}}}}
    return json.dumps(document)


def blocks(*items: dict[str, Any]) -> str:
    return with_step(message=list(items))


def skill_context(skill_key: Any) -> str:
    return blocks({"type": "skill_context", "skill_key": skill_key, "text": "t"})


def test_skill_key_is_a_struct_never_a_string() -> None:
    assert diagnose(skill_context("house-style"), fmt="json") == [
        "invalid_value flows.f.steps.s.message[0].skill_key 1:158"
    ]
    assert messages(skill_context("house-style"), fmt="json") == [
        "expected a table with source_uuid and skill_name, found a string (Meerkat's skill_key "
        "has no string form)"
    ]
    bad = {"source_uuid": "builtin", "skill_name": "House_Style"}
    assert messages(skill_context(bad), fmt="json") == [
        "invalid source_uuid: expected a UUID such as 00000000-0000-4b11-8111-000000000002",
        "invalid skill_name: expected a lowercase slug (a-z, 0-9 and single '-' inside)",
    ]
    for name in ("-a", "a-", "a--b", ""):
        assert messages(skill_context({"source_uuid": UUID, "skill_name": name}), fmt="json") == [
            "invalid skill_name: expected a lowercase slug (a-z, 0-9 and single '-' inside)"
        ]


@pytest.mark.parametrize(
    "spelling",
    [UUID.upper(), UUID.replace("-", ""), "{" + UUID + "}", "urn:uuid:" + UUID],
    ids=["upper", "simple", "braced", "urn"],
)
def test_source_uuid_reads_every_spelling_meerkat_reads_and_writes_it_hyphenated(
    spelling: str,
) -> None:
    text = skill_context({"source_uuid": spelling, "skill_name": "x"})
    loaded = load_text(text, "json", "x", DATA)
    assert loaded.diagnostics == [] and loaded.definition is not None
    form = to_json_form(loaded.definition)
    assert form["flows"]["f"]["steps"]["s"]["message"][0]["skill_key"]["source_uuid"] == UUID


def test_a_video_block_needs_its_duration() -> None:
    video = {"type": "video", "media_type": "video/mp4", "source": "uri", "uri": "gs://b/v"}
    assert messages(blocks(video), fmt="json") == ["missing required key 'duration_ms'"]
    assert messages(blocks(video | {"duration_ms": None}), fmt="json") == [
        "expected an integer, found null"
    ]


def test_a_node_failure_policy_may_be_absent_but_not_null(tmp_path: Path) -> None:
    node = {"kind": "step", "step_id": "s", "depends_on": [], "depends_on_mode": "all"}
    document = HEAD | {
        "flows": {
            "f": {
                "steps": {"s": {"role": "w", "message": "m"}},
                "root": {"nodes": {"s": node | {"failure_policy": None}}},
            }
        }
    }
    assert messages(json.dumps(document), fmt="json") == [
        "invalid value null for 'failure_policy': expected 'escalate' or 'continue'"
    ]
    # absent: Meerkat's default, written out as Meerkat writes it (nodes out of step order, so
    # the root is an authored one, not the synthesised one)
    text = '[mob]\nid = "x"\n[profiles.w]\nmodel = "claude-opus-4-8"\n'
    text += '[flows.f.steps.a]\nrole = "w"\nmessage = "m"\n[flows.f.steps.b]\nrole = "w"\n'
    text += 'message = "m"\n[flows.f.root.nodes.b]\nkind = "step"\nstep_id = "b"\n'
    text += 'depends_on = []\ndepends_on_mode = "all"\n[flows.f.root.nodes.a]\nkind = "step"\n'
    text += 'step_id = "a"\ndepends_on = ["b"]\ndepends_on_mode = "all"\n'
    path = tmp_path / "nodes.toml"
    path.write_text(text)
    result = cli("convert", path, "--to", "json")
    assert result.exit_code == 0, result.stderr
    nodes = json.loads(result.stdout)["flows"]["f"]["root"]["nodes"]
    assert [node["failure_policy"] for node in nodes.values()] == ["escalate", "escalate"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("depends_on", "expected an array, found null"),
        ("collection_policy", "expected a table, found null"),
        (
            "dispatch_mode",
            "invalid value null for 'dispatch_mode': expected 'fan_out', 'one_to_one' or 'fan_in'",
        ),
        (
            "failure_policy",
            "invalid value null for 'failure_policy': expected 'escalate' or 'continue'",
        ),
    ],
)
def test_fields_with_a_serde_default_reject_null(key: str, message: str) -> None:
    text = with_step(message="m", **{key: None})
    assert [row.split()[:2] for row in diagnose(text, fmt="json")] == [
        ["invalid_value", f"flows.f.steps.s.{key}"]
    ]
    assert messages(text, fmt="json") == [message]


def test_an_empty_include_list_is_not_an_absent_one() -> None:
    document = HEAD | {"event_router": {"buffer_size": 1, "include_patterns": []}}
    loaded = load_text(json.dumps(document), "json", "x", DATA)
    assert loaded.definition is not None and loaded.definition.event_router is not None
    assert loaded.definition.event_router.include_patterns == []
    assert to_json_form(loaded.definition)["event_router"] == {
        "buffer_size": 1,
        "include_patterns": [],
    }


def test_source_identity_has_meerkats_shape() -> None:
    document = HEAD | {"source_identity": {"kind": "git", "digest": "d", "extra": 1}}
    assert diagnose(json.dumps(document), fmt="json") == [
        "invalid_value source_identity.kind 1:90",
        "unknown_key source_identity.extra 1:112",
    ]
    # In TOML it is one unknown key, not a shape to check.
    toml = '[mob]\nid = "x"\n[profiles.w]\nmodel = "claude-opus-4-8"\n[source_identity]\nkind = 1\n'
    assert diagnose(toml) == ["unknown_key source_identity 5:1"]


def test_legacy_json_keys_in_toml_are_unknown_keys_with_a_hint() -> None:
    text = (
        'owner_bridge_session_id = "s"\n[mob]\nid = "x"\n[profiles.w]\nmodel = "claude-opus-4-8"\n'
    )
    found = validate_bytes(text.encode(), "toml", "t", DATA, bundled_catalog()).diagnostics
    assert [(d.code, d.location, d.message, d.hint) for d in found] == [
        (
            "unknown_key",
            "owner_bridge_session_id",
            "unknown key 'owner_bridge_session_id' in the top level",
            "this key exists only in Meerkat's JSON form",
        )
    ]


def test_an_unset_escalation_timeout_is_the_runtime_default_and_digests_as_before() -> None:
    definition = report(UP).definition
    assert definition is not None and definition.supervisor is not None
    assert definition.supervisor.turn_timeout_ms == m.DEFAULT_ESCALATION_TURN_TIMEOUT_MS == 2000
    # runs started when the model filled in 2000 still resume: the flow digest is unchanged
    explicit = definition.model_copy(
        update={
            "supervisor": definition.supervisor.model_copy(
                update={"escalation_turn_timeout_ms": 2000}
            )
        }
    )
    assert flow_digest(definition, "pipeline") == flow_digest(explicit, "pipeline")
