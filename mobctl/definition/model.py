"""pydantic models of the mob definition (TOML and Meerkat JSON forms).

Field names are Meerkat's. Every table forbids unknown keys so that the loader can report
them (``unknown_key``); ``closed`` marks the tables where Meerkat itself rejects them (there
the diagnostic is an error, elsewhere a warning). Unions carry explicit tags (see ``TAGS``)
so that error locations can be mapped back to paths in the document.

Each field follows Meerkat's serde type (docs/meerkat-json-audit.md has the field-by-field
audit): a Rust ``Option<T>`` is ``T | None = None`` (absent and ``null`` both mean "not set"),
a field with ``#[serde(default)]`` has that default and rejects ``null``, any other field is
required. What pydantic cannot say about the JSON form (serde's ``skip_serializing_if``) is
carried by a ``JsonForm`` marker that ``serialize`` reads.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

U8 = Annotated[int, Field(ge=0, le=255)]
U32 = Annotated[int, Field(ge=0, le=4_294_967_295)]
I32 = Annotated[int, Field(ge=-2_147_483_648, le=2_147_483_647)]
U64 = Annotated[int, Field(ge=0, le=2**63 - 1)]

PROVIDERS = ("anthropic", "openai", "gemini", "self_hosted", "other")


def _provider(value: object) -> object:
    return "openai" if value == "open_a_i" else value  # legacy spelling, written back as openai


Provider = Annotated[
    Literal["anthropic", "openai", "gemini", "self_hosted", "other"],
    BeforeValidator(_provider, json_schema_input_type=Literal[(*PROVIDERS, "open_a_i")]),
]
DependsOnMode = Literal["all", "any"]
FailurePolicy = Literal["escalate", "continue"]


@dataclass(frozen=True)
class JsonForm:
    """How Meerkat's serde writes a field, where the type alone does not say.

    Without a marker an unset optional field is written as ``null`` (serde's default for an
    ``Option``) and every other field with its value, defaults included.
    """

    skip_none: bool = False  # skip_serializing_if = "Option::is_none": left out when unset
    skip_empty: bool = False  # skip_serializing_if = "Vec::is_empty": left out when []
    unset_as: str | None = None  # a serde default mobctl keeps as "unset": Meerkat writes it


SKIP_NONE = JsonForm(skip_none=True)
SKIP_EMPTY = JsonForm(skip_empty=True)

# Top-level keys of Meerkat's JSON form that the TOML form cannot hold (all but the first
# are fields of older meerkat-mob versions).
JSON_ONLY_KEYS = (
    "source_identity",
    "owner_session_id",
    "owner_bridge_session_id",
    "session_cleanup_policy",
    "is_implicit",
)

# Every discriminator tag used below. Error locations contain them; ``loader`` drops them.
TAGS: set[str] = set()


def _tag(name: str) -> Tag:
    TAGS.add(name)
    return Tag(name)


def _tagged_by(key: str, prefix: str) -> Discriminator:
    """A discriminator on ``key`` whose tags are ``<prefix>=<value>``."""

    def pick(value: Any) -> str:
        # Sentinel tags (never valid) let the loader say precisely what is wrong.
        if isinstance(value, BaseModel):
            return f"{prefix}={getattr(value, key, '<missing>')}"
        if not isinstance(value, dict):
            return f"{prefix}=<not a table>"
        if key not in value:
            return f"{prefix}=<missing>"
        tag = value[key]
        return f"{prefix}={tag}" if isinstance(tag, str) else f"{prefix}=<not a string>"

    return Discriminator(pick)


class Table(BaseModel):
    """An open TOML table: unknown keys are warnings."""

    # defer_build: the schema is built once, for the model that is validated first (the
    # definition), instead of once per class at import
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)
    closed: ClassVar[bool] = False


class ClosedTable(Table):
    """A table Meerkat closes with deny_unknown_fields: unknown keys are errors."""

    closed: ClassVar[bool] = True


# --- legacy 0.5.2 MCP servers -------------------------------------------------------------


class McpServer(Table):
    """``[mcp.<name>]`` from the 0.5.2 seed: a stdio ``command`` xor an ``url``."""

    command: list[str] = Field(default_factory=list)
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _command_xor_url(self) -> McpServer:
        # 0.5.2 writes "command": [] beside "url" for HTTP servers: an empty command is none
        has_command, has_url = bool(self.command), self.url is not None
        if has_command == has_url:
            which = "both" if has_command else "neither"
            raise PydanticCustomError(
                "invalid_mcp_server",
                "an MCP server needs exactly one of a non-empty 'command' and 'url' ({which} set)",
                {"which": which},
            )
        return self


# --- profiles -------------------------------------------------------------------------------


class McpStdioServer(ClosedTable):
    name: str
    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    connect_timeout_secs: Annotated[U32 | None, SKIP_NONE] = None


class McpHttpServer(ClosedTable):
    name: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    # unset means streamable-http (Meerkat's McpHttpTransport default); written as null
    transport: Literal["streamable-http", "sse"] | None = None
    connect_timeout_secs: Annotated[U32 | None, SKIP_NONE] = None


def _mcp_shape(value: Any) -> str:
    if isinstance(value, dict) and "url" in value and "command" not in value:
        return "mcp=http"
    if isinstance(value, McpHttpServer):
        return "mcp=http"
    return "mcp=stdio"


McpServerConfig = Annotated[
    Annotated[McpStdioServer, _tag("mcp=stdio")] | Annotated[McpHttpServer, _tag("mcp=http")],
    Discriminator(_mcp_shape),
]


class ToolConfig(Table):
    builtins: bool = False
    shell: bool = False
    comms: bool = False
    memory: bool = False
    workgraph: bool = False
    mob: bool = False
    schedule: bool = False
    image_generation: bool = False
    read_only: bool = False
    mcp: list[str] = Field(default_factory=list)
    rust_bundles: list[str] = Field(default_factory=list)
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    mob_tasks: Annotated[bool | None, SKIP_NONE] = (
        None  # until meerkat-mob 0.6.6: deprecated, no effect
    )


class ProviderTag(Table):
    """Only ``provider`` is checked; the per-provider keys pass through (Deviation §4.5)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    provider: Literal["anthropic", "open_ai", "gemini", "unknown"]


