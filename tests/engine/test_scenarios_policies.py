"""Topology, supervisor escalation and limits (flow-semantics §6, §10.1, §13)."""

from __future__ import annotations

from pathlib import Path

from mobctl.store.directory import DirectoryStore
from tests.engine.test_scenarios import brief, flow_events, run, setup

LEAD = '\n[profiles.lead]\nmodel = "claude-opus-4-8"\nruntime_mode = "turn_driven"\n'


def test_strict_topology_denies_before_dispatch(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        LEAD.replace("[profiles.lead]", "[profiles.lead]")
        + '[topology]\nmode = "strict"\nrules = [{ from_role = "lead", to_role = "w", allowed = false }]\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n',
        '[[reply]]\noutput = "x"\n',
    )
    text = mob.read_text().replace('id = "s"', 'id = "s"\norchestrator = "lead"')
    mob.write_text(text)
    code, doc = run(mob, replies, store)
    assert (code, doc["cause"]) == (3, "topology_violation")
    assert flow_events(store)[-1]["reason"] == "topology violation: lead -> w"
    assert not any(e["type"] == "step_dispatched" for e in flow_events(store))


def test_advisory_topology_emits_and_continues(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        LEAD
        + '[topology]\nmode = "advisory"\nrules = [{ from_role = "*", to_role = "*", allowed = true }, { from_role = "lead", to_role = "w", allowed = false }]\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n',
        '[[reply]]\noutput = "x"\n',
    )
    mob.write_text(mob.read_text().replace('id = "s"', 'id = "s"\norchestrator = "lead"'))
    code, _ = run(mob, replies, store)
    assert code == 0
    kinds = flow_events(store)
    assert kinds[1] == {"type": "topology_violation", "from_role": "lead", "to_role": "w"}


def test_supervisor_escalation_on_failed_root_retires_members(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        LEAD + '[supervisor]\nrole = "lead"\nescalation_threshold = 1\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n',
        '[[reply]]\nrole = "lead"\noutput = "noted"\n[[reply]]\nstep = "a"\nfail = "boom"\n',
    )
    code, doc = run(mob, replies, store)
    assert code == 3
    assert [b.split()[0] for b in brief(flow_events(store))[-6:]] == [
        "step_failed",
        "step_skipped",
        "supervisor_escalation",
        "member_retired",
        "member_retired",
        "flow_failed",
    ]
    kinds = flow_events(store)
    escalation = next(e for e in kinds if e["type"] == "supervisor_escalation")
    assert escalation == {
        "type": "supervisor_escalation",
        "run_id": doc["run_id"],
        "step_id": "a",
        "escalated_to": "lead-1",
    }
    retired = [e["agent_identity"] for e in kinds if e["type"] == "member_retired"]
    assert retired == ["lead-1", "w-1"]
    assert kinds[-1]["type"] == "flow_failed" and kinds[-1]["cause"] == "step_error"


def test_escalation_failure_on_a_completed_root(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        LEAD + '[supervisor]\nrole = "lead"\nescalation_threshold = 1\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\nfailure_policy = "continue"\n',
        '[[reply]]\nrole = "lead"\nfail = "busy"\n[[reply]]\nstep = "a"\nfail = "boom"\n',
    )
    code, doc = run(mob, replies, store)
    assert code == 0, doc
    failed = next(e for e in flow_events(store) if e["type"] == "supervisor_escalation_failed")
    assert failed["reason"] == "busy"
    assert flow_events(store)[-1]["type"] == "flow_completed"


def test_max_active_nodes_limits_concurrency(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        "[limits]\nmax_active_nodes = 1\n"
        + "".join(f'[flows.main.steps.s{i}]\nrole = "w"\nmessage = "{i}"\n' for i in range(3)),
        '[[reply]]\ndelay_ms = 20\noutput = "x"\n',
    )
    code, _ = run(mob, replies, store)
    assert code == 0
    types = [
        e["type"] for e in flow_events(store) if e["type"] in ("step_dispatched", "step_completed")
    ]
    assert types == ["step_dispatched", "step_completed"] * 3  # never two at once


