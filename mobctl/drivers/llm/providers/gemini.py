"""Google's Gemini API (generateContent) through the official ``google-genai`` SDK
(``client.aio``).

provider_params: ``temperature``, ``top_p``, ``max_output_tokens``;
``thinking_budget_tokens`` -> ``thinking_config.thinking_budget``; ``reasoning`` ``off`` ->
``thinking_budget = 0``, ``emit`` / ``silent`` -> ``include_thoughts`` true / false. JSON ->
``response_mime_type = "application/json"`` and, with a schema, ``response_json_schema``.
Automatic function calling is off: mobctl runs the tool loop itself.
"""

from __future__ import annotations

from typing import Any

from mobctl.drivers.base import Usage
from mobctl.drivers.llm.conversation import (
    ProviderFailure,
    Reply,
    ToolCall,
    ToolResult,
    TurnInput,
)
from mobctl.drivers.llm.retry import is_transient, retry_after

SUPPORTED_PARAMS = frozenset(
    {"temperature", "top_p", "max_output_tokens", "reasoning", "thinking_budget_tokens"}
)


def config_fields(turn: TurnInput) -> dict[str, Any]:
    params = turn.params
    fields: dict[str, Any] = {
        key: params[key] for key in ("temperature", "top_p", "max_output_tokens") if key in params
    }
    reasoning, budget = params.get("reasoning"), params.get("thinking_budget_tokens")
    thinking: dict[str, Any] = {}
    if reasoning == "off":
        thinking["thinking_budget"] = 0
    elif budget is not None:
        thinking["thinking_budget"] = budget
    if reasoning in ("emit", "silent"):
        thinking["include_thoughts"] = reasoning == "emit"
    if thinking:
        fields["thinking_config"] = thinking
    if turn.system:
        fields["system_instruction"] = turn.system
    if turn.json_wanted:
        fields["response_mime_type"] = "application/json"
    if turn.schema is not None:
        fields["response_json_schema"] = turn.schema
    if turn.tools:
        fields["tools"] = [
            {
                "function_declarations": [
                    {
                        "name": t.name,
                        "description": t.description,
                        "parameters_json_schema": t.input_schema,
                    }
                    for t in turn.tools
                ]
            }
        ]
    fields["automatic_function_calling"] = {"disable": True}
    return fields


class GeminiClient:
    def __init__(self, *, api_key: str, base_url: str | None) -> None:
        import httpx2
        from google import genai
        from google.genai import errors, types

        self.errors = errors
        self.types = types
        self.transport_errors = (httpx2.TransportError,)
        # no retry_options: mobctl retries within the turn's deadline (retry.py)
        options = types.HttpOptions(base_url=base_url) if base_url else None
        self.client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    def conversation(self, turn: TurnInput) -> GeminiConversation:
        return GeminiConversation(self, turn)

    async def aclose(self) -> None:
        await self.client.aio.aclose()


class GeminiConversation:
    def __init__(self, client: GeminiClient, turn: TurnInput) -> None:
        self._client = client
        self._model = turn.model
        self._fields = config_fields(turn)
        types = client.types
        self._contents: list[Any] = [
            types.Content(role="user", parts=[types.Part(text=turn.message)])
        ]
        self._ids: dict[str, str | None] = {}  # our call id -> the model's (None if it gave none)

    async def ask(self, timeout: float) -> Reply:
        types, errors = self._client.types, self._client.errors
        config = types.GenerateContentConfig(
            **self._fields, http_options=types.HttpOptions(timeout=max(int(timeout * 1000), 1))
        )
        try:
            response = await self._client.client.aio.models.generate_content(
                model=self._model, contents=self._contents, config=config
            )
        except errors.APIError as exc:
            status = exc.code if isinstance(exc.code, int) else None
            headers = getattr(exc.response, "headers", None)
            raise ProviderFailure(
                f"gemini answered {status}: {exc.message or exc.status or 'error'}",
                status=status,
                transient=is_transient(status),
                retry_after=retry_after(headers),
            ) from exc
        except self._client.transport_errors as exc:
            raise ProviderFailure(
                f"gemini: cannot complete the call ({type(exc).__name__})", transient=True
            ) from exc
        candidate = response.candidates[0] if response.candidates else None
        content = candidate.content if candidate is not None else None
        parts = (content.parts or []) if content is not None else []
        if content is not None:
            self._contents.append(content)
        calls = []
        for index, part in enumerate(parts):
            if part.function_call is not None:
                given = part.function_call.id
                ours = given or f"call-{len(self._contents)}-{index}"
                self._ids[ours] = given
                calls.append(
                    ToolCall(ours, part.function_call.name or "", part.function_call.args or {})
                )
        meta = response.usage_metadata
        return Reply(
            text="".join(p.text for p in parts if p.text and not p.thought),
            tool_calls=calls,
            usage=Usage(
                (meta.prompt_token_count or 0) if meta else 0,
                ((meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0))
                if meta
                else 0,
                (meta.cached_content_token_count or 0) if meta else 0,
                0,
            ),
            request_id=response.response_id,
            stop_reason=getattr(candidate.finish_reason, "value", None) if candidate else None,
        )

    def add_tool_results(self, results: list[ToolResult]) -> None:
        types = self._client.types
        parts = [
            types.Part(
                function_response=types.FunctionResponse(
                    id=self._ids.get(r.call.id),
                    name=r.call.name,
                    response={"error": r.output} if r.is_error else {"output": r.output},
                )
            )
            for r in results
        ]
        self._contents.append(types.Content(role="user", parts=parts))

    def add_user(self, text: str) -> None:
        types = self._client.types
        self._contents.append(types.Content(role="user", parts=[types.Part(text=text)]))
