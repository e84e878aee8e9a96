"""The record of one llm turn: what the member was told, every model call (with its usage,
timing, provider request id and retries), every tool call with its arguments and result,
and the final answer. JSON-able; credentials are scrubbed before it leaves the driver."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mobctl.drivers.base import Usage
from mobctl.drivers.llm.conversation import Reply, ToolResult
from mobctl.drivers.llm.retry import Attempt

REDACTED = "[redacted]"


class Transcript:
    def __init__(self, *, provider: str, api: str, model: str, system_prompt: str) -> None:
        self.usage = Usage()
        self._record: dict[str, Any] = {
            "driver": "llm",
            "provider": provider,
            "api": api,
            "model": model,
            "system_prompt": system_prompt,
            "tools": [],
            "messages": [],
        }

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self._record["messages"]
        return messages

    def offer(self, tools: list[str]) -> None:
        self._record["tools"] = tools

    def user(self, text: str, *, purpose: str = "turn") -> None:
        self.messages.append({"role": "user", "purpose": purpose, "content": text})

    def model_call(self, reply: Reply, duration_ms: int, retries: list[Attempt]) -> None:
        self.usage += reply.usage
        entry: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls
            ],
            "stop_reason": reply.stop_reason,
            "request_id": reply.request_id,
            "usage": reply.usage.document(),
            "duration_ms": duration_ms,
        }
        if retries:
            entry["retries"] = [
                {
                    "status": a.status,
                    "message": a.message,
                    "retry_after": a.retry_after,
                    "waited_ms": a.waited_ms,
                }
                for a in retries
            ]
        self.messages.append(entry)

    def failed_call(self, message: str, duration_ms: int, retries: list[Attempt]) -> None:
        entry: dict[str, Any] = {"role": "assistant", "error": message, "duration_ms": duration_ms}
        if retries:
            entry["retries"] = [{"status": a.status, "message": a.message} for a in retries]
        self.messages.append(entry)

    def tool_result(self, result: ToolResult, duration_ms: int) -> None:
        self.messages.append(
            {
                "role": "tool",
                "tool_call_id": result.call.id,
                "name": result.call.name,
                "arguments": result.call.arguments,
                "result": result.output,
                "is_error": result.is_error,
                "duration_ms": duration_ms,
            }
        )

    def finish(
        self,
        outcome: str,
        *,
        duration_ms: int,
        secrets: Iterable[str],
        final_answer: str | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        record = dict(self._record)
        record |= {
            "outcome": outcome,
            "final_answer": final_answer,
            "error": error,
            "usage": self.usage.document(),
            "request_ids": [m["request_id"] for m in self.messages if m.get("request_id")],
            "duration_ms": duration_ms,
        }
        scrubbed: dict[str, Any] = redact(record, [s for s in secrets if s])
        return scrubbed


def redact(value: Any, secrets: list[str]) -> Any:
    """``value`` with every occurrence of a secret replaced (strings anywhere in it)."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    return value
