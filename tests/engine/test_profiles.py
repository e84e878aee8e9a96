"""A member's resolved profile (mobctl/engine/profiles.py): inline or realm, the provider as
``validate`` resolves it, the system prompt as Meerkat assembles it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobctl.definition.loader import load_text
from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import TurnProfile
from mobctl.engine.profiles import missing_skills, turn_profile
from mobctl.errors import DefinitionError
from mobctl.validation.catalog import bundled_catalog

DEFINITION = """
[mob]
id = "review"

[profiles.lead]
model = "claude-opus-4-7"
skills = ["style", "undefined-skill", "house", "tone"]
output_schema = { type = "object" }
provider_params = { max_output_tokens = 900, reasoning = "emit" }

[profiles.lead.tools]
shell = true
mcp_servers = [{ name = "gh", command = "gh-mcp", args = ["--ro"] }]

[profiles.custom]
model = "in-house-1"

[profiles.local]
model = "qwen3"
provider = "self_hosted"
self_hosted_server_id = "gpu"

[profiles.writer]
realm_profile = "house-writer"

[models.in-house-1]
provider = "openai"
call_timeout_secs = 45

[skills.style]
source = "inline"
content = "Be brief."

[skills.tone]
source = "inline"
content = "Be kind."

[skills.house]
source = "path"
path = "skills/house.md"

[flows.main.steps.a]
role = "lead"
message = "x"
"""


def definition(text: str = DEFINITION) -> MobDefinition:
    loaded = load_text(text, "toml", "t", Path("."))
    assert loaded.definition is not None, loaded.diagnostics
    return loaded.definition


def resolve(role: str, realm: dict | None = None, copies: dict | None = None) -> TurnProfile:
    return turn_profile(
        definition(),
        role,
        realm_profiles=realm or {},
        catalog=bundled_catalog(),
        skill_copies={"skills/house.md": "House rules."} if copies is None else copies,
    )


def test_an_inline_profile() -> None:
    lead = resolve("lead")
    assert lead == TurnProfile(
        name="lead",
        model="claude-opus-4-7",
        provider="anthropic",  # from the bundled catalogue
        provider_params={"max_output_tokens": 900, "reasoning": "emit"},
        tools=lead.tools,
        system_prompt="Be brief.\n\nHouse rules.\n\nBe kind.",
        output_schema={"type": "object"},
    )
    assert lead.tools["shell"] is True
    assert lead.tools["mcp_servers"] == [
        {
            "name": "gh",
            "command": "gh-mcp",
            "args": ["--ro"],
            "env": {},
            "connect_timeout_secs": None,
        }
    ]
    assert lead.document()["system_prompt"] == lead.system_prompt


def test_the_provider_comes_from_the_profile_then_models_then_the_catalogue() -> None:
    custom = resolve("custom")
    assert (custom.provider, custom.call_timeout_secs) == ("openai", 45)
    local = resolve("local")
    assert (local.provider, local.self_hosted_server_id, local.system_prompt) == (
        "self_hosted",
        "gpu",
        "",
    )


def test_a_model_nobody_knows_has_no_provider() -> None:
    realm = {"house-writer": {"model": "mystery-9"}}
    writer = resolve("writer", realm)
    assert (writer.name, writer.model, writer.provider) == ("writer", "mystery-9", None)


def test_a_realm_profile_uses_the_definition_skills() -> None:
    realm = {"house-writer": {"model": "gpt-5.4", "skills": ["tone", "style"]}}
    writer = resolve("writer", realm)
    assert (writer.provider, writer.system_prompt) == ("openai", "Be kind.\n\nBe brief.")


def test_a_missing_realm_profile_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError) as caught:
        resolve("writer")
    assert caught.value.message == (
        "profile 'writer' refers to realm profile 'house-writer', which does not exist"
    )
    with pytest.raises(DefinitionError) as caught:
        resolve("writer", {"house-writer": {"skills": []}})
    assert caught.value.message == (
        "realm profile 'house-writer' (profile 'writer') is not a valid profile: model: Field "
        "required"
    )
    with pytest.raises(DefinitionError, match="has no profile 'nobody'"):
        resolve("nobody")


def test_a_path_skill_without_its_stored_copy_is_left_out_with_a_warning() -> None:
    """Its file was missing when the mob was registered (validate warned then): the run warns
    again and the prompt leaves it out, so a run whose drivers read no prompt still runs."""
    assert resolve("lead", copies={}).system_prompt == "Be brief.\n\nBe kind."
    flow = "main"
    assert missing_skills(definition(), flow, realm_profiles={}, skill_copies={}) == [
        "skill 'house' of profile 'lead' has no stored copy of its file 'skills/house.md' (it "
        "was missing or unreadable when the mob was registered): the system prompt leaves it "
        "out; fix the file and register the mob again"
    ]
    assert (
        missing_skills(definition(), flow, realm_profiles={}, skill_copies={"skills/house.md": "x"})
        == []
    )


@given(st.lists(st.sampled_from(["a", "b", "c", "missing"]), max_size=6))
def test_the_system_prompt_joins_defined_skills_in_profile_order(names: list[str]) -> None:
    contents = {"a": "alpha", "b": "", "c": "gamma\n"}
    skills = "".join(
        f'[skills.{n}]\nsource = "inline"\ncontent = {json.dumps(c)}\n' for n, c in contents.items()
    )
    text = f'[mob]\nid = "m"\n[profiles.p]\nmodel = "claude-opus-4-7"\nskills = {names!r}\n{skills}'
    got = turn_profile(
        definition(text), "p", realm_profiles={}, catalog=bundled_catalog(), skill_copies={}
    )
    assert got.system_prompt == "\n\n".join(contents[n] for n in names if n in contents)