def test_max_frame_depth(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        "[limits]\nmax_frame_depth = 1\n"
        '[flows.main.steps.s]\nrole = "w"\nmessage = "s"\n'
        '[flows.main.root.nodes.outer]\nkind = "repeat_until"\nloop_id = "outer"\ndepends_on = []\ndepends_on_mode = "all"\n'
        'max_iterations = 1\nuntil = { op = "eq", path = "params.x", value = 1 }\n'
        '[flows.main.root.nodes.outer.body.nodes.inner]\nkind = "repeat_until"\nloop_id = "inner"\ndepends_on = []\n'
        'depends_on_mode = "all"\nmax_iterations = 1\nuntil = { op = "eq", path = "params.x", value = 1 }\n'
        '[flows.main.root.nodes.outer.body.nodes.inner.body.nodes.n]\nkind = "step"\nstep_id = "s"\ndepends_on = []\ndepends_on_mode = "all"\n',
        '[[reply]]\noutput = "x"\n',
    )
    code, doc = run(mob, replies, store, "-P", "x=1")
    assert (code, doc["cause"]) == (3, "internal")
    assert (
        flow_events(store)[-1]["reason"]
        == "loop 'inner' would exceed max_frame_depth=1 (current depth=2)"
    )


def test_exhausted_loop_fails_its_node(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.s]\nrole = "w"\nmessage = "s"\n'
        '[flows.main.root.nodes.l]\nkind = "repeat_until"\nloop_id = "l"\ndepends_on = []\ndepends_on_mode = "all"\n'
        'max_iterations = 2\nuntil = { op = "eq", path = "params.x", value = 1 }\n'
        '[flows.main.root.nodes.l.body.nodes.n]\nkind = "step"\nstep_id = "s"\ndepends_on = []\ndepends_on_mode = "all"\n',
        '[[reply]]\noutput = "x"\n',
    )
    code, doc = run(mob, replies, store, "-P", "x=0")
    assert code == 3
    dispatched = [e for e in flow_events(store) if e["type"] == "step_dispatched"]
    assert len(dispatched) == 2  # max_iterations = 2 runs the body twice
    assert doc["cause"] == "step_error"


LOOP = (
    '[flows.main.root.nodes.{loop}]\nkind = "repeat_until"\nloop_id = "{loop}"\ndepends_on = []\n'
    'depends_on_mode = "all"\nmax_iterations = 1\nuntil = {{ op = "eq", path = "params.x", value = 1 }}\n'
    '[flows.main.root.nodes.{loop}.body.nodes.n]\nkind = "step"\nstep_id = "{step}"\ndepends_on = []\n'
    'depends_on_mode = "all"\n'
)


def test_max_active_frames_runs_one_loop_body_at_a_time(tmp_path: Path) -> None:
    body = '[flows.main.steps.s1]\nrole = "w"\nmessage = "1"\n[flows.main.steps.s2]\nrole = "w"\nmessage = "2"\n'
    loops = LOOP.format(loop="l1", step="s1") + LOOP.format(loop="l2", step="s2")
    for limit, expected in (
        (1, ["dispatched s1", "completed s1", "dispatched s2", "completed s2"]),
        (0, ["dispatched s1", "dispatched s2", "completed s1", "completed s2"]),
    ):
        (tmp_path / str(limit)).mkdir()
        mob, replies, store = setup(
            tmp_path / str(limit),
            (f"[limits]\nmax_active_frames = {limit}\n" if limit else "") + body + loops,
            '[[reply]]\nstep = "s1"\ndelay_ms = 150\noutput = "x"\n'
            '[[reply]]\nstep = "s2"\ndelay_ms = 300\noutput = "y"\n',
        )
        code, _ = run(mob, replies, store, "-P", "x=1")
        assert code == 0
        seen = [
            f"{e['type'].removeprefix('step_')} {e['step_id']}"
            for e in flow_events(store)
            if e["type"] in ("step_dispatched", "step_completed")
        ]
        assert seen == expected, (limit, seen)


