"""What the llm driver checks before a run writes anything, and its once-per-run warnings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mobctl.drivers.base import DriverError, Failed
from mobctl.drivers.llm.driver import LlmDriver
from mobctl.drivers.llm.providers import sdk_installed
from mobctl.errors import ExitCode, MissingCredentials
from tests.drivers.llm.conftest import profile, request, run

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
    ],
)
def test_a_missing_key_is_missing_credentials_naming_the_variable(provider, variable) -> None:
    driver = LlmDriver(env={variable: ""})
    with pytest.raises(MissingCredentials) as caught:
        driver.preflight([profile(provider)])
    assert caught.value.code == "missing_credentials"
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message == f"profile 'writer' uses {provider}: set {variable}"
    assert caught.value.hint == "credentials come only from the environment, never from --driver"


def test_a_self_hosted_server_needs_its_url() -> None:
    with pytest.raises(MissingCredentials) as caught:
        LlmDriver(env={}).preflight([profile("self_hosted", self_hosted_server_id="gpu-box.1")])
    assert caught.value.message == (
        "profile 'writer' uses a self_hosted server: set MOBCTL_SELF_HOSTED_GPU_BOX_1_URL to its "
        "base URL (e.g. http://127.0.0.1:8000/v1)"
    )
    with pytest.raises(MissingCredentials, match="set OPENAI_BASE_URL to its base URL"):
        LlmDriver(env={}).preflight([profile("other", model="llama")])


def test_a_turn_without_credentials_fails_without_a_request(fake) -> None:
    outcome = run(LlmDriver(env={"ANTHROPIC_BASE_URL": fake.url}), request())
    assert outcome == Failed("profile 'writer' uses anthropic: set ANTHROPIC_API_KEY")
    assert fake.requests == []


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(DriverError) as caught:
        LlmDriver(env={}).preflight([profile(provider=None, model="mystery-1")])
    assert caught.value.message == "profile 'writer': the provider of model 'mystery-1' is unknown"


def test_sdk_detection_uses_the_real_import_system() -> None:
    assert sdk_installed("anthropic") and sdk_installed("google.genai")
    assert not sdk_installed("mobctl_no_such_sdk")
    assert not sdk_installed("mobctl_no_such_namespace.genai")


def test_a_missing_sdk_is_invalid_driver_naming_the_pip_command(tmp_path) -> None:
    """A real interpreter whose import path lacks the anthropic SDK (everything else of this
    environment is there)."""
    import anthropic

    site = Path(anthropic.__file__).resolve().parents[1]
    overlay = tmp_path / "site"
    overlay.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith("anthropic"):
            (overlay / entry.name).symlink_to(entry)
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(overlay)!r}, {str(REPO)!r}]\n"
        "from mobctl.drivers.base import DriverError, TurnProfile\n"
        "from mobctl.drivers.llm.driver import LlmDriver\n"
        "p = TurnProfile(name='lead', model='claude-haiku-4-5', provider='anthropic')\n"
        "try:\n"
        "    LlmDriver(env={'ANTHROPIC_API_KEY': 'k'}).preflight([p])\n"
        "except DriverError as e:\n"
        "    print(e.code, e.exit_code, e.message, e.hint, sep='|')\n"
        "import importlib.util\n"
        "print(importlib.util.find_spec('anthropic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "invalid_driver|2|profile 'lead' uses anthropic, whose SDK (anthropic) is not installed"
        "|pip install 'mobctl[anthropic]' (or 'mobctl[llm]' for every provider)",
        "None",
    ]


def test_warnings_name_unsupported_params_missing_tool_families_and_the_shell(fake) -> None:
    driver = LlmDriver(env=fake.env())
    tools = {"comms": True, "memory": True, "shell": True, "mcp": ["github"], "workgraph": False}
    warnings = driver.preflight(
        [
            profile("openai", provider_params={"thinking_budget_tokens": 9, "top_p": 0.1}),
            profile("anthropic", name="lead", tools=tools),
            profile("self_hosted", name="local", provider_params={"reasoning": "off"}),
            profile("gemini", name="g", provider_params={"provider_tag": {"provider": "gemini"}}),
            profile("openai"),  # the same profile twice: one warning
        ]
    )
    assert warnings == [
        "profile 'writer': openai responses has no field for provider_params "
        "thinking_budget_tokens; ignored",
        "profile 'lead': the comms, memory, mcp (host servers) tools are Meerkat-runtime "
        "features; the llm driver does not provide them",
        "profile 'lead' asks for a shell; not granted (run with --allow-shell)",
        "profile 'local': chat completions has no field for provider_params reasoning; ignored",
        "profile 'g': provider_params.provider_tag is not used by the llm driver",
    ]
    read_only = profile(tools={"shell": True, "read_only": True})
    assert LlmDriver(env=fake.env(), allow_shell=True).preflight([read_only]) == [
        "profile 'writer' is read_only: mobctl cannot confine a shell to reads, so it offers "
        "no shell tool"
    ]
    assert json.dumps(warnings).count("secret") == 0


def test_anthropic_sampling_params_warn() -> None:
    warnings = LlmDriver(env={"ANTHROPIC_API_KEY": "k"}).preflight(
        [profile(provider_params={"temperature": 0.2, "top_p": 0.9, "max_output_tokens": 9})]
    )
    assert warnings == [
        "profile 'writer': anthropic messages has no field for provider_params temperature, "
        "top_p; ignored"
    ]


def test_a_closed_driver_refuses_turns(fake) -> None:
    driver = LlmDriver(env=fake.env())
    driver.close()
    assert run(driver, request()) == Failed("the llm driver is closed: the run is over")
    driver.close()  # idempotent
