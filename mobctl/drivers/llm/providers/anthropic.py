"""Anthropic's Messages API through the official ``anthropic`` SDK (``AsyncAnthropic``).

provider_params: ``max_output_tokens`` -> ``max_tokens`` (default 8192, the API requires one);
``thinking_budget_tokens`` -> ``thinking = {type: enabled, budget_tokens}``; ``reasoning``
``off`` -> ``thinking = {type: disabled}``, ``emit`` / ``silent`` -> adaptive thinking with its
text ``summarized`` / ``omitted``. ``temperature`` and ``top_p`` are no longer Messages API
fields (the SDK's ``create`` has neither): a warning at run start. JSON with a schema ->
``output_config.format = {type: json_schema, schema}``.
"""

from __future__ import annotations

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

SUPPORTED_PARAMS = frozenset({"max_output_tokens", "reasoning", "thinking_budget_tokens"})
DEFAULT_MAX_TOKENS = 8192


def request_fields(turn: TurnInput) -> dict[str, Any]:
    params = turn.params
    fields: dict[str, Any] = {"max_tokens": params.get("max_output_tokens", DEFAULT_MAX_TOKENS)}
    reasoning, budget = params.get("reasoning"), params.get("thinking_budget_tokens")
    if reasoning == "off":
        fields["thinking"] = {"type": "disabled"}
    elif budget is not None or reasoning is not None:
        thinking: dict[str, Any] = (
            {"type": "enabled", "budget_tokens": budget}
            if budget is not None
            else {"type": "adaptive"}
        )
        if reasoning is not None:
            thinking["display"] = "summarized" if reasoning == "emit" else "omitted"
        fields["thinking"] = thinking
    if turn.system:
        fields["system"] = turn.system
    if turn.schema is not None:
        fields["output_config"] = {"format": {"type": "json_schema", "schema": turn.schema}}
    if turn.tools:
        fields["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in turn.tools
        ]
    return fields


class AnthropicClient:
    def __init__(self, *, api_key: str, base_url: str | None) -> None:
        import anthropic

        self._sdk = anthropic
        # max_retries=0: mobctl retries within the turn's deadline (retry.py)
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0)

    def conversation(self, turn: TurnInput) -> AnthropicConversation:
        return AnthropicConversation(self, turn)

    async def aclose(self) -> None:
        await self._client.close()


class AnthropicConversation:
    def __init__(self, client: AnthropicClient, turn: TurnInput) -> None:
        self._client = client
        self._model = turn.model
        self._fields = request_fields(turn)
        self._messages: list[dict[str, Any]] = [{"role": "user", "content": turn.message}]

    async def ask(self, timeout: float) -> Reply:
        sdk = self._client._sdk
        try:
            message = await self._client._client.messages.create(
                model=self._model,
                messages=cast(Any, self._messages),
                timeout=timeout,
                **self._fields,
            )
        except sdk.AnthropicError as exc:
            found = failure(exc, sdk, "anthropic")
            if found is None:
                raise ProviderFailure(f"anthropic: {exc}") from exc
            raise found from exc
        content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        self._messages.append({"role": "assistant", "content": content})
        usage = message.usage
        return Reply(
            text="".join(b["text"] for b in content if b.get("type") == "text"),
            tool_calls=[
                ToolCall(b["id"], b["name"], b.get("input") or {})
                for b in content
                if b.get("type") == "tool_use"
            ],
            usage=Usage(
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens or 0,
                usage.cache_creation_input_tokens or 0,
            ),
            request_id=message._request_id,
            stop_reason=message.stop_reason,
        )

    def add_tool_results(self, results: list[ToolResult]) -> None:
        self._messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": r.call.id,
                        "content": r.output,
                        "is_error": r.is_error,
                    }
                    for r in results
                ],
            }
        )

    def add_user(self, text: str) -> None:
        self._messages.append({"role": "user", "content": text})