def test_a_step_cut_by_the_flow_deadline_fails_the_flow(tmp_path: Path) -> None:
    """§7.6: a step whose timeout the flow budget cuts short fails the whole flow (exit 5),
    without retries, even with failure_policy = "continue"."""
    mob, replies, store = setup(
        tmp_path,
        "[limits]\nmax_flow_duration_ms = 1500\nmax_step_retries = 2\n"
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 60000\n'
        'failure_policy = "continue"\n',
        '[[reply]]\ndelay_ms = 5000\noutput = "late"\n',
    )
    code, doc = run(mob, replies, store)
    assert (code, doc["status"], doc["cause"]) == (5, "failed", "step_error")
    kinds = flow_events(store)
    assert [k["type"] for k in kinds] == [
        "flow_started",
        "step_dispatched",
        "step_target_failed",
        "flow_failed",
    ]
    assert kinds[2]["reason"].startswith("timeout + canceled after ")
    assert kinds[-1]["reason"].startswith(
        f"flow failed for run {doc['run_id']}: max flow duration exceeded"
    )


def test_nested_loops_record_every_frame_and_iteration(tmp_path: Path) -> None:
    mob, replies, store = setup(
        tmp_path,
        '[flows.main.steps.s]\nrole = "w"\nmessage = "s"\noutput_format = "json"\n'
        'dispatch_mode = "one_to_one"\ncollection_policy = { type = "any" }\n'
        '[flows.main.root.nodes.outer]\nkind = "repeat_until"\nloop_id = "outer"\ndepends_on = []\n'
        'depends_on_mode = "all"\nmax_iterations = 1\nuntil = { op = "eq", path = "params.x", value = 1 }\n'
        '[flows.main.root.nodes.outer.body.nodes.inner]\nkind = "repeat_until"\nloop_id = "inner"\n'
        'depends_on = []\ndepends_on_mode = "all"\nmax_iterations = 3\n'
        'until = { op = "eq", path = "steps.s.done", value = true }\n'
        '[flows.main.root.nodes.outer.body.nodes.inner.body.nodes.n]\nkind = "step"\nstep_id = "s"\n'
        'depends_on = []\ndepends_on_mode = "all"\n',
        "[[reply]]\niteration = 0\njson = { done = false }\n[[reply]]\njson = { done = true }\n",
    )
    code, doc = run(mob, replies, store, "-P", "x=1")
    assert code == 0, doc
    assert brief(flow_events(store)) == [
        "flow_started main",
        "step_dispatched s",
        "step_target_completed s",
        "step_completed s",
        "step_dispatched s",
        "step_target_completed s",
        "step_completed s",
        "flow_completed main",
    ]
    snapshot = DirectoryStore(store).runs("s").get_run(doc["run_id"])
    assert snapshot is not None
    root = f"{doc['run_id']}-root"
    inner = f"{root}::outer::iter-0::inner"
    assert sorted(snapshot.frames) == sorted(
        [root, f"{root}::outer::iter-0", f"{inner}::iter-0", f"{inner}::iter-1"]
    )
    assert all(f.kernel_state["phase"] == "Completed" for f in snapshot.frames.values()), (
        snapshot.frames
    )
    loops = {k: v.kernel_state for k, v in snapshot.loops.items()}
    assert (loops[inner]["phase"], loops[inner]["current_iteration"]) == ("Completed", 2)
    assert loops[f"{root}::outer"]["phase"] == "Completed"
    assert [(e.loop_instance_id, e.iteration) for e in snapshot.loop_iteration_ledger] == [
        (f"{root}::outer", 0),
        (inner, 0),
        (inner, 1),
    ]
