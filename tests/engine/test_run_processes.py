"""`mobctl run` as a real process: Ctrl-C, cancel from another process, the command driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mobctl.store.directory import DirectoryStore
from tests.conftest import REPO, cli
from tests.engine.test_scenarios import HEAD, flow_events


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mobctl", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )


def wait_for_dispatch(store: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = store / "mobs" / "s" / "events.jsonl"
        if log.exists() and "step_dispatched" in log.read_text():
            runs = list((store / "mobs" / "s" / "runs").glob("*.json"))
            return runs[0].stem
        time.sleep(0.05)
    raise AssertionError("the run never dispatched")


def slow_mob(tmp_path: Path) -> tuple[Path, Path]:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 60000\n')
    fixtures = tmp_path / "slow.toml"
    fixtures.write_text('[[reply]]\ndelay_ms = 60000\noutput = "late"\n')
    return mob, fixtures


def test_ctrl_c_cancels_cleanly(tmp_path: Path) -> None:
    mob, fixtures = slow_mob(tmp_path)
    store = tmp_path / "store"
    process = start(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store)], tmp_path
    )
    wait_for_dispatch(store)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    kinds = flow_events(store)
    assert kinds[-2]["reason"] == "run canceled while remote turn was in flight"
    assert kinds[-1] == {
        "type": "flow_canceled",
        "run_id": kinds[0]["run_id"],
        "flow_id": "main",
        "cause": "cancel_requested",
    }
    run = DirectoryStore(store).runs("s").list_runs()[0]
    assert run.status == "canceled"


def test_cancel_from_another_process(tmp_path: Path) -> None:
    mob, fixtures = slow_mob(tmp_path)
    store = tmp_path / "store"
    process = start(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store), "--json"],
        tmp_path,
    )
    run_id = wait_for_dispatch(store)
    assert DirectoryStore(store).runs("s").request_cancel(run_id, {"pid": os.getpid()})
    out, err = process.communicate(timeout=30)
    assert process.returncode == 4, err
    assert json.loads(out)["status"] == "canceled"


def test_command_driver_end_to_end(tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import json, os, sys\n"
        "turn = json.load(sys.stdin)\n"
        "print(json.dumps({'echo': turn['message'], 'member': os.environ['MOBCTL_MEMBER']}))\n"
    )
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD
        + '[flows.main.steps.a]\nrole = "w"\nmessage = "hi {{ params.who }}"\noutput_format = "json"\n'
        """expected_schema_ref = '{"type": "object", "additionalProperties": {"type": "object"}}'\n"""
    )
    result = cli(
        "run",
        mob,
        "-p",
        "who=Ada",
        "--driver",
        f"command:{sys.executable} {agent}",
        "--store",
        tmp_path / "store",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["outputs"] == {
        "a": {"w-1": {"echo": "hi Ada", "member": "w-1"}}
    }


def test_live_view_on_a_terminal_and_clean_stdout(tmp_path: Path) -> None:
    from tests.cli.test_definition_commands import _run_in_terminal

    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD
        + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n[flows.main.steps.b]\nrole = "w"\nmessage = "b"\ndepends_on = ["a"]\n'
    )
    fixtures = tmp_path / "f.toml"
    fixtures.write_text('[[reply]]\ndelay_ms = 300\noutput = "ok"\n')
    code, output = _run_in_terminal(
        ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(tmp_path / "store")],
        tmp_path,
        {"COLUMNS": "120", "TERM": "xterm", "PYTHONPATH": str(REPO)},
    )
    assert code == 0, output
    import re

    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", output)
    assert "step" in plain and "status" in plain and "elapsed" in plain
    assert re.search(r"a\s+completed\s+w-1\s+1\s+\d+\.\d+s", plain), plain
    # piped: plain progress lines on stderr, the summary alone on stdout
    piped = start(
        [
            "run",
            str(mob),
            "--driver",
            f"scripted:{fixtures}",
            "--store",
            str(tmp_path / "store"),
            "--json",
        ],
        tmp_path,
    )
    out, err = piped.communicate(timeout=60)
    assert json.loads(out)["status"] == "completed"
    assert "  a: dispatched to w-1 (attempt 1)" in err


def test_sigkill_mid_run_leaves_a_consistent_snapshot(tmp_path: Path) -> None:
    """Kill `mobctl run` at random moments: the store stays valid and the snapshot coherent."""
    import random

    from mobctl.store.directory.check import check_store

    steps = "".join(
        f'[flows.main.steps.s{i}]\nrole = "w"\nmessage = "{i}"\n'
        + (f'depends_on = ["s{i - 1}"]\n' if i % 5 else "")
        for i in range(20)
    )
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + steps)
    fixtures = tmp_path / "f.toml"
    fixtures.write_text('[[reply]]\ndelay_ms = 80\noutput = "ok"\n')
    store = tmp_path / "store"
    assert cli("register", mob, "--store", store).exit_code == 0
    rng = random.Random(4)
    for _ in range(12):
        process = start(
            ["run", str(mob), "--driver", f"scripted:{fixtures}", "--store", str(store)], tmp_path
        )
        assert process.stderr is not None
        while not process.stderr.readline().startswith("run "):  # "registered s revision N"
            pass  # then "run <id> ...": the run exists; kill it within its ~0.5 s
        time.sleep(rng.uniform(0, 0.5))
        process.kill()
        process.communicate(timeout=30)
        opened = DirectoryStore(store)
        report = check_store(opened, repair=True)
        assert report.ok, report.problems
        for run in opened.runs("s").list_runs():
            statuses = run.flow_state.step_status or {}
            completed = {e.step_id for e in run.step_ledger if e.status == "completed"}
            assert completed == set(run.root_step_outputs), (completed, run.root_step_outputs)
            assert all(statuses.get(step) == "Completed" for step in completed)
            for frame in run.frames.values():
                state = frame.kernel_state
                ready = [n for n in state["ordered_nodes"] if state["node_status"][n] == "Ready"]
                assert state["ready_queue"] == ready
    runs = DirectoryStore(store).runs("s").list_runs()
    assert any(not run.terminal for run in runs), "no kill landed mid-run"


def test_a_closed_progress_pipe_does_not_stop_the_run(tmp_path: Path) -> None:
    """`mobctl run ... 2>&1 | head -1`: the run goes on and finishes when stderr closes."""
    mob = tmp_path / "mob.toml"
    mob.write_text(
        HEAD
        + "".join(
            f'[flows.main.steps.s{i}]\nrole = "w"\nmessage = "{i}"\n'
            + (f'depends_on = ["s{i - 1}"]\n' if i else "")
            for i in range(5)
        )
    )
    fixtures = tmp_path / "f.toml"
    fixtures.write_text('[[reply]]\ndelay_ms = 50\noutput = "ok"\n')
    store = tmp_path / "store"
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mobctl",
            "run",
            str(mob),
            "--driver",
            f"scripted:{fixtures}",
            "--store",
            str(store),
            "--json",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=write_end,
        stdin=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    os.close(write_end)
    with os.fdopen(read_end) as progress:
        assert progress.readline() == "registered s revision 1\n"
        assert progress.readline().startswith("run ")  # like `head -2`, then the pipe closes
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert json.loads(out)["status"] == "completed"
