"""`mobctl runs cancel` and `runs recover` against real `mobctl run` processes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from mobctl.store.directory import DirectoryStore
from tests.conftest import cli, mobctl_process
from tests.engine.test_run_processes import start, wait_for_dispatch
from tests.engine.test_scenarios import HEAD, events


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def terminal_events(store: Path, run_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events(store)
        if e["type"] in ("flow_completed", "flow_failed", "flow_canceled") and e["run_id"] == run_id
    ]


def test_cancel_wait_from_another_process_kills_the_driver_processes(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '300'])  # would outlive the turn if not killed\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(300)\n"
    )
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 120000\n'
        '[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n'
    )
    store = tmp_path / "store"
    runner = start(
        ["run", str(mob), "--driver", f"command:{sys.executable} {agent}", "--store", str(store)],
        tmp_path,
    )
    run_id = wait_for_dispatch(store)
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    agent_pid, child_pid = map(int, pids.read_text().split())
    assert not gone(agent_pid) and not gone(child_pid)
    canceled = mobctl_process(
        "runs", "cancel", "s", run_id[:8], "--wait", "--timeout", "60s", "--store", store
    )
    assert canceled.returncode == 0, canceled.stderr
    # the owner recorded it (had mobctl taken the run over, it would say "canceled by this
    # process because ...")
    assert canceled.stdout == f"run {run_id} canceled (cancel_requested)\n"
    assert canceled.stderr == ""
    _, err = runner.communicate(timeout=30)
    assert runner.returncode == 4, err
    assert gone(agent_pid) and gone(child_pid)
    final = DirectoryStore(store).runs("s").get_run(run_id)
    assert final is not None and final.status == "canceled"
    assert terminal_events(store, run_id) == [
        {"type": "flow_canceled", "run_id": run_id, "flow_id": "main", "cause": "cancel_requested"}
    ]
    shown = cli("runs", "show", "s", run_id, "--store", store).stdout
    assert "status    canceled (cancel_requested)\n" in shown
    assert "run canceled while remote turn was in flight" in shown
    again = cli("runs", "cancel", "s", run_id, "--store", store)
    assert (
        again.stdout == f"run {run_id} is already canceled (cancel_requested): nothing to cancel\n"
    )


def loop_mob(tmp_path: Path) -> tuple[Path, Path]:
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD + '[flows.main.steps.first]\nrole = "w"\nmessage = "go"\n'
        "[flows.main.root.nodes.first]\n"
        'kind = "step"\nstep_id = "first"\ndepends_on = []\ndepends_on_mode = "all"\n'
        "[flows.main.root.nodes.rounds]\n"
        'kind = "repeat_until"\nloop_id = "rounds"\ndepends_on = ["first"]\n'
        'depends_on_mode = "all"\nmax_iterations = 3\n'
        'until = { op = "eq", path = "steps.draft", value = "done" }\n'
        "[flows.main.root.nodes.rounds.body.nodes.draft]\n"
        'kind = "step"\nstep_id = "draft"\ndepends_on = []\ndepends_on_mode = "all"\n'
        '[flows.main.steps.draft]\nrole = "w"\nmessage = "draft"\ntimeout_ms = 120000\n'
    )
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(
        '[[reply]]\nstep = "first"\noutput = "ok"\n'
        '[[reply]]\nstep = "draft"\ndelay_ms = 120000\noutput = "done"\n'
    )
    return mob, fixtures


def test_sigkilled_runner_is_orphaned_and_recover_cancel_converges_it_once(
    tmp_path: Path,
) -> None:
    mob, fixtures = loop_mob(tmp_path)
    assert cli("validate", mob).exit_code == 0, cli("validate", mob).stdout
    store = tmp_path / "store"
    runner = start(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store)], tmp_path
    )
    run_id = wait_for_dispatch(store)
    wait_for(
        lambda: any(
            e["type"] == "step_dispatched" and e["step_id"] == "draft" for e in events(store)
        )
    )
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=30)
    listed = json.loads(cli("runs", "list", "s", "--store", store, "--json").stdout)
    assert [(r["run_id"], r["status"], r["orphaned"]) for r in listed] == [
        (run_id, "running", True)
    ]
    assert listed[0]["orphan_reason"] == (
        f"its owner process (pid {runner.pid} on {os.uname().nodename}) is gone"
    )
    assert "running (orphaned)" in cli("runs", "list", "s", "--store", store).stdout
    recovered = mobctl_process("runs", "recover", "s", "--cancel", "--store", store)
    assert recovered.returncode == 0, recovered.stderr
    assert recovered.stdout.startswith(f"canceled run {run_id} (its owner process (pid ")
    assert terminal_events(store, run_id) == [
        {
            "type": "flow_canceled",
            "run_id": run_id,
            "flow_id": "main",
            "cause": "execution_custody_lost",
        }
    ]
    run = DirectoryStore(store).runs("s").get_run(run_id)
    assert run is not None and run.status == "canceled"
    state = run.flow_state
    assert state.phase == "Canceled"
    assert state.step_status == {"first": "Completed", "draft": "Canceled"}
    assert state.active_node_count == 0 and state.active_frame_count == 0
    assert state.ready_frames == [] and state.pending_body_frame_loops == []
    for frame in run.frames.values():
        kernel = frame.kernel_state
        assert kernel["ready_queue"] == []
        assert set(kernel["node_status"].values()) <= {"Completed", "Canceled"}  # type: ignore[union-attr]
        assert kernel["phase"] in ("Completed", "Canceled")
    assert [loop.kernel_state["phase"] for loop in run.loops.values()] == ["Canceled"]
    assert [e.status for e in run.step_ledger if e.step_id == "first"] == [
        "dispatched",
        "completed",
    ]
    assert run.mobctl is not None and run.mobctl.owner is not None
    assert run.mobctl.owner.released_at is not None and run.mobctl.owner.pid != runner.pid
    again = mobctl_process("runs", "recover", "s", "--cancel", "--store", store)
    assert (again.returncode, again.stdout) == (0, "mob 's' has no orphaned runs\n")
    assert len(terminal_events(store, run_id)) == 1
    assert cli("store", "check", "--store", store).exit_code == 0


def test_a_runner_whose_run_is_taken_over_stops_with_exit_4(tmp_path: Path) -> None:
    """Another process takes the lease (as `runs cancel` does after the grace period): the
    runner notices at its next heartbeat, kills its turns and exits 4 without writing."""
    from mobctl.clock import timestamp
    from mobctl.host import me
    from mobctl.store.models import RunOwner

    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 60000\n')
    fixtures = tmp_path / "slow.toml"
    fixtures.write_text('[[reply]]\ndelay_ms = 60000\noutput = "late"\n')
    store = tmp_path / "store"
    runner = start(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store)], tmp_path
    )
    run_id = wait_for_dispatch(store)
    runs = DirectoryStore(store).runs("s")
    run = runs.get_run(run_id)
    assert run is not None and run.mobctl is not None and run.mobctl.owner is not None
    pid, host, started = me()
    thief = RunOwner(
        token="0" * 32,
        pid=pid,
        host=host,
        process_start=started,
        acquired_at=timestamp(),
        heartbeat_at=timestamp(),
    )
    assert runs.acquire_run_lease(run_id, thief, expected_token=run.mobctl.owner.token)
    _, err = runner.communicate(timeout=30)
    assert runner.returncode == 4, err
    assert (
        f"error[custody_lost]: run {run_id} was taken over by another process; this process "
        "stopped it without writing anything more\n"
        f"hint: see `mobctl runs show s {run_id}`\n"
    ) in err
    after = runs.get_run(run_id)
    assert after is not None and after.status == "running" and not terminal_events(store, run_id)
