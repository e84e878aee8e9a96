"""``--driver llm[:OPTIONS]`` and ``ROLE=llm``: parsing and registration."""

from __future__ import annotations

import pytest

from mobctl.drivers.base import DriverError
from mobctl.drivers.echo import EchoDriver
from mobctl.drivers.llm.driver import LlmDriver
from mobctl.drivers.llm.options import LlmOptions, parse_options
from mobctl.drivers.registry import DriverConfig, build_driver, parse_drivers
from tests.drivers.llm.conftest import profile

HINT = "use llm, llm:model=NAME or llm:max_tool_rounds=N (options joined by ',')"


def test_options() -> None:
    assert parse_options("") == LlmOptions(None, 16)
    assert parse_options("model=claude-haiku-4-5, max_tool_rounds=3") == LlmOptions(
        "claude-haiku-4-5", 3
    )


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("model", "invalid llm driver option 'model': expected KEY=VALUE"),
        ("model=", "invalid llm driver option 'model=': expected KEY=VALUE"),
        (
            "max_tool_rounds=0",
            "invalid llm driver option 'max_tool_rounds=0': max_tool_rounds must be an integer from 1 to 1000",
        ),
        (
            "max_tool_rounds=x",
            "invalid llm driver option 'max_tool_rounds=x': max_tool_rounds must be an integer from 1 to 1000",
        ),
        ("api_key=sk", "unknown llm driver option 'api_key'"),
    ],
)
def test_bad_options_are_invalid_driver(argument: str, message: str) -> None:
    with pytest.raises(DriverError) as caught:
        build_driver(f"llm:{argument}")
    assert (caught.value.code, caught.value.message, caught.value.hint) == (
        "invalid_driver",
        message,
        HINT,
    )


def test_llm_for_every_role_or_one_role() -> None:
    env = {"ANTHROPIC_API_KEY": "k"}
    everyone = parse_drivers(["llm:model=claude-haiku-4-5"], DriverConfig(env=env))
    assert isinstance(everyone.default, LlmDriver)
    assert everyone.default.options == LlmOptions("claude-haiku-4-5", 16)
    one = parse_drivers(["reviewer=llm:max_tool_rounds=2"], DriverConfig(env=env, allow_shell=True))
    assert isinstance(one.default, EchoDriver)
    reviewer = one.for_role("reviewer")
    assert isinstance(reviewer, LlmDriver)
    assert reviewer.options.max_tool_rounds == 2
    profiles = {
        "reviewer": profile(name="reviewer", tools={"comms": True}),
        "writer": profile(tools={"comms": True}),  # served by echo, which checks nothing
    }
    assert one.preflight(profiles) == [
        "profile 'reviewer': the comms tools are Meerkat-runtime features; the llm driver does "
        "not provide them"
    ]
    one.close()
    everyone.close()
