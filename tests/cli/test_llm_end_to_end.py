"""``sample-mobs/code-review.toml`` end to end with ``--driver llm``: the real CLI in a child
process, the real Anthropic SDK, the fake provider server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SAMPLES, mobctl_process
from tests.fakes.provider_server import FakeProvider, Recorded, Reply, Text

VERDICT = {"approve": True, "comments": ["tests cover the change"]}


def answer(request: Recorded) -> Reply:
    """The lead plans and merges in text; each reviewer answers its verdict as JSON."""
    asked = json.dumps(request.body["messages"])
    if "Review PR-42" in asked:
        return Text(json.dumps(VERDICT))
    if "Merge these verdicts" in asked:
        return Text("Approved: 3 of 3 reviewers approve.")
    return Text("Files: cache.py. Risk: stale entries.")


def test_code_review_runs_with_the_llm_driver(tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.default = answer
    env = fake.env() | {"MOBCTL_STORE": str(tmp_path / "store")}
    try:
        mob = SAMPLES / "code-review.toml"
        assert mobctl_process("register", mob, env=env).returncode == 0
        spawned = mobctl_process(
            "members", "spawn", "code-review", "reviewer", "--count", "3", env=env
        )
        assert spawned.returncode == 0, spawned.stderr
        ran = mobctl_process("run", mob, "-p", "change=PR-42", "--driver", "llm", "--json", env=env)
    finally:
        fake.close()
    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    assert document["status"] == "completed"
    assert document["steps"] == {"plan": "completed", "review": "completed", "merge": "completed"}
    steps = document["result"]["steps"]
    assert steps["plan"] == "Files: cache.py. Risk: stale entries."
    assert steps["merge"] == [{"target": "lead-1", "output": "Approved: 3 of 3 reviewers approve."}]
    review = steps["review"]
    assert len(review) >= 2 and all(verdict == VERDICT for verdict in review.values())
    # every member's turn went through the SDK to the server, with its profile
    systems = {r.body["model"]: r.body.get("system") for r in fake.requests}
    assert systems["claude-opus-4-8"].startswith("Split the change into reviewable parts")
    reviewer_skill = (SAMPLES / "skills" / "reviewer.md").read_text()
    assert systems["claude-sonnet-4-6"] == reviewer_skill
    reviews = [r for r in fake.requests if r.body["model"] == "claude-sonnet-4-6"]
    assert len(reviews) >= 2
    assert all(r.body["output_config"]["format"]["type"] == "json_schema" for r in reviews)
    # the reviewer's shell and git MCP server were not granted: warned once, not started
    assert "run with --allow-mcp" in ran.stderr and "run with --allow-shell" in ran.stderr
    assert document["accounting"]["members_usage_unavailable"] == 0
