"""Meerkat's definition checks (validate.rs): profiles, models, wiring, external backend."""

from __future__ import annotations

import ipaddress
import re

from mobctl.definition.model import InlineProfile, MobDefinition
from mobctl.diagnostics import Diagnostic, diagnostic
from mobctl.ids import SLUG_RULE, is_slug
from mobctl.validation.catalog import Catalog

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PEER_SCHEMES = ("inproc", "uds", "tcp")
_BRIDGE = ("backend", "external", "supervisor_bridge")


def check_definition(definition: MobDefinition, catalog: Catalog) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    if not definition.profiles:
        found.append(
            diagnostic(
                "empty_profiles", "mob definition must define at least one profile", ("profiles",)
            )
        )
    orchestrator = definition.mob.orchestrator
    if orchestrator is not None and orchestrator.profile not in definition.profiles:
        found.append(
            diagnostic(
                "missing_orchestrator_profile",
                f"orchestrator profile '{orchestrator.profile}' is not defined",
                ("mob", "orchestrator"),
            )
        )
    for name, binding in definition.profiles.items():
        found += _check_profile_name(name)
        if isinstance(binding, InlineProfile):
            found += _check_inline_profile(name, binding, definition, catalog)
    provider = definition.image_generation_provider
    if provider is not None and provider not in catalog.image_generation_providers:
        found.append(
            diagnostic(
                "invalid_image_generation_provider",
                f"image_generation_provider '{provider}' has no image-generation capability",
                ("image_generation_provider",),
            )
        )
    for model_id, model in definition.models.items():
        if model.provider in ("self_hosted", "other"):
            found.append(
                diagnostic(
                    "invalid_custom_model",
                    f"models.{model_id}: provider must be a concrete API provider (anthropic, "
                    "openai, gemini); self-hosted models belong in the host config's "
                    "[self_hosted.models]",
                    ("models", model_id, "provider"),
                )
            )
    for index, rule in enumerate(definition.wiring.role_wiring):
        for side, profile in (("a", rule.a), ("b", rule.b)):
            if profile not in definition.profiles:
                found.append(
                    diagnostic(
                        "invalid_wiring_profile",
                        f"wiring rule references non-existent profile '{profile}'",
                        ("wiring", "role_wiring", index, side),
                    )
                )
    found += _check_external_backend(definition)
    if not is_slug(definition.mob.id):
        found.append(
            diagnostic(
                "unsafe_id",
                f"mob id '{definition.mob.id}' cannot name a store directory ({SLUG_RULE})",
                ("mob", "id"),
                hint="`mobctl register` and `mobctl run` refuse this id",
            )
        )
    return found


def _check_profile_name(name: str) -> list[Diagnostic]:
    found = []
    if _IDENTIFIER.fullmatch(name) is None:
        found.append(
            diagnostic(
                "invalid_profile_name",
                f"profile name '{name}' is not a valid identifier",
                ("profiles", name),
                point="key",
                hint="start with a letter or '_', then letters, digits, '_' or '-'",
            )
        )
    if name.startswith("__flow_"):
        found.append(
            diagnostic(
                "reserved_system_identifier",
                f"profile name '{name}' uses reserved flow-system identifier namespace",
                ("profiles", name),
                point="key",
            )
        )
    return found


