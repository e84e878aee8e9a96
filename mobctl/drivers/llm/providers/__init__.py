"""Which API, SDK, credential and base URL a profile's provider uses.

| provider | API | SDK, extra | key | base URL |
|---|---|---|---|---|
| anthropic | Messages | anthropic, [anthropic] | ANTHROPIC_API_KEY | ANTHROPIC_BASE_URL |
| openai | Responses | openai, [openai] | OPENAI_API_KEY | OPENAI_BASE_URL |
| gemini | generateContent | google-genai, [gemini] | GEMINI_API_KEY | GOOGLE_GEMINI_BASE_URL |
| self_hosted, other | Chat Completions | openai, [openai] | see below | see below |

A self-hosted (or other OpenAI-compatible) profile with ``self_hosted_server_id = "ID"`` talks
to ``MOBCTL_SELF_HOSTED_<ID>_URL`` with the optional key ``MOBCTL_SELF_HOSTED_<ID>_API_KEY``
(``<ID>`` upper-cased, other characters than letters and digits as ``_``); without a server
id, to ``OPENAI_BASE_URL`` with the optional ``OPENAI_API_KEY``. Credentials come only from
the environment the CLI passes in, never from a driver spec.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mobctl.drivers.base import DriverError, TurnProfile
from mobctl.drivers.llm.conversation import ProviderClient
from mobctl.drivers.llm.providers import anthropic, gemini, openai_chat, openai_responses
from mobctl.errors import MissingCredentials

NO_KEY = "none"  # what a keyless self-hosted server gets (the SDK wants a non-empty key)


@dataclass(frozen=True)
class Api:
    name: str
    module: str  # the SDK's import name
    extra: str  # pip install 'mobctl[<extra>]'
    supported_params: frozenset[str]


ANTHROPIC = Api("anthropic messages", "anthropic", "anthropic", anthropic.SUPPORTED_PARAMS)
RESPONSES = Api("openai responses", "openai", "openai", openai_responses.SUPPORTED_PARAMS)
CHAT = Api("chat completions", "openai", "openai", openai_chat.SUPPORTED_PARAMS)
GEMINI = Api("gemini generateContent", "google.genai", "gemini", gemini.SUPPORTED_PARAMS)
API_OF = {
    "anthropic": ANTHROPIC,
    "openai": RESPONSES,
    "gemini": GEMINI,
    "self_hosted": CHAT,
    "other": CHAT,
}
_KEYS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}
_URLS = {
    "anthropic": "ANTHROPIC_BASE_URL",
    "openai": "OPENAI_BASE_URL",
    "gemini": "GOOGLE_GEMINI_BASE_URL",
}


@dataclass(frozen=True)
class Endpoint:
    api: Api
    base_url: str | None
    api_key: str = field(repr=False)


def api_of(profile: TurnProfile) -> Api:
    if profile.provider is None:
        raise DriverError(
            f"profile '{profile.name}': the provider of model '{profile.model}' is unknown",
            hint=f'set provider = "..." in the profile or define [models.{profile.model}]',
        )
    return API_OF[profile.provider]


def require_sdk(profile: TurnProfile) -> Api:
    """The profile's API, once its SDK is known to be installed."""
    api = api_of(profile)
    if not sdk_installed(api.module):
        raise DriverError(
            f"profile '{profile.name}' uses {profile.provider}, whose SDK ({api.module}) is not "
            "installed",
            hint=f"pip install 'mobctl[{api.extra}]' (or 'mobctl[llm]' for every provider)",
        )
    return api


def sdk_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken module
        return False


def server_variable(server_id: str, suffix: str) -> str:
    return f"MOBCTL_SELF_HOSTED_{re.sub(r'[^A-Z0-9]', '_', server_id.upper())}_{suffix}"


def endpoint(profile: TurnProfile, env: Mapping[str, str]) -> Endpoint:
    """Where the profile's model is asked, with which key; :class:`MissingCredentials` when
    the environment lacks one."""
    api = api_of(profile)
    provider = profile.provider
    assert provider is not None
    if api is CHAT:
        server = profile.self_hosted_server_id
        url_var = server_variable(server, "URL") if server else "OPENAI_BASE_URL"
        key_var = server_variable(server, "API_KEY") if server else "OPENAI_API_KEY"
        url = env.get(url_var)
        if not url:
            raise MissingCredentials(
                f"profile '{profile.name}' uses a {provider} server: set {url_var} to its base "
                "URL (e.g. http://127.0.0.1:8000/v1)"
            )
        return Endpoint(api, url, env.get(key_var) or NO_KEY)
    key = env.get(_KEYS[provider])
    if not key:
        raise MissingCredentials(
            f"profile '{profile.name}' uses {provider}: set {_KEYS[provider]}",
            hint="credentials come only from the environment, never from --driver",
        )
    return Endpoint(api, env.get(_URLS[provider]) or None, key)


def open_client(target: Endpoint) -> ProviderClient:
    """A new SDK client for the endpoint (on the driver's event loop)."""
    if target.api is ANTHROPIC:
        return anthropic.AnthropicClient(api_key=target.api_key, base_url=target.base_url)
    if target.api is GEMINI:
        return gemini.GeminiClient(api_key=target.api_key, base_url=target.base_url)
    if target.api is RESPONSES:
        return openai_responses.OpenAIClient(api_key=target.api_key, base_url=target.base_url)
    return openai_chat.ChatClient(
        api_key=target.api_key, base_url=target.base_url, label="chat completions"
    )
