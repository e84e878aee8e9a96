"""A member's resolved profile for its turns (pure): inline or realm, provider, system prompt.

The system prompt is built as Meerkat's ``assemble_system_prompt`` (meerkat-mob build.rs)
builds it: the contents of the profile's ``skills`` in profile order, joined with a blank line;
a skill name the definition does not define is skipped. Inline skills give their ``content``;
path skills the copy stored at register time (``SpecResources.skills``, keyed by the path as
the definition writes it). Meerkat fails the member's build when a path skill cannot be read;
mobctl likewise refuses a path skill whose copy is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast, get_args

from pydantic import ValidationError

from mobctl.definition.model import InlineProfile, InlineSkill, MobDefinition, PathSkill
from mobctl.drivers.base import ProviderName, TurnProfile
from mobctl.errors import DefinitionError
from mobctl.validation.catalog import Catalog
from mobctl.validation.definition_rules import model_provider

_PROVIDERS: tuple[str, ...] = get_args(ProviderName)


def flow_roles(definition: MobDefinition, flow_id: str) -> list[str]:
    """The roles a run of the flow gives turns to: its steps' roles, then the supervisor's."""
    roles = [step.role for step in definition.flows[flow_id].steps.values()]
    if definition.supervisor is not None:
        roles.append(definition.supervisor.role)
    return list(dict.fromkeys(roles))


def run_profiles(
    definition: MobDefinition,
    flow_id: str,
    *,
    realm_profiles: Mapping[str, dict[str, Any]],
    catalog: Catalog,
    skill_copies: Mapping[str, str],
) -> dict[str, TurnProfile]:
    """The profile of every role a run of the flow gives turns to (role -> profile), resolved
    once for the run; the errors of :func:`turn_profile`."""
    return {
        role: turn_profile(
            definition,
            role,
            realm_profiles=realm_profiles,
            catalog=catalog,
            skill_copies=skill_copies,
        )
        for role in flow_roles(definition, flow_id)
    }


def turn_profile(
    definition: MobDefinition,
    role: str,
    *,
    realm_profiles: Mapping[str, dict[str, Any]],
    catalog: Catalog,
    skill_copies: Mapping[str, str],
) -> TurnProfile:
    """The profile of ``role`` (a key of ``[profiles]``) as drivers see it.

    ``realm_profiles``: stored realm profiles by name (only those the definition refers to are
    read). Raises :class:`DefinitionError` for an unknown role, a missing or unreadable realm
    profile, or a path skill with no stored copy.
    """
    profile = _inline(definition, role, realm_profiles)
    provider = model_provider(profile, definition, catalog)
    model = definition.models.get(profile.model)
    params = profile.provider_params
    return TurnProfile(
        name=role,
        model=profile.model,
        provider=cast(ProviderName, provider) if provider in _PROVIDERS else None,
        self_hosted_server_id=profile.self_hosted_server_id,
        provider_params=params.model_dump(mode="json", exclude_none=True) if params else {},
        tools=profile.tools.model_dump(mode="json"),
        system_prompt=system_prompt(role, profile, definition, skill_copies),
        output_schema=dict(profile.output_schema) if profile.output_schema is not None else None,
        call_timeout_secs=model.call_timeout_secs if model is not None else None,
    )


def system_prompt(
    role: str, profile: InlineProfile, definition: MobDefinition, skill_copies: Mapping[str, str]
) -> str:
    sections = []
    for name in profile.skills:
        skill = definition.skills.get(name)
        if skill is None:
            continue  # as Meerkat: an undefined skill contributes nothing
        if isinstance(skill, InlineSkill):
            sections.append(skill.content)
        elif skill.path in skill_copies:
            sections.append(skill_copies[skill.path])
        # else: missing at registration (validate warned); :func:`missing_skills` says so
    return "\n\n".join(sections)


def missing_skills(
    definition: MobDefinition,
    flow_id: str,
    *,
    realm_profiles: Mapping[str, dict[str, Any]],
    skill_copies: Mapping[str, str],
) -> list[str]:
    """A warning for each path skill of a role in the flow whose file had no stored copy (it
    was missing or unreadable at registration): the system prompt leaves it out."""
    warnings = []
    for role in flow_roles(definition, flow_id):
        for name in _inline(definition, role, realm_profiles).skills:
            skill = definition.skills.get(name)
            if isinstance(skill, PathSkill) and skill.path not in skill_copies:
                warnings.append(
                    f"skill '{name}' of profile '{role}' has no stored copy of its file "
                    f"'{skill.path}' (it was missing or unreadable when the mob was registered): "
                    "the system prompt leaves it out; fix the file and register the mob again"
                )
    return warnings


def _inline(
    definition: MobDefinition, role: str, realm_profiles: Mapping[str, dict[str, Any]]
) -> InlineProfile:
    binding = definition.profiles.get(role)
    if binding is None:
        raise DefinitionError(f"mob '{definition.mob.id}' has no profile '{role}'")
    if isinstance(binding, InlineProfile):
        return binding
    name = binding.realm_profile
    stored = realm_profiles.get(name)
    if stored is None:
        raise DefinitionError(
            f"profile '{role}' refers to realm profile '{name}', which does not exist",
            hint=f"create it: mobctl profiles create {name} FILE",
        )
    try:
        return InlineProfile.model_validate(stored)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "profile"
        raise DefinitionError(
            f"realm profile '{name}' (profile '{role}') is not a valid profile: {where}: "
            f"{first['msg']}",
            hint=f"replace it: mobctl profiles update {name} FILE",
        ) from exc
