"""The driver contract: a turn request in, an outcome out, promptly stoppable."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mobctl.errors import ExitCode, MobctlError


@dataclass(frozen=True)
class Member:
    identity: str
    generation: int
    role: str


ProviderName = Literal["anthropic", "openai", "gemini", "self_hosted", "other"]


@dataclass(frozen=True)
class TurnProfile:
    """A member's resolved profile (inline or realm), as every driver sees it.

    ``provider`` is resolved as ``validate`` resolves it (the profile's ``provider``, else the
    definition's ``[models.<model>]``, else the bundled catalogue) and is None when none of them
    knows the model. ``provider_params`` holds only the keys the profile sets; ``tools`` is the
    profile's ``[tools]`` table as JSON; ``call_timeout_secs`` comes from ``[models.<model>]``.
    """

    name: str
    model: str
    provider: ProviderName | None = None
    self_hosted_server_id: str | None = None
    provider_params: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, Any] = field(default_factory=dict)
    system_prompt: str = ""
    output_schema: dict[str, Any] | None = None
    call_timeout_secs: int | None = None

    def document(self) -> dict[str, Any]:
        """The profile as JSON (what the command driver puts on stdin under ``profile``)."""
        return {
            "name": self.name,
            "model": self.model,
            "provider": self.provider,
            "self_hosted_server_id": self.self_hosted_server_id,
            "provider_params": self.provider_params,
            "tools": self.tools,
            "system_prompt": self.system_prompt,
            "output_schema": self.output_schema,
            "call_timeout_secs": self.call_timeout_secs,
        }


@dataclass(frozen=True)
class TurnRequest:
    kind: Literal["step", "escalation"]
    mob_id: str
    run_id: str
    flow_id: str
    step_id: str | None
    member: Member
    message: str | list[dict[str, Any]]
    output_format: Literal["text", "json"] = "text"
    allowed_tools: list[str] | None = None
    blocked_tools: list[str] | None = None
    attempt: int = 1
    frame_id: str = ""
    loop_id: str | None = None
    iteration: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    timeout_ms: int = 30_000
    profile: TurnProfile | None = None  # the member's resolved profile
    expected_schema: dict[str, Any] | None = None  # the step's resolved expected_schema_ref

    def message_text(self) -> str:
        """The message as plain text (text blocks joined by newlines)."""
        if isinstance(self.message, str):
            return self.message
        return "\n".join(b.get("text", "") for b in self.message if b.get("type") == "text")


@dataclass(frozen=True)
class Usage:
    """Tokens one turn used (all of its model calls added up). As JSON it has the field names
    of Meerkat's wire usage (``total_tokens`` = input + output)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
        )

    def document(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Usage:
        """The usage of :meth:`document` (a count that is missing or not a count is 0)."""

        def count(key: str) -> int:
            value = document.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return cls(
            count("input_tokens"),
            count("output_tokens"),
            count("cache_read_tokens"),
            count("cache_creation_tokens"),
        )


@dataclass(frozen=True)
class Completed:
    output: str
    structured_output: Any = None
    usage: Usage | None = None
    # what the member did, as JSON (never a credential); the engine stores it
    transcript: dict[str, Any] | None = None


@dataclass(frozen=True)
class Failed:
    reason: str
    usage: Usage | None = None
    transcript: dict[str, Any] | None = None


@dataclass(frozen=True)
class Canceled:
    transcript: dict[str, Any] | None = None  # what the turn did before it was stopped
    usage: Usage | None = None  # what its model calls used before it was stopped


Outcome = Completed | Failed | Canceled


class DispatchError(Exception):
    """The turn could not be started at all (e.g. the command does not exist)."""


class DriverError(MobctlError):
    """A driver spec or its configuration (fixtures file, command) is unusable."""

    code = "invalid_driver"
    exit_code = ExitCode.USAGE


class Driver(Protocol):
    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        """Execute one turn. When ``stop`` is set (timeout or cancel), kill whatever the
        turn started and return :class:`Canceled` promptly."""
        ...


class RunLifecycle(Protocol):
    """What a driver may add to :class:`Driver` for a whole run (both optional: use
    :func:`preflight` and :func:`close`, which skip drivers without them)."""

    def preflight(self, profiles: list[TurnProfile]) -> list[str]:
        """Before anything is written: raise :class:`DriverError` /
        :class:`~mobctl.errors.MissingCredentials`
        if the run cannot work; return the warnings to show once per run."""
        ...

    def close(self) -> None:
        """The run ended (completed, failed, canceled): release what the driver holds."""
        ...


def preflight(driver: Driver, profiles: list[TurnProfile]) -> list[str]:
    """The driver's preflight warnings (none for a driver that has no preflight)."""
    check = getattr(driver, "preflight", None)
    return list(check(profiles)) if check is not None else []


def close(driver: Driver) -> None:
    """Close the driver if it holds anything for the run."""
    closer = getattr(driver, "close", None)
    if closer is not None:
        closer()


@dataclass
class Drivers:
    """The driver of each role, and the default for the others (the registry builds them
    from ``--driver`` specs; the engine sees only this)."""

    default: Driver  # for every role without one of its own
    by_role: dict[str, Driver] = field(default_factory=dict)
    specs: list[str] = field(default_factory=list)  # as given: recorded so a resume reuses them

    def for_role(self, role: str) -> Driver:
        return self.by_role.get(role, self.default)

    def preflight(self, profiles: Mapping[str, TurnProfile]) -> list[str]:
        """Each driver's check of the profiles of the roles it serves (role -> profile);
        the once-per-run warnings."""
        served: dict[int, tuple[Driver, list[TurnProfile]]] = {}
        for role, profile in profiles.items():
            driver = self.for_role(role)
            served.setdefault(id(driver), (driver, []))[1].append(profile)
        return [w for driver, mine in served.values() for w in preflight(driver, mine)]

    def close(self) -> None:
        for driver in {id(d): d for d in (self.default, *self.by_role.values())}.values():
            close(driver)