class ProviderParams(ClosedTable):
    temperature: Annotated[float | None, SKIP_NONE] = None
    top_p: Annotated[float | None, SKIP_NONE] = None
    max_output_tokens: Annotated[U32 | None, SKIP_NONE] = None
    reasoning: Annotated[Literal["emit", "silent", "off"] | None, SKIP_NONE] = None
    thinking_budget_tokens: Annotated[U32 | None, SKIP_NONE] = None
    provider_tag: Annotated[ProviderTag | None, SKIP_NONE] = None


def _json_object(value: object) -> object:
    if not isinstance(value, dict):
        raise PydanticCustomError("invalid_value", "expected a table (a JSON Schema object)")
    return value


class InlineProfile(Table):
    model: str
    provider: Provider | None = None
    self_hosted_server_id: str | None = None
    image_generation_provider: Provider | None = None
    auto_compact_threshold: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    resume_overrides: list[Literal["model", "provider", "provider_params"]] = Field(
        default_factory=list
    )
    skills: list[str] = Field(default_factory=list)
    tools: ToolConfig = Field(default_factory=ToolConfig)
    peer_description: str = ""
    external_addressable: bool = False
    backend: Literal["session", "external"] | None = None
    runtime_mode: Literal["autonomous_host", "turn_driven"] = "autonomous_host"
    max_inline_peer_notifications: I32 | None = None
    output_schema: Annotated[dict[str, JsonValue], BeforeValidator(_json_object)] | None = None
    provider_params: ProviderParams | None = None


