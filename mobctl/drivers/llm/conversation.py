"""What every provider adapter speaks: tools offered, tool calls asked for, one model reply,
and the failure of one model call. Each adapter keeps its own native message history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mobctl.drivers.base import Usage


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    output: str
    is_error: bool = False

    @property
    def marked(self) -> str:
        """The output for an API without an error flag on tool results."""
        return f"Error: {self.output}" if self.is_error else self.output


@dataclass(frozen=True)
class Reply:
    """One model answer: its text, the tools it wants called, and what it cost."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    stop_reason: str | None = None


class ProviderFailure(Exception):
    """One model call failed. ``transient`` failures (429, overloaded, 5xx, a dropped
    connection, a call timeout) may be retried; others fail the turn with ``message``."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.request_id = request_id


@dataclass(frozen=True)
class TurnInput:
    """What a conversation starts from."""

    model: str
    system: str
    message: str
    tools: list[ToolSpec]
    schema: dict[str, Any] | None  # JSON output wanted with this schema (provider-native)
    json_wanted: bool
    params: dict[str, Any]  # the profile's provider_params (only the keys it sets)


class Conversation(Protocol):
    """One turn's exchange with a model, in the provider's own message format."""

    async def ask(self, timeout: float) -> Reply:
        """One model call on the history so far; the reply joins the history. Raises
        :class:`ProviderFailure` (the history is then unchanged)."""
        ...

    def add_tool_results(self, results: list[ToolResult]) -> None: ...

    def add_user(self, text: str) -> None: ...


class ProviderClient(Protocol):
    """One SDK client (one endpoint and key), shared by every turn that uses it."""

    def conversation(self, turn: TurnInput) -> Conversation: ...

    async def aclose(self) -> None: ...
