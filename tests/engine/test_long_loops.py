"""Long `repeat_until` loops: an iteration journals what it changed, not the loop's history, so
its cost does not grow with the iterations before it (flow-semantics §10, store contract §4.6)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli, mobctl_process
from tests.engine.test_attempts import loop
from tests.engine.test_scenarios import HEAD

ITERATIONS = 300
PAD = "x" * 10_000  # a 10 KB output


def test_item16_loop_of_300_iterations_with_10kb_outputs_completes(tmp_path: Path) -> None:
    """Every journal line (and event line) must fit a 32 KiB record cap, which the store
    enforces on each line it writes, while the loop's history grows to 3 MB: the run
    completes only if no line carries the history. (With the whole history in each line, the
    default 1 MiB cap ended such a run near iteration 105 with record_too_large.)"""
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + loop(ITERATIONS))
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(
        f'[[reply]]\niteration = {ITERATIONS - 1}\njson = {{ done = true, pad = "{PAD}" }}\n'
        f'[[reply]]\njson = {{ done = false, pad = "{PAD}" }}\n'
    )
    store = tmp_path / "store"
    result = mobctl_process(
        "run",
        mob,
        "--driver",
        f"scripted:{fixtures}",
        "--store",
        store,
        "--json",
        env={"MOBCTL_MAX_RECORD_BYTES": str(32 * 1024)},
    )
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    snapshot = json.loads((store / "mobs" / "s" / "runs" / f"{run_id}.json").read_text())
    history = snapshot["loop_iteration_outputs"]["l"]
    assert len(history) == ITERATIONS
    assert history[0] == {"s": {"done": False, "pad": PAD}}
    assert history[-1] == {"s": {"done": True, "pad": PAD}}
    assert len(json.dumps(snapshot)) > ITERATIONS * len(PAD)  # the cap is not the snapshot's
    kernel = snapshot["loops"][f"{run_id}-root::l"]["kernel_state"]
    assert (kernel["phase"], kernel["current_iteration"]) == ("Completed", ITERATIONS)
    checked = cli("store", "check", "--store", store)
    assert (checked.exit_code, checked.stdout) == (0, "store is consistent\n")


def test_item16_a_body_step_settles_from_its_latest_result_per_status(tmp_path: Path) -> None:
    """§10.5 from what the runner keeps per body step (the latest output and reason of each
    status, not every iteration's): Failed outranks Completed with the latest failure's reason;
    Completed outranks Skipped with the latest completed output."""
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD + '[flows.main.steps.t]\nrole = "w"\nmessage = "t"\noutput_format = "json"\n'
        'dispatch_mode = "one_to_one"\ncollection_policy = { type = "any" }\n'
        '[flows.main.steps.s]\nrole = "w"\nmessage = "s"\n'
        '[flows.main.steps.u]\nrole = "w"\nmessage = "u"\n'
        'condition = { op = "eq", path = "steps.t.go", value = true }\n'
        '[flows.main.root.nodes.l]\nkind = "repeat_until"\nloop_id = "l"\ndepends_on = []\n'
        'depends_on_mode = "all"\nmax_iterations = 4\n'
        'until = { op = "eq", path = "steps.t.done", value = true }\n'
        '[flows.main.root.nodes.l.body.nodes.t]\nkind = "step"\nstep_id = "t"\n'
        'depends_on = []\ndepends_on_mode = "all"\n'
        '[flows.main.root.nodes.l.body.nodes.s]\nkind = "step"\nstep_id = "s"\n'
        'depends_on = ["t"]\ndepends_on_mode = "all"\nfailure_policy = "continue"\n'
        '[flows.main.root.nodes.l.body.nodes.u]\nkind = "step"\nstep_id = "u"\n'
        'depends_on = ["t"]\ndepends_on_mode = "all"\n'
    )
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(
        "".join(
            f'[[reply]]\nstep = "t"\niteration = {k}\njson = {{ go = {go}, done = {done} }}\n'
            for k, go, done in ((0, "true", "false"), (1, "false", "false"), (2, "true", "true"))
        )
        + '[[reply]]\nstep = "s"\niteration = 0\nfail = "first"\n'
        '[[reply]]\nstep = "s"\niteration = 1\nfail = "second"\n'
        '[[reply]]\nstep = "s"\noutput = "S2"\n'
        '[[reply]]\nstep = "u"\niteration = 0\noutput = "U0"\n'
        '[[reply]]\nstep = "u"\noutput = "U2"\n'
    )
    store = tmp_path / "store"
    result = cli("run", mob, "--driver", f"scripted:{fixtures}", "--store", store, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == {"t": "completed", "s": "failed", "u": "completed"}
    snapshot = json.loads(next((store / "mobs" / "s" / "runs").glob("*.json")).read_text())
    ledger = [(e["step_id"], e["status"], e.get("output")) for e in snapshot["step_ledger"]]
    assert ledger == [
        ("t", "completed", {"go": True, "done": True}),
        ("s", "failed", None),
        ("u", "completed", {"w-1": "U2"}),
    ]
    assert [(e["step_id"], e["reason"]) for e in snapshot["failure_ledger"]] == [("s", "second")]
    events = [json.loads(line)["kind"] for line in (store / "mobs" / "s" / "events.jsonl").open()]
    assert [(e["step_id"], e["reason"]) for e in events if e["type"] == "step_failed"] == [
        ("s", "second")
    ]
