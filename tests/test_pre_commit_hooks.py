"""``.pre-commit-hooks.yaml``: pre-commit installs the hooks from this repository (``pre-commit
try-repo``, which pip-installs mobctl into an environment of its own) in a temporary git
repository, and runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SAMPLES

pytestmark = pytest.mark.slow


def _git(where: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=where, check=True, capture_output=True)


def _try(project: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), hook, "--all-files"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
    )


def test_the_hooks_declare_what_they_run() -> None:
    hooks = {
        hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    }
    assert hooks["mobctl-validate"]["entry"] == "mobctl validate --definitions-only"
    assert hooks["mobctl-validate"]["files"] == r"\.toml$"
    assert hooks["mobctl-test"]["entry"] == "mobctl test"
    assert hooks["mobctl-test"]["pass_filenames"] is False


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_installs_and_runs_both_hooks(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "pre-commit-home"
    project.mkdir()
    _git(project, "init", "-q")
    _git(project, "config", "user.email", "t@example.com")
    _git(project, "config", "user.name", "t")
    shutil.copy(SAMPLES / "minimal.toml", project / "hello.toml")
    (project / "fixtures.toml").write_text('[[reply]]\nstep = "greet"\noutput = "Hello, Ada!"\n')
    (project / "tests").mkdir()
    suite = project / "tests" / "hello.test.toml"
    suite.write_text(
        '[[case]]\nname = "greets"\nmob = "../hello.toml"\nparams = { name = "Ada" }\n'
        'drivers = ["scripted:../fixtures.toml"]\n\n'
        '[[case.expect.output]]\npath = "steps.greet.assistant-1"\nop = "eq"\nvalue = "Hello, Ada!"\n'
    )
    _git(project, "add", "-A")

    validated = _try(project, "mobctl-validate", home)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "mobctl validate" in validated.stdout and "Passed" in validated.stdout
    tested = _try(project, "mobctl-test", home)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PASS tests/hello.test.toml::greets" not in tested.stdout  # pre-commit hides a pass
    assert "mobctl test" in tested.stdout and "Passed" in tested.stdout

    (project / "bad.toml").write_text('[mob]\nid = "bad"\n')
    suite.write_text(suite.read_text().replace('value = "Hello, Ada!"', 'value = "Hi"'))
    _git(project, "add", "-A")
    failed = _try(project, "mobctl-validate", home)
    assert failed.returncode == 1
    assert (
        "bad.toml:1:1: error[empty_profiles] profiles: mob definition must define at least one profile"
        in failed.stdout
    )
    assert "fixtures.toml" not in failed.stdout  # not a definition: skipped
    assert "hello.test.toml" not in failed.stdout
    broken = _try(project, "mobctl-test", home)
    assert broken.returncode == 1
    assert "FAIL tests/hello.test.toml::greets" in broken.stdout
    assert "0 passed, 1 failed" in broken.stdout
