"""``action.yml``: valid against SchemaStore's schema of action metadata (what GitHub reads),
clean under zizmor's static analysis (no template injection, actions pinned), and its steps'
scripts do what the README says when run as GitHub runs them (bash, inputs in env); the
README's workflow example is a valid workflow that passes only inputs the action has."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

ACTION = REPO / "action.yml"
BIN = Path(sys.executable).parent


def _tool(
    name: str, *args: str | Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / name), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def _workflow() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## CI\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)[0]


def test_action_metadata_is_valid() -> None:
    result = _tool("check-jsonschema", "--builtin-schema", "vendor.github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_action() -> None:
    result = _tool("zizmor", "--offline", "--no-progress", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_workflow_is_valid_and_uses_the_actions_inputs(tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "mobs.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(_workflow())
    checked = _tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = tmp_path / "zizmor.yml"  # the action itself is referenced by its release tag
    config.write_text(
        "rules:\n  unpinned-uses:\n    config:\n      policies:\n"
        '        "mobctl/*": ref-pin\n        "*": hash-pin\n'
    )
    audited = _tool("zizmor", "--offline", "--no-progress", "--config", config, workflow)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    inputs = yaml.safe_load(ACTION.read_text())["inputs"]
    steps = yaml.safe_load(_workflow())["jobs"]["mobs"]["steps"]
    [ours] = [step for step in steps if step["uses"].startswith("mobctl/mobctl@")]
    assert set(ours["with"]) <= set(inputs)


def _step(name: str) -> dict:
    steps = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    return next(step for step in steps if step["name"] == name)


def _run_step(
    name: str, inputs: dict[str, str], cwd: Path, temp: Path
) -> subprocess.CompletedProcess[str]:
    """A step's script as GitHub runs it: bash with its env, ``${{ inputs.X }}`` expanded."""
    step = _step(name)
    defaults = {
        k: v.get("default", "") for k, v in yaml.safe_load(ACTION.read_text())["inputs"].items()
    }
    values = defaults | inputs
    env = {
        key: re.sub(r"\$\{\{ inputs\.(\w+) \}\}", lambda m: values[m[1]], value)
        for key, value in step.get("env", {}).items()
    }
    assert "${{" not in step["run"]  # inputs reach the script only through env: no injection
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env, "RUNNER_TEMP": str(temp), "PATH": f"{BIN}:{os.environ['PATH']}"},
        timeout=300,
    )


def test_the_validate_and_test_steps(tmp_path: Path) -> None:
    samples = "sample-mobs/minimal.toml sample-mobs/triage.toml"
    junit = tmp_path / "junit.xml"
    inputs = {"paths": samples, "tests": "sample-mobs/tests/minimal.test.toml", "junit": str(junit)}
    validated = _run_step("Validate", inputs, REPO, tmp_path)
    assert (validated.returncode, validated.stdout) == (0, "")
    tested = _run_step("Test", inputs, REPO, tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.endswith("2 passed, 0 failed\n")
    assert junit.read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
    invalid = _run_step(
        "Validate", {"paths": "sample-mobs/invalid/empty_profiles.toml"}, REPO, tmp_path
    )
    assert invalid.returncode == 1
    assert invalid.stdout.startswith("::error file=sample-mobs/invalid/empty_profiles.toml,line=")
    warned = _run_step(
        "Validate",
        {"paths": "sample-mobs/invalid/unknown_key.toml", "strict": "true"},
        REPO,
        tmp_path,
    )
    assert warned.returncode == 1


def test_the_sarif_step(tmp_path: Path) -> None:
    result = _run_step(
        "Validate as SARIF", {"paths": "sample-mobs/invalid/empty_profiles.toml"}, REPO, tmp_path
    )
    assert result.returncode == 0  # the upload step reports; validation fails the job later
    sarif = json.loads((tmp_path / "mobctl.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"][0]["ruleId"] == "empty_profiles"


@pytest.mark.parametrize("name", ["Validate", "Validate as SARIF", "Test", "Install mobctl"])
def test_every_script_reads_inputs_from_env_only(name: str) -> None:
    assert "${{" not in _step(name)["run"]