class RealmProfileRef(Table):
    """A reference to a stored realm profile; other keys are ignored (as Meerkat)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    realm_profile: str


def _binding_kind(value: Any) -> str:
    if isinstance(value, RealmProfileRef) or (isinstance(value, dict) and "realm_profile" in value):
        return "profile=realm"
    return "profile=inline"


ProfileBinding = Annotated[
    Annotated[RealmProfileRef, _tag("profile=realm")]
    | Annotated[InlineProfile, _tag("profile=inline")],
    Discriminator(_binding_kind),
]


class ModelDefinition(ClosedTable):
    provider: Provider
    display_name: Annotated[str | None, SKIP_NONE] = None
    context_window: Annotated[U32 | None, SKIP_NONE] = None
    max_output_tokens: Annotated[U32 | None, SKIP_NONE] = None
    vision: Annotated[bool | None, SKIP_NONE] = None
    web_search: Annotated[bool | None, SKIP_NONE] = None
    call_timeout_secs: Annotated[U64 | None, SKIP_NONE] = None


class InlineSkill(Table):
    source: Literal["inline"]
    content: str


class PathSkill(Table):
    source: Literal["path"]
    path: str


Skill = Annotated[
    Annotated[InlineSkill, _tag("source=inline")] | Annotated[PathSkill, _tag("source=path")],
    _tagged_by("source", "source"),
]


class RoleWiring(Table):
    a: str
    b: str


class Wiring(Table):
    auto_wire_orchestrator: bool = False
    role_wiring: list[RoleWiring] = Field(default_factory=list)


class SupervisorBridge(Table):
    bind_address: Annotated[str | None, SKIP_NONE] = None
    advertised_address: Annotated[str | None, SKIP_NONE] = None


class ExternalBackend(Table):
    address_base: str
    supervisor_bridge: Annotated[SupervisorBridge | None, SKIP_NONE] = None


class Backend(Table):
    default: Literal["session", "external"] = "session"
    external: ExternalBackend | None = None


# --- flows ----------------------------------------------------------------------------------


class EqCondition(Table):
    op: Literal["eq"]
    path: str
    value: JsonValue


class InCondition(Table):
    op: Literal["in"]
    path: str
    values: list[JsonValue]


class GtCondition(Table):
    op: Literal["gt"]
    path: str
    value: JsonValue


class LtCondition(Table):
    op: Literal["lt"]
    path: str
    value: JsonValue


class AndCondition(Table):
    op: Literal["and"]
    exprs: list[Condition]


class OrCondition(Table):
    op: Literal["or"]
    exprs: list[Condition]


class NotCondition(Table):
    op: Literal["not"]
    expr: Condition


Condition = Annotated[
    Annotated[EqCondition, _tag("op=eq")]
    | Annotated[InCondition, _tag("op=in")]
    | Annotated[GtCondition, _tag("op=gt")]
    | Annotated[LtCondition, _tag("op=lt")]
    | Annotated[AndCondition, _tag("op=and")]
    | Annotated[OrCondition, _tag("op=or")]
    | Annotated[NotCondition, _tag("op=not")],
    _tagged_by("op", "op"),
]


class AllPolicy(Table):
    type: Literal["all"]


class AnyPolicy(Table):
    type: Literal["any"]


class QuorumPolicy(Table):
    type: Literal["quorum"]
    n: U8


def _policy_table(value: object) -> object:
    if isinstance(value, str):
        raise PydanticCustomError(
            "invalid_value",
            "expected a table such as { type = \"{word}\" }, found the string '{word}'",
            {"word": value},
        )
    return value


CollectionPolicy = Annotated[
    Annotated[AllPolicy, _tag("type=all")]
    | Annotated[AnyPolicy, _tag("type=any")]
    | Annotated[QuorumPolicy, _tag("type=quorum")],
    _tagged_by("type", "type"),
    BeforeValidator(_policy_table),
]


class TextBlock(Table):
    type: Literal["text"]
    text: str


class ImageBlock(Table):
    type: Literal["image"]
    media_type: str
    source: Literal["inline", "blob"]
    # serde flattens ImageData (tagged by source): only the source's own key is written
    data: Annotated[str | None, SKIP_NONE] = None
    blob_id: Annotated[str | None, SKIP_NONE] = None

    @model_validator(mode="after")
    def _source_key(self) -> ImageBlock:
        _require_source_key(self.source, {"inline": self.data, "blob": self.blob_id})
        return self


class VideoBlock(Table):
    type: Literal["video"]
    media_type: str
    duration_ms: U64
    source: Literal["inline", "uri"]
    data: Annotated[str | None, SKIP_NONE] = None
    uri: Annotated[str | None, SKIP_NONE] = None

    @model_validator(mode="after")
    def _source_key(self) -> VideoBlock:
        _require_source_key(self.source, {"inline": self.data, "uri": self.uri})
        return self


def _require_source_key(source: str, values: dict[str, str | None]) -> None:
    key = {"inline": "data", "blob": "blob_id", "uri": "uri"}[source]
    if values[source] is None:
        raise PydanticCustomError(
            "invalid_value",
            "missing required key '{key}' for source = \"{source}\"",
            {"key": key, "source": source},
        )


class StructuredBlock(Table):
    type: Literal["structured"]
    data: JsonValue


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# The four spellings Rust's uuid::Uuid::parse_str reads: simple, hyphenated, braced, urn.
_SOURCE_UUID = re.compile(rf"[0-9a-fA-F]{{32}}|{_UUID}|\{{{_UUID}\}}|urn:uuid:{_UUID}")
_SKILL_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _source_uuid(value: str) -> str:
    if _SOURCE_UUID.fullmatch(value) is None:
        raise PydanticCustomError(
            "invalid_value",
            "invalid source_uuid: expected a UUID such as 00000000-0000-4b11-8111-000000000002",
        )
    return str(uuid.UUID(value))  # Meerkat writes the lowercase hyphenated form


def _skill_name(value: str) -> str:
    if _SKILL_NAME.fullmatch(value) is None:
        raise PydanticCustomError(
            "invalid_value",
            "invalid skill_name: expected a lowercase slug (a-z, 0-9 and single '-' inside)",
        )
    return value


class SkillKey(Table):
    """Meerkat's ``SkillKey``: the canonical identity of a skill (no string form)."""

    source_uuid: Annotated[str, AfterValidator(_source_uuid)]
    skill_name: Annotated[str, AfterValidator(_skill_name)]


