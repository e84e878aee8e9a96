"""Every sample flow runs to completion in CI with its scripted fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, cli

RUNS = [
    ("minimal.toml", "main", ["-p", "name=Ada"], "hello"),
    ("code-review.toml", "main", ["-p", "change=PR-42"], "code-review"),
    ("triage.toml", "main", ["-p", "incident=db down"], "triage"),
    (
        "triage.toml",
        "escalate",
        ["-p", "incident=db", "-p", "escalate=true", "-p", "age_minutes=45"],
        "triage",
    ),
    ("draft-critique.toml", "main", ["-p", "topic=caching"], "draft-critique"),
    (
        "release-pipeline.toml",
        "main",
        ["-p", "version=1.4.0", "-p", "env=staging", "-p", "approved=true"],
        "release-pipeline",
    ),
    ("external-bridge.toml", "main", ["-p", "brief=a cat"], "external-bridge"),
]


@pytest.mark.parametrize(
    ("file", "flow", "params", "fixtures"), RUNS, ids=[f"{r[0]}:{r[1]}" for r in RUNS]
)
def test_sample_flow_runs(
    tmp_path: Path, file: str, flow: str, params: list[str], fixtures: str
) -> None:
    store = tmp_path / "store"
    if file == "code-review.toml":
        assert cli("register", SAMPLES / file, "--store", store).exit_code == 0
        assert (
            cli(
                "members", "spawn", "code-review", "reviewer", "--count", "3", "--store", store
            ).exit_code
            == 0
        )
    if file == "draft-critique.toml":
        profile = SAMPLES / "profiles" / "house-editor.toml"
        assert cli("profiles", "create", "house-editor", profile, "--store", store).exit_code == 0
    driver = f"scripted:{SAMPLES / 'fixtures' / (fixtures + '.toml')}"
    result = cli(
        "run", SAMPLES / file, flow, *params, "--driver", driver, "--store", store, "--json"
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "completed"
    assert all(status in ("completed", "skipped") for status in document["steps"].values()), (
        document["steps"]
    )


def test_code_review_quorum_outcome(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli("register", SAMPLES / "code-review.toml", "--store", store)
    cli("members", "spawn", "code-review", "reviewer", "--count", "3", "--store", store)
    driver = f"scripted:{SAMPLES / 'fixtures' / 'code-review.toml'}"
    document = json.loads(
        cli(
            "run",
            "code-review",
            "-p",
            "change=PR-42",
            "--driver",
            driver,
            "--store",
            store,
            "--json",
        ).stdout
    )
    verdicts = document["outputs"]["review"]
    assert sorted(verdicts) == ["reviewer-1", "reviewer-2", "reviewer-3"]
    assert verdicts["reviewer-3"]["approve"] is False
    assert document["outputs"]["merge"][0]["target"] == "lead-1"
