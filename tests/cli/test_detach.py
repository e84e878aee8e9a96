"""`mobctl run --detach`, `runs wait` and `events tail -f --run`, for CI, as real processes.

A detached run is owned by a background process that outlives the command; whoever waits for
it (`runs wait`, `events tail -f --run`) exits with the run's code (0/3/4/5), and a run whose
owner was killed ends the wait at once (error[run_orphaned], exit 3) instead of never.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.test_event_processes import Lines, start
from tests.conftest import mobctl_process
from tests.engine.test_scenarios import HEAD

FLOW = '[flows.main.steps.s]\nrole = "w"\nmessage = "go {{ params.n }}"\n'
DONE = '[[reply]]\nstep = "s"\ndelay_ms = 1500\noutput = "done"\n'
FAILS = '[[reply]]\nstep = "s"\ndelay_ms = 1500\nfail = "boom"\n'
SLOW = '[[reply]]\nstep = "s"\ndelay_ms = 600000\noutput = "late"\n'


@pytest.fixture
def mob(tmp_path: Path) -> Path:
    (tmp_path / "mob.toml").write_text(HEAD + FLOW)
    for name, text in (("done", DONE), ("fails", FAILS), ("slow", SLOW)):
        (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


def mobctl(mob: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mobctl_process(*args, "--store", mob / "store", cwd=mob)


def detach(mob: Path, replies: str, *more: str) -> dict[str, object]:
    """Start a detached run of ``mob.toml`` with the replies ``replies``; its report."""
    started = mobctl(
        mob, "run", "mob.toml", "-p", "n=1", "--driver", f"scripted:{replies}.toml", *more,
        "--detach", "--json",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    report = json.loads(started.stdout)
    assert set(report) == {"run_id", "mob_id", "flow_id", "pid"}
    return dict(report)


def wait_gone(pid: int) -> None:
    """Until the detached child is gone (reaped by whoever adopted it)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def test_detach_prints_the_run_id_and_wait_exits_0_when_it_completes(mob: Path) -> None:
    started = mobctl(
        mob, "run", "mob.toml", "-p", "n=1", "--driver", "scripted:done.toml", "--detach"
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert started.stdout == f"{run_id}\n" and len(run_id) == 36
    assert started.stderr.startswith("registered s revision 1\n")
    assert started.stderr.endswith(
        f"`mobctl runs wait s {run_id}` waits for it\n"
    )  # the run is still going: the reply takes 1.5 s
    waited = mobctl(mob, "runs", "wait", "s", run_id[:8])
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout == f'run {run_id} completed\n{{\n  "w-1": "done"\n}}\n'
    again = mobctl(mob, "runs", "wait", "s", run_id, "--json")  # an ended run: at once
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "completed"


def test_wait_and_follow_exit_3_for_a_failed_run(mob: Path) -> None:
    run_id = str(detach(mob, "fails")["run_id"])
    follower = start("events", "tail", "s", "-f", "--run", run_id, "--store", mob / "store")
    waited = mobctl(mob, "runs", "wait", "s", run_id)
    assert waited.returncode == 3, waited.stderr
    assert waited.stdout.startswith(f"run {run_id} failed (step_error)\n")
    assert "boom" in waited.stdout
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 3, err
    assert out.splitlines()[-1].split()[2] == "flow_failed"


def test_wait_exits_5_for_a_run_that_timed_out(mob: Path) -> None:
    run_id = str(detach(mob, "slow", "--timeout", "1s")["run_id"])
    waited = mobctl(mob, "runs", "wait", "s", run_id)
    assert waited.returncode == 5, waited.stderr
    assert waited.stdout.startswith(f"run {run_id} timed out")


def test_wait_and_follow_exit_4_for_a_canceled_run(mob: Path) -> None:
    run_id = str(detach(mob, "slow")["run_id"])
    waiter = start("runs", "wait", "s", run_id, "--store", mob / "store")
    follower = start("events", "tail", "s", "-f", "--run", run_id, "--store", mob / "store")
    Lines(follower).until(2)  # flow_started, step_dispatched: the follower is following
    canceled = mobctl(mob, "runs", "cancel", "s", run_id, "--wait")
    assert canceled.returncode == 0, canceled.stderr
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 4, err
    assert out.startswith(f"run {run_id} canceled")
    assert follower.wait(timeout=120) == 4


def test_a_run_whose_owner_was_killed_ends_the_wait_as_orphaned(mob: Path) -> None:
    report = detach(mob, "slow")
    run_id, pid = str(report["run_id"]), int(str(report["pid"]))
    follower = start("events", "tail", "s", "-f", "--run", run_id, "--store", mob / "store")
    lines = Lines(follower)
    lines.until(2)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    waited = mobctl(mob, "runs", "wait", "s", run_id)
    assert waited.returncode == 3
    assert waited.stdout == ""
    assert waited.stderr.startswith(
        f"error[run_orphaned]: run {run_id} is orphaned (its owner process (pid {pid} on "
    )
    assert waited.stderr.endswith(
        f"is gone): it will not end by itself\nhint: `mobctl runs resume s {run_id}` continues "
        "it; `mobctl runs recover s --cancel` ends it\n"
    )
    assert follower.wait(timeout=120) == 3  # it was following: it ends too, saying so
    assert follower.stderr is not None
    assert follower.stderr.read().startswith("error[run_orphaned]: ")


def test_follow_waits_for_a_mob_that_does_not_exist_yet(mob: Path) -> None:
    follower = start("events", "tail", "s", "-f", "--store", mob / "store")
    assert follower.stderr is not None
    assert follower.stderr.readline() == (
        f"waiting for mob 's' to appear in the store {mob / 'store'}\n"
    )
    lines = Lines(follower)
    ran = mobctl(mob, "run", "mob.toml", "-p", "n=1", "--driver", "scripted:done.toml")
    assert ran.returncode == 0, ran.stderr
    while "flow_completed" not in lines.until(len(lines.seen) + 1)[-1]:
        pass
    assert lines.seen[0].split()[2] == "mob_created"
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=120) == 130  # Ctrl-C, as it ends every command


def test_an_invalid_definition_is_reported_by_detach_with_its_code(mob: Path) -> None:
    (mob / "bad.toml").write_text(HEAD + FLOW.replace('role = "w"', 'role = "nobody"'))
    started = mobctl(mob, "run", "bad.toml", "--driver", "echo", "--detach")
    assert started.returncode == 1
    assert started.stdout == ""
    assert "error[" in started.stderr and "nobody" in started.stderr
    listed = mobctl(mob, "runs", "list", "s", "--json")
    assert listed.returncode == 1  # nothing was registered, no run exists


def test_detach_refuses_params_from_stdin(mob: Path) -> None:
    started = mobctl(mob, "run", "mob.toml", "--params", "@/dev/stdin", "--detach")
    assert started.returncode == 2
    assert started.stderr == (
        "error[usage]: --detach cannot read --params from '/dev/stdin': a detached run has no "
        "stdin\nhint: write the params to a file and pass --params @FILE, or use -p/-P\n"
    )


def test_a_file_named_like_an_option_is_run_as_that_file(mob: Path) -> None:
    # the child got it before its options: "no such option: -m"
    (mob / "-m.toml").write_text((mob / "mob.toml").read_text())
    store = str(mob / "store")
    started = mobctl_process(
        "run", "-p", "n=1", "--driver", "scripted:done.toml", "--store", store, "--detach",
        "--", "-m.toml", cwd=mob,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    waited = mobctl(mob, "runs", "wait", "s", run_id, "--json")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["outputs"] == {"s": {"w-1": "done"}}
