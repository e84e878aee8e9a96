"""Fixtures for the llm driver: the fake provider server, profiles, requests, drivers."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mobctl.drivers.base import Member, Outcome, TurnProfile, TurnRequest
from mobctl.drivers.llm.driver import LlmDriver
from mobctl.drivers.llm.options import LlmOptions
from tests.fakes.provider_server import FakeProvider

MCP_SERVER = Path(__file__).resolve().parents[2] / "fakes" / "mcp_server.py"
PROVIDERS = {  # provider -> (model, the fake server's api)
    "anthropic": ("claude-haiku-4-5", "anthropic"),
    "openai": ("gpt-5.4-mini", "responses"),
    "gemini": ("gemini-3-flash", "gemini"),
    "self_hosted": ("qwen3-8b", "chat"),
}


def profile(provider: str | None = "anthropic", **changes: Any) -> TurnProfile:
    fields: dict[str, Any] = {
        "name": "writer",
        "model": PROVIDERS[provider][0] if provider in PROVIDERS else "some-model",
        "provider": provider,
        "system_prompt": "You write.",
    }
    if provider == "self_hosted":
        fields["self_hosted_server_id"] = "local"
    return TurnProfile(**(fields | changes))


def mcp_tools(**changes: Any) -> dict[str, Any]:
    server = {"name": "fake", "command": sys.executable, "args": [str(MCP_SERVER)], "env": {}}
    return {"mcp_servers": [server]} | changes


def request(turn_profile: TurnProfile | None = None, **changes: Any) -> TurnRequest:
    fields: dict[str, Any] = {
        "kind": "step",
        "mob_id": "m",
        "run_id": "r",
        "flow_id": "main",
        "step_id": "draft",
        "member": Member("writer-1", 0, "writer"),
        "message": "Write about caching",
        "timeout_ms": 60_000,
        "profile": turn_profile or profile(),
    }
    return TurnRequest(**(fields | changes))


def run(driver: LlmDriver, turn: TurnRequest, stop: threading.Event | None = None) -> Outcome:
    return driver.run(turn, stop or threading.Event())


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    server = FakeProvider()
    yield server
    server.close()


@pytest.fixture
def make_driver(fake: FakeProvider, tmp_path: Path) -> Iterator[Callable[..., LlmDriver]]:
    made: list[LlmDriver] = []

    def make(options: LlmOptions | None = None, **kwargs: Any) -> LlmDriver:
        kwargs.setdefault("env", fake.env() | {"PATH": "/usr/bin:/bin"})
        kwargs.setdefault("workdir", tmp_path)
        kwargs.setdefault("allow_mcp", True)  # the tests start their own MCP server
        driver = LlmDriver(options, **kwargs)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()
