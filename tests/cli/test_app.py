"""The CLI's entry point: what libraries say on their own never reaches the terminal raw."""

from __future__ import annotations

import subprocess
import sys

import pytest

SPEAK = (
    "import logging, warnings\n"
    "logging.getLogger('google_genai.types').warning('RAW SDK RECORD')\n"
    "logging.getLogger('anthropic._base_client').warning('RAW SDK RECORD')\n"
    "warnings.warn('RAW LIBRARY WARNING')\n"
)


def stderr_of(code: str, *options: str) -> str:
    done = subprocess.run(
        [sys.executable, *options, "-c", code], capture_output=True, text=True, timeout=60
    )
    return done.stderr


def test_libraries_speak_raw_without_it() -> None:  # what the next test removes
    said = stderr_of(SPEAK)
    assert "RAW SDK RECORD" in said and "RAW LIBRARY WARNING" in said


def test_sdk_records_and_warnings_never_reach_the_terminal() -> None:
    quiet = "from mobctl.cli.app import quiet_libraries\nquiet_libraries()\n"
    assert stderr_of(quiet + SPEAK) == ""


@pytest.mark.parametrize("option", ["-Wdefault", "-Werror::DeprecationWarning"])
def test_warnings_asked_for_are_still_shown(option: str) -> None:
    quiet = "from mobctl.cli.app import quiet_libraries\nquiet_libraries()\n"
    said = stderr_of(quiet + SPEAK, option)
    assert "RAW LIBRARY WARNING" in said and "RAW SDK RECORD" not in said
