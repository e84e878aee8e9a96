"""OpenAI's Responses API through the official ``openai`` SDK (``AsyncOpenAI``).

provider_params: ``temperature``, ``top_p``, ``max_output_tokens``; ``reasoning`` ``off`` ->
``reasoning.effort = "none"``, ``emit`` -> ``reasoning.summary = "auto"``, ``silent`` -> the
model's default. ``thinking_budget_tokens`` has no Responses field (a warning at run start).
JSON with a schema -> ``text.format = {type: json_schema, name, schema, strict}``, ``strict``
when the schema meets strict mode's rules (see :func:`strict_compatible`).
"""

from __future__ import annotations

import json
from typing import Any, cast

from mobctl.drivers.base import Usage
from mobctl.drivers.llm.conversation import (
    ProviderFailure,
    Reply,
    ToolCall,
    ToolResult,
    TurnInput,
)
from mobctl.drivers.llm.providers.stainless import failure

SUPPORTED_PARAMS = frozenset({"temperature", "top_p", "max_output_tokens", "reasoning"})
SCHEMA_NAME = "output"


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts the schema: every object schema closes its
    properties (``additionalProperties: false``) and requires all of them."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    kind = schema.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind):
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or not isinstance(properties, dict):
            return False
        if sorted(schema.get("required", [])) != sorted(properties):
            return False
    return all(strict_compatible(value) for value in schema.values())


def parse_arguments(text: str) -> dict[str, Any]:
    """A tool call's JSON arguments; anything but an object is kept raw for the error."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"_unparsable_arguments": text}
    return value if isinstance(value, dict) else {"_unparsable_arguments": text}


def sampling(params: dict[str, Any]) -> dict[str, Any]:
    return {key: params[key] for key in ("temperature", "top_p") if key in params}


def request_fields(turn: TurnInput) -> dict[str, Any]:
    params = turn.params
    fields = sampling(params)
    if "max_output_tokens" in params:
        fields["max_output_tokens"] = params["max_output_tokens"]
    reasoning = params.get("reasoning")
    if reasoning == "off":
        fields["reasoning"] = {"effort": "none"}
    elif reasoning == "emit":
        fields["reasoning"] = {"summary": "auto"}
    if turn.system:
        fields["instructions"] = turn.system
    if turn.schema is not None:
        fields["text"] = {
            "format": {
                "type": "json_schema",
                "name": SCHEMA_NAME,
                "schema": turn.schema,
                "strict": strict_compatible(turn.schema),
            }
        }
    if turn.tools:
        fields["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
                "strict": False,
            }
            for t in turn.tools
        ]
    return fields


class OpenAIClient:
    """An ``AsyncOpenAI`` client; also serves the Chat Completions adapter."""

    def __init__(self, *, api_key: str, base_url: str | None, label: str = "openai") -> None:
        import openai

        self.sdk = openai
        self.label = label
        # max_retries=0: mobctl retries within the turn's deadline (retry.py)
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    def conversation(self, turn: TurnInput) -> ResponsesConversation:
        return ResponsesConversation(self, turn)

    async def aclose(self) -> None:
        await self.client.close()

    def failure(self, exc: Exception) -> ProviderFailure:
        found = failure(exc, self.sdk, self.label)
        return found if found is not None else ProviderFailure(f"{self.label}: {exc}")


class ResponsesConversation:
    def __init__(self, client: OpenAIClient, turn: TurnInput) -> None:
        self._client = client
        self._model = turn.model
        self._fields = request_fields(turn)
        self._input: list[dict[str, Any]] = [{"role": "user", "content": turn.message}]

    async def ask(self, timeout: float) -> Reply:
        try:
            response = await self._client.client.responses.create(
                model=self._model,
                input=cast(Any, self._input),
                timeout=timeout,
                **self._fields,
            )
        except self._client.sdk.OpenAIError as exc:
            raise self._client.failure(exc) from exc
        items = [item.model_dump(mode="json", exclude_none=True) for item in response.output]
        self._input.extend(items)
        usage = response.usage
        details = usage.input_tokens_details if usage is not None else None
        return Reply(
            text=response.output_text,
            tool_calls=[
                ToolCall(item["call_id"], item["name"], parse_arguments(item["arguments"]))
                for item in items
                if item.get("type") == "function_call"
            ],
            usage=Usage(
                usage.input_tokens if usage else 0,
                usage.output_tokens if usage else 0,
                details.cached_tokens if details else 0,
                details.cache_write_tokens if details else 0,
            ),
            request_id=response._request_id,
            stop_reason=response.status,
        )

    def add_tool_results(self, results: list[ToolResult]) -> None:
        for r in results:
            self._input.append(
                {
                    "type": "function_call_output",
                    "call_id": r.call.id,
                    "output": r.marked,
                }
            )

    def add_user(self, text: str) -> None:
        self._input.append({"role": "user", "content": text})
