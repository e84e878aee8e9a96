"""Shared fixtures: the real CLI, the real sample files, and a guard for the user's store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from mobctl.cli.app import app

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "upstream"
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "EXPECTED.md").is_file(),
    reason=f"the upstream Meerkat corpus is not beside this checkout ({CORPUS}); CI has it",
)
SAMPLES = REPO / "sample-mobs"

# CI loads Hypothesis's own "ci" profile (derandomized, no deadline). On a developer's
# shared machine, a slow example must not fail a test either.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
if not os.environ.get("CI"):
    settings.load_profile("dev")


@pytest.fixture(autouse=True)
def _guard_user_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No test may touch a real store or the user's home: point both into a temp dir."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MOBCTL_STORE", str(home / "store"))
    monkeypatch.delenv("MOBCTL_DEBUG", raising=False)
    monkeypatch.delenv("MOBCTL_KEY_PASSPHRASE", raising=False)
    for variable in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(variable, raising=False)  # rich reads them; a CI runner may set them
    monkeypatch.delenv("MOBCTL_MAX_RECORD_BYTES", raising=False)
    real_store = Path.cwd() / ".mobctl"
    existed = real_store.exists()
    yield
    assert existed or not real_store.exists(), "a test created ./.mobctl outside its temp dir"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The test's own store directory (created by the first write). Tests of the store itself
    get the opened store instead (``tests/store/conftest.py``)."""
    return tmp_path / "store"


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


def cli(*args: str | Path) -> Result:
    """Run mobctl in-process through Typer's CliRunner (stdout and stderr kept apart)."""
    runner = CliRunner()
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def mobctl_process(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mobctl`` entry point as a real child process."""
    exe = shutil.which("mobctl")
    command = [exe] if exe else [sys.executable, "-m", "mobctl"]
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
