"""Attempt numbers (flow-semantics §7.5): per (step, target) and per execution of the step, so
each loop iteration starts again at 1. (A resume continuing the count: test_resume.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine.test_scenarios import flow_events, run, setup


def loop(max_iterations: int) -> str:
    """Loop ``l`` of one JSON step ``s`` (one target) until its output has ``done = true``."""
    return (
        '[flows.main.steps.s]\nrole = "w"\nmessage = "s"\noutput_format = "json"\n'
        'dispatch_mode = "one_to_one"\ncollection_policy = { type = "any" }\n'
        '[flows.main.root.nodes.l]\nkind = "repeat_until"\nloop_id = "l"\ndepends_on = []\n'
        f'depends_on_mode = "all"\nmax_iterations = {max_iterations}\n'
        'until = { op = "eq", path = "steps.s.done", value = true }\n'
        '[flows.main.root.nodes.l.body.nodes.n]\nkind = "step"\nstep_id = "s"\n'
        'depends_on = []\ndepends_on_mode = "all"\n'
    )


LOOP = "[limits]\nmax_step_retries = 1\n" + loop(5)


def test_item17_attempt_restarts_each_iteration(tmp_path: Path) -> None:
    """Iteration 0 needs a retry (attempts 1, 2); iterations 1 and 2 are answered by replies
    that match ``iteration = k, attempt = 1``: with attempts counted across iterations they
    would see attempts 3 and 4, match nothing and fail the run."""
    mob, replies, store = setup(
        tmp_path,
        LOOP,
        '[[reply]]\nstep = "s"\niteration = 0\nattempt = 1\nfail = "flaky"\n'
        '[[reply]]\nstep = "s"\niteration = 0\nattempt = 2\njson = { n = 0, done = false }\n'
        '[[reply]]\nstep = "s"\niteration = 1\nattempt = 1\njson = { n = 1, done = false }\n'
        '[[reply]]\nstep = "s"\niteration = 2\nattempt = 1\njson = { n = 2, done = true }\n'
        '[[reply]]\nfail = "no reply for this iteration and attempt"\n',
    )
    code, doc = run(mob, replies, store)
    assert code == 0, doc
    kinds = flow_events(store)
    assert [(k["type"], k.get("attempt")) for k in kinds if k["type"].startswith("step_")] == [
        ("step_dispatched", 1),
        ("step_target_failed", None),
        ("step_dispatched", 2),
        ("step_target_completed", None),
        ("step_completed", None),
        ("step_dispatched", 1),
        ("step_target_completed", None),
        ("step_completed", None),
        ("step_dispatched", 1),
        ("step_target_completed", None),
        ("step_completed", None),
    ]
    snapshot = json.loads(next((store / "mobs" / "s" / "runs").glob("*.json")).read_text())
    assert snapshot["loop_iteration_outputs"] == {
        "l": [
            {"s": {"n": 0, "done": False}},
            {"s": {"n": 1, "done": False}},
            {"s": {"n": 2, "done": True}},
        ]
    }
    assert snapshot["flow_state"]["target_retry_counts"] == {"s:w-1": 1}


def test_item17_retries_in_each_iteration_count_from_1(tmp_path: Path) -> None:
    """``max_step_retries = 1``: every iteration fails once and succeeds at its attempt 2."""
    mob, replies, store = setup(
        tmp_path,
        LOOP,
        '[[reply]]\nstep = "s"\nattempt = 1\nfail = "flaky"\n'
        '[[reply]]\nstep = "s"\niteration = 2\nattempt = 2\njson = { done = true }\n'
        '[[reply]]\nstep = "s"\nattempt = 2\njson = { done = false }\n',
    )
    code, doc = run(mob, replies, store)
    assert code == 0, doc
    attempts = [k["attempt"] for k in flow_events(store) if k["type"] == "step_dispatched"]
    assert attempts == [1, 2, 1, 2, 1, 2]
