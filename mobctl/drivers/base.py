"""The driver contract: a turn request in, an outcome out, promptly stoppable."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mobctl.errors import ExitCode, MobctlError


@dataclass(frozen=True)
class Member:
    identity: str
    generation: int
    role: str


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

    def message_text(self) -> str:
        """The message as plain text (text blocks joined by newlines)."""
        if isinstance(self.message, str):
            return self.message
        return "\n".join(b.get("text", "") for b in self.message if b.get("type") == "text")


@dataclass(frozen=True)
class Completed:
    output: str
    structured_output: Any = None


@dataclass(frozen=True)
class Failed:
    reason: str


@dataclass(frozen=True)
class Canceled:
    pass


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
