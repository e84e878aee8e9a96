"""The llm driver's turns through the real SDKs against the fake provider server: text,
structured output (native schema, validation, repair), provider parameters, usage and
transcripts, the model override."""

from __future__ import annotations

import json

import pytest

from mobctl.drivers.base import Completed, Failed, Usage
from mobctl.drivers.llm.options import LlmOptions
from tests.drivers.llm.conftest import PROVIDERS, profile, request, run
from tests.fakes.provider_server import Text

SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["verdict", "score"],
    "additionalProperties": False,
}
REPAIR = (
    "The previous output was invalid: {}. Please provide valid JSON matching the schema. "
    "Output ONLY the JSON, no additional text."
)


def system_sent(api: str, body: dict) -> object:
    if api == "anthropic":
        return body["system"]
    if api == "responses":
        return body["instructions"]
    if api == "chat":
        return body["messages"][0]
    return body["systemInstruction"]["parts"][0]["text"]


def schema_sent(api: str, body: dict) -> object:
    if api == "anthropic":
        return body["output_config"]
    if api == "responses":
        return body["text"]
    if api == "chat":
        return body["response_format"]
    return {
        "mime": body["generationConfig"]["responseMimeType"],
        "schema": body["generationConfig"]["responseJsonSchema"],
    }


NATIVE = {
    "anthropic": {"format": {"type": "json_schema", "schema": SCHEMA}},
    "responses": {
        "format": {"type": "json_schema", "name": "output", "schema": SCHEMA, "strict": True}
    },
    "chat": {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": True},
    },
    "gemini": {"mime": "application/json", "schema": SCHEMA},
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_text_turn_sends_the_system_prompt_and_reports_usage_and_transcript(
    fake, make_driver, provider
) -> None:
    api = PROVIDERS[provider][1]
    fake.script(Text("hello there", usage=(11, 7, 3, 2)))
    outcome = run(make_driver(), request(profile(provider)))
    assert isinstance(outcome, Completed)
    assert outcome.output == "hello there"
    assert outcome.structured_output is None
    (sent,) = fake.requests
    assert sent.api == api
    expected_system = {"role": "system", "content": "You write."} if api == "chat" else "You write."
    assert system_sent(api, sent.body) == expected_system
    assert "Write about caching" in json.dumps(sent.body)
    write = 0 if api == "gemini" else 2  # Gemini reports no cache writes
    assert outcome.usage == Usage(11, 7, 3, write)
    record = outcome.transcript
    assert record is not None
    assert record["outcome"] == "completed"
    assert record["provider"] == provider
    assert record["model"] == PROVIDERS[provider][0]
    assert record["system_prompt"] == "You write."
    assert record["final_answer"] == "hello there"
    assert record["usage"] == outcome.usage.document()
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    assert record["messages"][0]["content"] == "Write about caching"
    request_id = {"anthropic": "req_anthropic_1", "responses": "req_responses_1"}.get(
        api, {"chat": "req_chat_1", "gemini": "gemini_1"}.get(api)
    )
    assert record["request_ids"] == [request_id]
    assert "secret" not in json.dumps(record)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_json_turn_asks_for_the_step_schema_natively(fake, make_driver, provider) -> None:
    api = PROVIDERS[provider][1]
    fake.script(Text('{"verdict": "ship", "score": 9}'))
    turn = request(profile(provider), output_format="json", expected_schema=SCHEMA)
    outcome = run(make_driver(), turn)
    assert isinstance(outcome, Completed)
    assert outcome.structured_output == {"verdict": "ship", "score": 9}
    assert schema_sent(api, fake.requests[0].body) == NATIVE[api]


def test_the_step_schema_wins_over_the_profile_schema_and_the_profile_one_serves_alone(
    fake, make_driver
) -> None:
    other = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    fake.script(Text('{"verdict": "ok", "score": 1}'), Text('{"x": 2}'))
    driver = make_driver()
    both = request(profile(output_schema=other), output_format="json", expected_schema=SCHEMA)
    assert isinstance(run(driver, both), Completed)
    alone = request(profile(output_schema=other), output_format="json")
    outcome = run(driver, alone)
    assert isinstance(outcome, Completed)
    assert outcome.structured_output == {"x": 2}
    assert fake.requests[0].body["output_config"]["format"]["schema"] == SCHEMA
    assert fake.requests[1].body["output_config"]["format"]["schema"] == other


def test_openai_strict_mode_only_for_a_schema_it_accepts(fake, make_driver) -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    fake.script(Text('{"a": "x"}'))
    run(make_driver(), request(profile("openai"), output_format="json", expected_schema=loose))
    assert fake.requests[0].body["text"]["format"]["strict"] is False


def test_a_text_turn_asks_for_no_schema(fake, make_driver) -> None:
    fake.script(Text("prose"))
    run(make_driver(), request(profile(output_schema=SCHEMA)))
    assert "output_config" not in fake.requests[0].body


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini", "self_hosted"])
def test_invalid_json_is_repaired_with_a_message_saying_what_was_wrong(
    fake, make_driver, provider
) -> None:
    fake.script(Text("Sure! Here it is: {verdict"), Text('{"verdict": "ok", "score": 3}'))
    turn = request(profile(provider), output_format="json", expected_schema=SCHEMA)
    outcome = run(make_driver(), turn)
    assert isinstance(outcome, Completed)
    assert outcome.structured_output == {"verdict": "ok", "score": 3}
    problem = "Invalid JSON: Expecting value: line 1 column 1 (char 0)"
    assert REPAIR.format(problem) in json.dumps(fake.requests[1].body)
    repairs = [m for m in outcome.transcript["messages"] if m.get("purpose") == "repair"]
    assert [m["content"] for m in repairs] == [REPAIR.format(problem)]


def test_an_answer_that_breaks_the_schema_is_repaired(fake, make_driver) -> None:
    fake.script(Text('```json\n{"verdict": "ok"}\n```'), Text('{"verdict": "ok", "score": 3}'))
    turn = request(output_format="json", expected_schema=SCHEMA)
    outcome = run(make_driver(), turn)
    assert isinstance(outcome, Completed)
    last = fake.requests[1].body["messages"][-1]
    assert last == {
        "role": "user",
        "content": REPAIR.format("Schema validation failed: 'score' is a required property"),
    }


def test_a_fenced_valid_answer_needs_no_repair(fake, make_driver) -> None:
    fake.script(Text('```json\n{"verdict": "ok", "score": 1}\n```'))
    outcome = run(make_driver(), request(output_format="json", expected_schema=SCHEMA))
    assert isinstance(outcome, Completed)
    assert outcome.structured_output == {"verdict": "ok", "score": 1}
    assert len(fake.requests) == 1


def test_two_failed_repairs_fail_the_turn(fake, make_driver) -> None:
    fake.script(Text("nope"), Text("still nope"), Text('{"verdict": 1, "score": 1}'))
    outcome = run(make_driver(), request(output_format="json", expected_schema=SCHEMA))
    assert outcome == Failed(
        "structured output still invalid after 2 repair turns: Schema validation failed: 1 is "
        "not of type 'string' at /verdict",
        usage=Usage(33, 21, 9, 6),
        transcript=outcome.transcript,
    )
    assert len(fake.requests) == 3
    assert outcome.transcript["outcome"] == "failed"


def test_json_without_a_schema_is_checked_for_json(fake, make_driver) -> None:
    fake.script(Text("not json"), Text("[1, 2]"))
    outcome = run(make_driver(), request(profile("gemini"), output_format="json"))
    assert isinstance(outcome, Completed)
    assert outcome.structured_output == [1, 2]
    config = fake.requests[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in config


PARAMS = {
    "temperature": 0.25,
    "top_p": 0.5,
    "max_output_tokens": 512,
    "reasoning": "emit",
    "thinking_budget_tokens": 2048,
}


def test_provider_params_reach_anthropic(fake, make_driver) -> None:
    run(make_driver(), request(profile("anthropic", provider_params=PARAMS)))
    body = fake.requests[0].body
    assert body["max_tokens"] == 512
    assert "temperature" not in body and "top_p" not in body  # no longer Messages API fields
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048, "display": "summarized"}


def test_anthropic_reasoning_without_a_budget_and_off(fake, make_driver) -> None:
    driver = make_driver()
    run(driver, request(profile(provider_params={"reasoning": "silent"})))
    run(driver, request(profile(provider_params={"reasoning": "off"})))
    run(driver, request(profile()))
    first, second, third = (r.body for r in fake.requests)
    assert first["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert second["thinking"] == {"type": "disabled"}
    assert "thinking" not in third
    assert third["max_tokens"] == 8192


def test_provider_params_reach_openai_responses(fake, make_driver) -> None:
    run(make_driver(), request(profile("openai", provider_params=PARAMS)))
    body = fake.requests[0].body
    assert (body["temperature"], body["top_p"], body["max_output_tokens"]) == (0.25, 0.5, 512)
    assert body["reasoning"] == {"summary": "auto"}
    assert "thinking_budget_tokens" not in json.dumps(body)


def test_provider_params_reach_gemini(fake, make_driver) -> None:
    run(make_driver(), request(profile("gemini", provider_params=PARAMS)))
    config = fake.requests[0].body["generationConfig"]
    assert (config["temperature"], config["topP"], config["maxOutputTokens"]) == (0.25, 0.5, 512)
    thinking = config["thinkingConfig"]
    assert {k.replace("_", "").lower(): v for k, v in thinking.items()} == {
        "thinkingbudget": 2048,
        "includethoughts": True,
    }


def test_provider_params_reach_a_self_hosted_server(fake, make_driver) -> None:
    run(make_driver(), request(profile("self_hosted", provider_params=PARAMS)))
    body = fake.requests[0].body
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.25, 0.5, 512)
    assert "reasoning" not in body
    assert fake.requests[0].headers["authorization"] == "Bearer none"


def test_the_model_option_replaces_every_profile_model(fake, make_driver) -> None:
    run(make_driver(LlmOptions(model="claude-cheap")), request(profile()))
    assert fake.requests[0].body["model"] == "claude-cheap"


def test_structured_blocks_are_sent_as_json_text(fake, make_driver) -> None:
    blocks = [
        {"type": "text", "text": "Review this:"},
        {"type": "structured", "data": {"pr": 7}},
    ]
    run(make_driver(), request(message=blocks))
    assert fake.requests[0].body["messages"][0]["content"] == 'Review this:\n\n{"pr": 7}'


def test_media_blocks_fail_the_turn(fake, make_driver) -> None:
    blocks = [{"type": "image", "media_type": "image/png", "source": "inline", "data": "AA=="}]
    outcome = run(make_driver(), request(message=blocks))
    assert outcome == Failed(
        "the llm driver sends text only; this message has image or video blocks"
    )
    assert fake.requests == []
