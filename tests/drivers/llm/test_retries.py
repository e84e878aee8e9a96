"""Rate limits, server errors, refusals, deadlines and cancels, through the real SDKs."""

from __future__ import annotations

import json
import threading
import time

import pytest

from mobctl.drivers.base import Canceled, Completed, Failed
from tests.drivers.llm.conftest import PROVIDERS, profile, request, run
from tests.fakes.provider_server import Hang, Status, Text

GENEROUS = 60.0  # the only wall-clock bound a test asserts


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_429_is_retried_after_its_retry_after(fake, make_driver, provider) -> None:
    fake.script(Status(429, "slow down", {"retry-after": "1"}), Text("done"))
    outcome = run(make_driver(), request(profile(provider)))
    assert isinstance(outcome, Completed)
    assert outcome.output == "done"
    first, second = fake.requests
    assert second.at - first.at >= 1.0
    (call,) = [m for m in outcome.transcript["messages"] if m["role"] == "assistant"]
    assert call["retries"][0]["status"] == 429
    assert call["retries"][0]["retry_after"] == 1.0
    assert call["retries"][0]["waited_ms"] == 1000


def test_a_retry_after_past_the_deadline_fails_the_turn_at_once(fake, make_driver) -> None:
    fake.script(Status(429, "quota exhausted", {"retry-after": "3600"}))
    started = time.monotonic()
    outcome = run(make_driver(), request(timeout_ms=20_000))
    assert time.monotonic() - started < GENEROUS
    assert isinstance(outcome, Failed)
    assert outcome.reason == (
        "anthropic answered 429: quota exhausted (a retry after 3600.0s would pass the turn's "
        "deadline)"
    )
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("provider", "status"),
    [("anthropic", 529), ("openai", 500), ("gemini", 503), ("self_hosted", 502)],
)
def test_a_server_error_is_retried_with_backoff(fake, make_driver, provider, status) -> None:
    fake.script(Status(status, "try later"), Text("recovered"))
    outcome = run(make_driver(), request(profile(provider)))
    assert isinstance(outcome, Completed)
    assert outcome.output == "recovered"
    first, second = fake.requests
    assert second.at - first.at >= 0.25  # the first backoff is 0.5 s with jitter down to half


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_401_fails_with_the_provider_message_and_never_the_key(
    fake, make_driver, provider
) -> None:
    key = "sk-openai-test-secret" if provider == "openai" else "sk-ant-test-secret"
    message = f"invalid x-api-key {key}" if provider in ("anthropic", "openai") else "bad key"
    fake.script(Status(401, message))
    outcome = run(make_driver(), request(profile(provider)))
    assert isinstance(outcome, Failed)
    label = {"anthropic": "anthropic", "openai": "openai", "gemini": "gemini"}.get(
        provider, "chat completions"
    )
    shown = message.replace(key, "[redacted]")
    assert outcome.reason == f"{label} answered 401: {shown}"
    assert len(fake.requests) == 1
    assert "secret" not in json.dumps(outcome.transcript)
    assert outcome.transcript["outcome"] == "failed"


def test_other_4xx_fail_without_a_retry(fake, make_driver) -> None:
    fake.script(Status(400, "max_tokens: too large"))
    outcome = run(make_driver(), request(profile("openai")))
    assert outcome == Failed(
        "openai answered 400: max_tokens: too large",
        usage=outcome.usage,
        transcript=outcome.transcript,
    )
    assert len(fake.requests) == 1


def _stop_after(seconds: float) -> threading.Event:
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    return stop


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_hung_request_is_aborted_when_the_turn_times_out(fake, make_driver, provider) -> None:
    """The engine's timeout sets ``stop``; the request's connection is closed promptly."""
    fake.script(Hang())
    started = time.monotonic()
    outcome = run(make_driver(), request(profile(provider), timeout_ms=1000), _stop_after(1.0))
    assert time.monotonic() - started < GENEROUS
    assert isinstance(outcome, Canceled)
    assert fake.disconnected.wait(GENEROUS)
    assert outcome.transcript["outcome"] == "canceled"


def test_a_cancel_mid_request_closes_the_connection(fake, make_driver) -> None:
    fake.script(Text("too late", delay=3600))
    stop = threading.Event()
    driver = make_driver()
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(run(driver, request(), stop)))
    worker.start()
    while not fake.requests:
        time.sleep(0.01)
    stop.set()
    worker.join(GENEROUS)
    assert not worker.is_alive()
    assert isinstance(result[0], Canceled)
    assert fake.disconnected.wait(GENEROUS)
    assert fake.disconnects == 1


def test_call_timeout_secs_abandons_a_hung_call_and_retries(fake, make_driver) -> None:
    fake.script(Hang(), Text("second try"))
    outcome = run(make_driver(), request(profile(call_timeout_secs=1)))
    assert isinstance(outcome, Completed)
    assert outcome.output == "second try"
    assert fake.disconnected.wait(GENEROUS)
    retries = outcome.transcript["messages"][1]["retries"]
    assert retries[0]["message"] == "anthropic: the call timed out"


def test_a_turn_that_keeps_failing_stops_at_the_deadline_not_later(fake, make_driver) -> None:
    fake.default = Status(503, "down")
    started = time.monotonic()
    outcome = run(make_driver(), request(timeout_ms=2000))
    assert time.monotonic() - started < GENEROUS
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("anthropic answered 503: down")
    assert len(fake.requests) >= 2
