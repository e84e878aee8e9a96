"""The scenarios of flow-semantics §14.2, through the real CLI, asserting the exact events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import cli

HEAD = """
[mob]
id = "s"

[profiles.w]
model = "claude-sonnet-4-6"
runtime_mode = "turn_driven"
"""


def setup(tmp_path: Path, definition: str, fixtures: str) -> tuple[Path, Path, Path]:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + definition)
    replies = tmp_path / "fixtures.toml"
    replies.write_text(fixtures)
    return mob, replies, tmp_path / "store"


def events(store: Path, mob: str = "s") -> list[dict[str, Any]]:
    lines = (store / "mobs" / mob / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["kind"] for line in lines]


def flow_events(store: Path) -> list[dict[str, Any]]:
    return [
        e
        for e in events(store)
        if e["type"] not in ("mob_created", "member_spawned", "mob_definition_updated")
    ]


def brief(kinds: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in kinds:
        key = e.get("step_id") or e.get("flow_id")
        extra = e.get("reason") or e.get("cause") or ""
        out.append(" ".join(str(p) for p in (e["type"], key, extra) if p))
    return out


def run(mob: Path, replies: Path, store: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("run", mob, *args, "--driver", f"scripted:{replies}", "--store", store, "--json")
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_a_two_steps_success(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n',
        '[[reply]]\nstep = "a"\noutput = "A"\n[[reply]]\nstep = "b"\noutput = "B"\n',
    )
    code, doc = run(mob, replies, store, "-p", "topic=x")
    assert code == 0
    kinds = flow_events(store)
    run_id = doc["run_id"]
    target = {"identity": "w-1", "generation": 0}
    assert kinds == [
        {"type": "flow_started", "run_id": run_id, "flow_id": "main", "params": {"topic": "x"}},
        {
            "type": "step_dispatched",
            "run_id": run_id,
            "step_id": "a",
            "target": target,
            "attempt": 1,
        },
        {
            "type": "step_target_completed",
            "run_id": run_id,
            "step_id": "a",
            "target": target,
            "output": "A",
        },
        {"type": "step_completed", "run_id": run_id, "step_id": "a"},
        {
            "type": "step_dispatched",
            "run_id": run_id,
            "step_id": "b",
            "target": target,
            "attempt": 1,
        },
        {
            "type": "step_target_completed",
            "run_id": run_id,
            "step_id": "b",
            "target": target,
            "output": "B",
        },
        {"type": "step_completed", "run_id": run_id, "step_id": "b"},
        {
            "type": "flow_completed",
            "run_id": run_id,
            "flow_id": "main",
            "structured_output": {"steps": {"a": {"w-1": "A"}, "b": {"w-1": "B"}}},
        },
    ]
    assert doc["status"] == "completed" and doc["cause"] is None
    assert doc["result"] == {"steps": {"a": {"w-1": "A"}, "b": {"w-1": "B"}}}
    assert doc["steps"] == {"a": "completed", "b": "completed"}
    snapshot = json.loads(next((store / "mobs" / "s" / "runs").glob("*.json")).read_text())
    assert [(e["step_id"], e["status"]) for e in snapshot["step_ledger"]] == [
        ("a", "dispatched"),
        ("a", "completed"),
        ("b", "dispatched"),
        ("b", "completed"),
    ]
    assert snapshot["root_step_outputs"] == {"a": {"w-1": "A"}, "b": {"w-1": "B"}}
    assert snapshot["mobctl"]["owner"]["released_at"] is not None


def test_b_failure_with_retry_and_skip(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        "[limits]\nmax_step_retries = 1\n"
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
        '[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n'
        '[flows.main.steps.c]\nrole = "w"\nmessage = "c"\ndepends_on = ["b"]\n',
        '[[reply]]\nstep = "a"\noutput = "A"\n[[reply]]\nstep = "b"\nfail = "flaky"\n',
    )
    code, doc = run(mob, replies, store)
    assert code == 3
    assert brief(flow_events(store)) == [
        "flow_started main",
        "step_dispatched a",
        "step_target_completed a",
        "step_completed a",
        "step_dispatched b",
        "step_target_failed b flaky",
        "step_dispatched b",
        "step_target_failed b flaky",
        "step_failed b flaky",
        "step_skipped c dependency 'b' failed",
        f"flow_failed main flow failed for run {doc['run_id']}: root frame sealed failed",
    ]
    attempts = [
        e["attempt"]
        for e in flow_events(store)
        if e["type"] == "step_dispatched" and e["step_id"] == "b"
    ]
    assert attempts == [1, 2]
    assert flow_events(store)[-1]["cause"] == "step_error"
    assert doc["steps"] == {"a": "completed", "b": "failed", "c": "skipped"}


def test_c_condition_false(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ncondition = { op = "eq", path = "params.go", value = true }\n'
        '[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n',
        '[[reply]]\noutput = "x"\n',
    )
    code, doc = run(mob, replies, store, "-p", "go=false")
    assert code == 0
    assert brief(flow_events(store)) == [
        "flow_started main",
        "step_skipped a condition evaluated to false",
        "step_skipped b dependency 'a' was skipped",
        "flow_completed main",
    ]
    assert "structured_output" not in flow_events(store)[-1]
    assert doc["result"] is None


def test_d_branch(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.start]\nrole = "w"\nmessage = "go"\n'
        '[flows.main.steps.branch_a]\nrole = "w"\nmessage = "a"\ndepends_on = ["start"]\nbranch = "choose"\n'
        'condition = { op = "eq", path = "params.choice", value = "a" }\n'
        '[flows.main.steps.branch_b]\nrole = "w"\nmessage = "b"\ndepends_on = ["start"]\nbranch = "choose"\n'
        'condition = { op = "eq", path = "params.choice", value = "b" }\n'
        '[flows.main.steps.join]\nrole = "w"\nmessage = "join {{ steps.branch_b }}"\ndepends_on = ["branch_a", "branch_b"]\ndepends_on_mode = "any"\n',
        '[[reply]]\noutput = "ok"\n',
    )
    code, doc = run(mob, replies, store, "-p", "choice=b")
    assert code == 0
    assert brief(flow_events(store)) == [
        "flow_started main",
        "step_dispatched start",
        "step_target_completed start",
        "step_completed start",
        "step_skipped branch_a condition evaluated to false",
        "step_dispatched branch_b",
        "step_target_completed branch_b",
        "step_completed branch_b",
        "step_dispatched join",
        "step_target_completed join",
        "step_completed join",
        "flow_completed main",
    ]
    assert doc["steps"] == {
        "start": "completed",
        "branch_a": "skipped",
        "branch_b": "completed",
        "join": "completed",
    }


def test_d_branch_winner_skips_the_other(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.start]\nrole = "w"\nmessage = "go"\n'
        '[flows.main.steps.branch_a]\nrole = "w"\nmessage = "a"\ndepends_on = ["start"]\nbranch = "choose"\n'
        'condition = { op = "eq", path = "params.choice", value = "a" }\n'
        '[flows.main.steps.branch_b]\nrole = "w"\nmessage = "b"\ndepends_on = ["start"]\nbranch = "choose"\n'
        'condition = { op = "in", path = "params.choice", values = ["a", "b"] }\n',
        '[[reply]]\noutput = "ok"\n',
    )
    code, _ = run(mob, replies, store, "-p", "choice=a")
    assert code == 0
    assert "step_skipped branch_b branch 'choose' was won by 'branch_a'" in brief(
        flow_events(store)
    )


def test_e_loop_two_iterations(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.draft]\nrole = "w"\nmessage = "draft after {{ steps.critique }}"\n'
        '[flows.main.steps.critique]\nrole = "w"\nmessage = "critique"\ndispatch_mode = "one_to_one"\n'
        'collection_policy = { type = "any" }\n'
        """expected_schema_ref = '{"type": "object", "properties": {"approved": {"type": "boolean"}}}'\n"""
        '[flows.main.root.nodes.rounds]\nkind = "repeat_until"\nloop_id = "rounds"\ndepends_on = []\n'
        'depends_on_mode = "all"\nmax_iterations = 3\nuntil = { op = "eq", path = "steps.critique.approved", value = true }\n'
        '[flows.main.root.nodes.rounds.body.nodes.d]\nkind = "step"\nstep_id = "draft"\ndepends_on = []\ndepends_on_mode = "all"\n'
        '[flows.main.root.nodes.rounds.body.nodes.c]\nkind = "step"\nstep_id = "critique"\ndepends_on = ["d"]\ndepends_on_mode = "all"\n',
        '[[reply]]\nstep = "draft"\niteration = 0\noutput = "v1"\n'
        '[[reply]]\nstep = "draft"\noutput = "v2"\n'
        '[[reply]]\nstep = "critique"\niteration = 0\njson = { approved = false }\n'
        '[[reply]]\nstep = "critique"\njson = { approved = true }\n',
    )
    code, doc = run(mob, replies, store)
    assert code == 0, doc
    kinds = flow_events(store)
    assert brief(kinds) == [
        "flow_started main",
        "step_dispatched draft",
        "step_target_completed draft",
        "step_completed draft",
        "step_dispatched critique",
        "step_target_completed critique",
        "step_completed critique",
        "step_dispatched draft",
        "step_target_completed draft",
        "step_completed draft",
        "step_dispatched critique",
        "step_target_completed critique",
        "step_completed critique",
        "flow_completed main",
    ]
    assert kinds[-1]["structured_output"] == {
        "steps": {"draft": {"w-1": "v2"}, "critique": {"approved": True}}
    }
    snapshot = json.loads(next((store / "mobs" / "s" / "runs").glob("*.json")).read_text())
    run_id = doc["run_id"]
    assert sorted(snapshot["frames"]) == [
        f"{run_id}-root",
        f"{run_id}-root::rounds::iter-0",
        f"{run_id}-root::rounds::iter-1",
    ]
    loop = snapshot["loops"][f"{run_id}-root::rounds"]["kernel_state"]
    assert (loop["phase"], loop["current_iteration"], loop["last_completed_iteration"]) == (
        "Completed",
        2,
        1,
    )
    assert len(snapshot["loop_iteration_outputs"]["rounds"]) == 2
    assert snapshot["root_step_outputs"] == {}
    assert doc["result"] is None
    ledger = {(e["step_id"], e["status"]): e.get("output") for e in snapshot["step_ledger"]}
    assert ledger[("draft", "completed")] == {"w-1": "v2"}
    assert ledger[("critique", "completed")] == {"approved": True}


def test_timeout_is_never_retried_and_deadline_exits_5(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[limits]\nmax_step_retries = 3\n[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 200\n',
        '[[reply]]\ndelay_ms = 5000\noutput = "late"\n',
    )
    code, _ = run(mob, replies, store)
    assert code == 3
    assert brief(flow_events(store))[1:4] == [
        "step_dispatched a",
        "step_target_failed a timeout + canceled after 200ms",
        "step_failed a timeout + canceled after 200ms",
    ]
    code, doc = run(mob, replies, store, "--timeout", "100ms")
    assert code == 5
    assert doc["cause"] == "step_error"


def test_malformed_json_is_retried(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[limits]\nmax_step_retries = 1\n[flows.main.steps.a]\nrole = "w"\nmessage = "a"\noutput_format = "json"\n',
        '[[reply]]\nattempt = 1\noutput = "not json"\n[[reply]]\noutput = "```json\\n{\\"ok\\": 1}\\n```"\n',
    )
    code, doc = run(mob, replies, store)
    assert code == 0
    failed = [e for e in flow_events(store) if e["type"] == "step_target_failed"]
    assert failed[0]["reason"].startswith("malformed JSON output for step 'a' target 'w-1': ")
    assert doc["outputs"] == {"a": {"w-1": {"ok": 1}}}


def test_an_output_number_that_overflows_is_malformed(tmp_path: Path) -> None:
    """`1e999` parses to infinity, which the store cannot write: it crashed the run (exit 70)."""
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\noutput_format = "json"\n',
        '[[reply]]\noutput = "[1e999]"\n',
    )
    code, doc = run(mob, replies, store)
    assert (code, doc["status"]) == (3, "failed")
    failed = [e for e in flow_events(store) if e["type"] == "step_target_failed"]
    assert failed[0]["reason"] == (
        "malformed JSON output for step 'a' target 'w-1': the number 1e999 is out of range "
        '(Infinity is not valid JSON); raw_output="[1e999]..."'
    )


def test_quorum_fan_out_and_insufficient_targets(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.vote]\nrole = "w"\nmessage = "vote"\ncollection_policy = { type = "quorum", n = 2 }\n',
        '[[reply]]\nmember = "w-2"\nfail = "no"\n[[reply]]\noutput = "yes"\n',
    )
    code, doc = run(mob, replies, store)
    assert (code, doc["cause"]) == (3, "insufficient_targets")
    assert (
        flow_events(store)[-1]["reason"]
        == "insufficient targets for step vote: required 2, available 1"
    )
    assert cli("members", "spawn", "s", "w", "--count", "2", "--store", store).exit_code == 0
    code, doc = run(mob, replies, store)
    assert code == 0
    assert doc["outputs"]["vote"] == {"w-1": "yes", "w-3": "yes"}


def test_params_and_driver_errors(tmp_path: Path) -> None:
    mob, _replies, store = setup(
        tmp_path,
        '[flows.main.steps.a]\nrole = "w"\nmessage = "{{ params.x }}"\n',
        '[[reply]]\noutput = "x"\n',
    )
    bad = cli("run", mob, "--params", "[1]", "--store", store)
    assert (bad.exit_code, bad.stderr.splitlines()[0]) == (
        2,
        "error[usage]: --params must be a JSON object",
    )
    driver = cli("run", mob, "--driver", "telepathy", "--store", store)
    assert driver.exit_code == 2 and driver.stderr.startswith(
        "error[invalid_driver]: invalid driver 'telepathy'"
    )
    flows = cli("run", mob, "nope", "--store", store)
    assert flows.exit_code == 1 and "has no flow 'nope'" in flows.stderr
    ok = cli("run", mob, "-P", "x=[1, 2]", "--store", store, "--json")
    assert json.loads(ok.stdout)["outputs"] == {"a": {"w-1": "[1,2]"}}
    invalid = tmp_path / "invalid.toml"
    invalid.write_text(HEAD + '[flows.main.steps.a]\nrole = "ghost"\nmessage = "x"\n')
    refused = cli("run", invalid, "--store", store)
    assert refused.exit_code == 1
    assert "error[flow_unknown_role]" in refused.stderr
