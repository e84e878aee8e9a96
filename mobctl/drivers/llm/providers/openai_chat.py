"""Self-hosted and other OpenAI-compatible servers (vLLM, Ollama, LM Studio, llama.cpp):
Chat Completions through the official ``openai`` SDK with a base URL.

provider_params: ``temperature``, ``top_p``; ``max_output_tokens`` -> ``max_tokens`` (the
field these servers all accept). ``reasoning`` and ``thinking_budget_tokens`` have no
portable field (a warning at run start). JSON with a schema -> ``response_format =
{type: json_schema, json_schema: {name, schema, strict}}``.
"""

from __future__ import annotations

from typing import Any, cast

from mobctl.drivers.base import Usage
from mobctl.drivers.llm.conversation import Reply, ToolCall, ToolResult, TurnInput
from mobctl.drivers.llm.providers.openai_responses import (
    SCHEMA_NAME,
    OpenAIClient,
    parse_arguments,
    sampling,
    strict_compatible,
)

SUPPORTED_PARAMS = frozenset({"temperature", "top_p", "max_output_tokens"})


def request_fields(turn: TurnInput) -> dict[str, Any]:
    fields = sampling(turn.params)
    if "max_output_tokens" in turn.params:
        fields["max_tokens"] = turn.params["max_output_tokens"]
    if turn.schema is not None:
        fields["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": SCHEMA_NAME,
                "schema": turn.schema,
                "strict": strict_compatible(turn.schema),
            },
        }
    if turn.tools:
        fields["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in turn.tools
        ]
    return fields


class ChatClient(OpenAIClient):
    def conversation(self, turn: TurnInput) -> ChatConversation:  # type: ignore[override]
        return ChatConversation(self, turn)


class ChatConversation:
    def __init__(self, client: OpenAIClient, turn: TurnInput) -> None:
        self._client = client
        self._model = turn.model
        self._fields = request_fields(turn)
        self._messages: list[dict[str, Any]] = []
        if turn.system:
            self._messages.append({"role": "system", "content": turn.system})
        self._messages.append({"role": "user", "content": turn.message})

    async def ask(self, timeout: float) -> Reply:
        try:
            completion = await self._client.client.chat.completions.create(
                model=self._model,
                messages=cast(Any, self._messages),
                timeout=timeout,
                **self._fields,
            )
        except self._client.sdk.OpenAIError as exc:
            raise self._client.failure(exc) from exc
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content or "") if choice else ""
        calls = [
            c for c in ((choice.message.tool_calls or []) if choice else []) if c.type == "function"
        ]
        assistant: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            assistant["tool_calls"] = [c.model_dump(mode="json", exclude_none=True) for c in calls]
        self._messages.append(assistant)
        usage = completion.usage
        details = usage.prompt_tokens_details if usage is not None else None
        return Reply(
            text=text,
            tool_calls=[
                ToolCall(c.id, c.function.name, parse_arguments(c.function.arguments))
                for c in calls
            ],
            usage=Usage(
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
                (details.cached_tokens or 0) if details else 0,
                (details.cache_write_tokens or 0) if details else 0,
            ),
            request_id=completion._request_id,
            stop_reason=choice.finish_reason if choice else None,
        )

    def add_tool_results(self, results: list[ToolResult]) -> None:
        for r in results:
            self._messages.append(
                {
                    "role": "tool",
                    "tool_call_id": r.call.id,
                    "content": r.marked,
                }
            )

    def add_user(self, text: str) -> None:
        self._messages.append({"role": "user", "content": text})