def _check_inline_profile(
    name: str, profile: InlineProfile, definition: MobDefinition, catalog: Catalog
) -> list[Diagnostic]:
    found = []
    base = ("profiles", name)
    for index, skill in enumerate(profile.skills):
        if skill not in definition.skills:
            found.append(
                diagnostic(
                    "missing_skill_ref", f"skill '{skill}' is not defined", (*base, "skills", index)
                )
            )
    if model_provider(profile, definition, catalog) is None:
        found.append(
            diagnostic(
                "unknown_model",
                f"profiles.{name} model '{profile.model}' is neither catalogued, defined under "
                f'[models.{profile.model}], nor provider-annotated (set `provider = "..."` or '
                "define the model)",
                (*base, "model"),
            )
        )
    image = profile.image_generation_provider
    if image is not None and image not in catalog.image_generation_providers:
        found.append(
            diagnostic(
                "invalid_image_generation_provider",
                f"profiles.{name} image_generation_provider '{image}' has no image-generation "
                "capability",
                (*base, "image_generation_provider"),
            )
        )
    threshold = profile.max_inline_peer_notifications
    if threshold is not None and threshold < -1:
        found.append(
            diagnostic(
                "invalid_inline_peer_notification_threshold",
                f"profiles.{name} max_inline_peer_notifications={threshold} is invalid "
                "(allowed: -1, 0, or >0)",
                (*base, "max_inline_peer_notifications"),
            )
        )
    return found


def model_provider(
    profile: InlineProfile, definition: MobDefinition, catalog: Catalog
) -> str | None:
    """The provider of a profile's model: its ``provider``, else ``[models.<model>]``'s, else the
    catalogue's; None when none of them knows the model (``unknown_model``)."""
    if profile.provider is not None:
        return profile.provider
    if profile.model in definition.models:
        return definition.models[profile.model].provider
    return catalog.providers.get(profile.model)


def _check_external_backend(definition: MobDefinition) -> list[Diagnostic]:
    in_use = definition.backend.default == "external" or any(
        p.backend == "external" for p in definition.inline_profiles().values()
    )
    if not in_use:
        return []
    external = definition.backend.external
    if external is None:
        return [
            diagnostic(
                "missing_external_backend_config",
                "external backend selected but backend.external config is missing",
                ("backend", "external"),
            )
        ]
    if not external.address_base.strip():
        return [
            diagnostic(
                "invalid_external_backend_config",
                "backend.external.address_base must not be empty",
                ("backend", "external", "address_base"),
            )
        ]
    bridge = external.supervisor_bridge
    if bridge is None:
        return []
    found = []
    if bridge.bind_address is not None:
        bind = _socket_address(bridge.bind_address)
        if bind is None:
            found.append(
                _bridge_problem(
                    "bind_address",
                    "backend.external.supervisor_bridge.bind_address must be a socket address: "
                    "invalid socket address syntax",
                )
            )
        elif bind.is_unspecified and bridge.advertised_address is None:
            found.append(
                _bridge_problem(
                    "advertised_address",
                    "backend.external.supervisor_bridge.advertised_address is required when "
                    "bind_address uses an unspecified interface",
                )
            )
    if bridge.advertised_address is not None:
        problem = _peer_address_problem(bridge.advertised_address)
        if problem is not None:
            found.append(_bridge_problem("advertised_address", problem))
    return found


def _bridge_problem(key: str, message: str) -> Diagnostic:
    path = (*_BRIDGE, key)
    # An absent advertised_address is reported at its location, positioned at the bridge table.
    return diagnostic("invalid_external_backend_config", message, path)


def _socket_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse ``ip:port`` / ``[ipv6]:port`` as Rust's ``SocketAddr`` does (no host names)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii() or int(port) > 65535:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if text.startswith("[") != (address.version == 6):
        return None
    return address


def _peer_address_problem(text: str) -> str | None:
    prefix = "backend.external.supervisor_bridge.advertised_address"
    scheme, sep, _ = text.partition("://")
    if not sep:
        return (
            f"{prefix} must be a typed peer address: peer address missing transport scheme: {text}"
        )
    if scheme not in _PEER_SCHEMES:
        return (
            f"{prefix} must be a typed peer address: unknown peer address transport "
            f'"{scheme}" in address "{text}"'
        )
    if scheme != "tcp":
        return f"{prefix} must use tcp transport, got '{scheme}'"
    host, colon, port = text.partition("://")[2].rpartition(":")
    if not colon or not host or not port.isdigit() or not port.isascii() or int(port) > 65535:
        return f"{prefix} must be tcp://host:port, got '{text}'"
    return None