def _skill_key_table(value: object) -> object:
    if isinstance(value, str):
        raise PydanticCustomError(
            "invalid_value",
            "expected a table with source_uuid and skill_name, found a string (Meerkat's "
            "skill_key has no string form)",
        )
    return value


class SkillContextBlock(Table):
    type: Literal["skill_context"]
    skill_key: Annotated[SkillKey, BeforeValidator(_skill_key_table)]
    text: str


ContentBlock = Annotated[
    Annotated[TextBlock, _tag("block=text")]
    | Annotated[ImageBlock, _tag("block=image")]
    | Annotated[VideoBlock, _tag("block=video")]
    | Annotated[StructuredBlock, _tag("block=structured")]
    | Annotated[SkillContextBlock, _tag("block=skill_context")],
    _tagged_by("type", "block"),
]


def _message_kind(value: Any) -> str:
    return "message=blocks" if isinstance(value, list | tuple) else "message=text"


Message = Annotated[
    Annotated[str, _tag("message=text")] | Annotated[list[ContentBlock], _tag("message=blocks")],
    Discriminator(_message_kind),
]


def _schema_ref(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("invalid_value", "expected_schema_ref must not be blank")
    return value


class Step(Table):
    role: str
    message: Message
    depends_on: list[str] = Field(default_factory=list)
    depends_on_mode: DependsOnMode = "all"
    dispatch_mode: Literal["fan_out", "one_to_one", "fan_in"] = "fan_out"
    collection_policy: CollectionPolicy = Field(default_factory=lambda: AllPolicy(type="all"))
    condition: Condition | None = None
    timeout_ms: U64 | None = None
    expected_schema_ref: Annotated[str, BeforeValidator(_schema_ref)] | None = None
    branch: str | None = None
    allowed_tools: list[str] | None = None
    blocked_tools: list[str] | None = None
    failure_policy: FailurePolicy = "escalate"
    output_format: Annotated[Literal["json", "text"] | None, SKIP_NONE] = None

    @property
    def effective_output_format(self) -> Literal["json", "text"]:
        if self.output_format is not None:
            return self.output_format
        return "json" if self.expected_schema_ref is not None else "text"


def _not_null_policy(value: object) -> object:
    if value is None:
        raise PydanticCustomError(
            "invalid_value",
            "invalid value null for 'failure_policy': expected 'escalate' or 'continue'",
        )
    return value


# A node's failure_policy: serde defaults it to escalate and rejects null. mobctl keeps
# "unset" (the 0.5.x roots have none) and writes escalate for it, as Meerkat does.
NodeFailurePolicy = Annotated[
    FailurePolicy | None, BeforeValidator(_not_null_policy), JsonForm(unset_as="escalate")
]


class StepNode(Table):
    kind: Literal["step"]
    step_id: str
    depends_on: list[str]
    depends_on_mode: DependsOnMode
    branch: str | None = None
    failure_policy: NodeFailurePolicy = None


class RepeatUntilNode(Table):
    kind: Literal["repeat_until"]
    loop_id: str
    depends_on: list[str]
    depends_on_mode: DependsOnMode
    body: Frame
    until: Condition
    max_iterations: U32
    failure_policy: NodeFailurePolicy = None


Node = Annotated[
    Annotated[StepNode, _tag("kind=step")] | Annotated[RepeatUntilNode, _tag("kind=repeat_until")],
    _tagged_by("kind", "kind"),
]


class Frame(Table):
    nodes: dict[str, Node]


class Flow(Table):
    description: str | None = None
    steps: dict[str, Step] = Field(default_factory=dict)
    root: Frame | None = None

    def frame(self) -> Frame:
        """The root frame: the explicit one, or one step node per step (author order)."""
        return self.root if self.root is not None else synthesised_root(self.steps)


def synthesised_root(steps: dict[str, Step]) -> Frame:
    return Frame.model_construct(  # built from validated steps: nothing to validate again
        nodes={
            step_id: StepNode.model_construct(
                kind="step",
                step_id=step_id,
                depends_on=list(step.depends_on),
                depends_on_mode=step.depends_on_mode,
                branch=step.branch,
                failure_policy=step.failure_policy,
            )
            for step_id, step in steps.items()
        }
    )


# --- run-time policy tables -----------------------------------------------------------------


class TopologyRule(Table):
    from_role: str
    to_role: str
    allowed: bool


class Topology(Table):
    mode: Literal["advisory", "strict"]
    rules: list[TopologyRule]


DEFAULT_ESCALATION_TURN_TIMEOUT_MS = 2000  # Meerkat's runtime default for an unset timeout


class Supervisor(Table):
    role: str
    escalation_threshold: U32
    escalation_turn_timeout_ms: U64 | None = None

    @property
    def turn_timeout_ms(self) -> int:
        """The escalation turn's timeout: the declared one, else the runtime default."""
        if self.escalation_turn_timeout_ms is None:
            return DEFAULT_ESCALATION_TURN_TIMEOUT_MS
        return self.escalation_turn_timeout_ms


class Limits(Table):
    max_flow_duration_ms: U64 | None = None
    max_step_retries: U32 | None = None
    max_orphaned_turns: U32 | None = None
    cancel_grace_timeout_ms: U64 | None = None
    max_active_nodes: U64 | None = None
    max_active_frames: U64 | None = None
    max_frame_depth: U64 | None = None


class NoSpawnPolicy(Table):
    mode: Literal["none"]


class AutoSpawnPolicy(Table):
    mode: Literal["auto"]
    profile_map: dict[str, str]


SpawnPolicy = Annotated[
    Annotated[NoSpawnPolicy, _tag("mode=none")] | Annotated[AutoSpawnPolicy, _tag("mode=auto")],
    _tagged_by("mode", "mode"),
]


class EventRouter(Table):
    buffer_size: U64 = 256
    # unset: route every event (an empty include list would route none)
    include_patterns: Annotated[list[str] | None, SKIP_NONE] = None
    exclude_patterns: Annotated[list[str] | None, SKIP_NONE] = None


# --- the definition -------------------------------------------------------------------------


class Orchestrator(Table):
    profile: str


def _orchestrator(value: object) -> object:
    return {"profile": value} if isinstance(value, str) else value


class MobSection(Table):
    id: str
    orchestrator: (
        Annotated[
            Orchestrator, BeforeValidator(_orchestrator, json_schema_input_type=str | Orchestrator)
        ]
        | None
    ) = None


class SourceIdentity(Table):
    """Meerkat's ``MobDefinitionSourceIdentity`` (JSON form only): kept, never acted on."""

    kind: Literal["mobpack"]
    digest: str
    trust_warnings: Annotated[list[str], SKIP_EMPTY] = Field(default_factory=list)


class MobDefinition(Table):
    """A whole definition, in the TOML shape (the JSON form is reshaped on load)."""

    image_generation_provider: Provider | None = None
    mob: MobSection
    profiles: dict[str, ProfileBinding] = Field(default_factory=dict)
    models: dict[str, ModelDefinition] = Field(default_factory=dict)
    skills: dict[str, Skill] = Field(default_factory=dict)
    wiring: Wiring = Field(default_factory=Wiring)
    backend: Backend = Field(default_factory=Backend)
    flows: dict[str, Flow] = Field(default_factory=dict)
    topology: Topology | None = None
    supervisor: Supervisor | None = None
    limits: Limits | None = None
    spawn_policy: SpawnPolicy | None = None
    event_router: EventRouter | None = None
    mcp: dict[str, McpServer] = Field(default_factory=dict)
    # JSON form only (JSON_ONLY_KEYS). The legacy keys are kept as read (deprecated_key).
    source_identity: Annotated[SourceIdentity | None, SKIP_NONE] = None
    owner_session_id: Annotated[JsonValue, SKIP_NONE] = None
    owner_bridge_session_id: Annotated[JsonValue, SKIP_NONE] = None
    session_cleanup_policy: Annotated[JsonValue, SKIP_NONE] = None
    is_implicit: Annotated[JsonValue, SKIP_NONE] = None

    def inline_profiles(self) -> dict[str, InlineProfile]:
        return {n: p for n, p in self.profiles.items() if isinstance(p, InlineProfile)}


AndCondition.model_rebuild()
OrCondition.model_rebuild()
NotCondition.model_rebuild()
RepeatUntilNode.model_rebuild()
Frame.model_rebuild()
