"""Trust item 6: `--timeout`, step timeouts and Ctrl-C always end a `command:` turn, whatever the
agent does with its pipes (never reads stdin, leaves a process in another session holding
stdout). Real agents (sh, sleep, setsid), real `mobctl run` processes; every process a test
starts is gone when it ends."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobctl.drivers.base import Canceled, Completed
from mobctl.drivers.command import CommandDriver
from tests.engine.test_drivers import _running, request
from tests.engine.test_run_processes import start
from tests.engine.test_scenarios import HEAD, flow_events

BIG = 200_000  # bytes of params: a turn about three times what a pipe holds


@pytest.fixture
def pids(tmp_path: Path) -> Iterator[Path]:
    """A directory the agents write their pids into; whatever is still running is killed."""
    folder = tmp_path / "pids"
    folder.mkdir()
    yield folder
    for file in folder.iterdir():
        for pid in map(int, file.read_text().split()):
            if _running(pid) and b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def sleeper(pids: Path, name: str = "agent") -> str:
    """An agent that records its pid, never reads its stdin and sleeps for 300 s."""
    script = f"echo $$ > {shlex.quote(str(pids / name))}; exec sleep 300"
    return f"command:sh -c {shlex.quote(script)}"


def pid_of(pids: Path, name: str = "agent", timeout: float = 60) -> int:
    file = pids / name
    give_up = time.monotonic() + timeout
    while not (file.exists() and file.read_text().strip()):
        assert time.monotonic() < give_up, f"{name} never started"
        time.sleep(0.02)
    return int(file.read_text())


def run_mob(tmp_path: Path, driver: str, *options: str, step: str = "") -> subprocess.Popen[str]:
    """`mobctl run` (a real process) of a one-step flow with ``driver``, the store in
    tmp_path/store; ``step``: more keys of the step."""
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + f'[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n{step}')
    store = ["--store", str(tmp_path / "store")]
    return start(["run", str(mob), "--driver", driver, *options, *store], tmp_path)


def big_params(tmp_path: Path) -> list[str]:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"blob": "x" * BIG}))
    return ["--params", f"@{path}"]


def run_to_end(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=60)  # generous: the agent sleeps for 300 s
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def target_failures(store: Path) -> list[str]:
    return [e["reason"] for e in flow_events(store) if e["type"] == "step_target_failed"]


# --- the driver alone --------------------------------------------------------------------------


def test_item6_a_turn_larger_than_a_pipe_reaches_an_agent_that_reads_it() -> None:
    agent = "import sys; sys.stdout.write(sys.stdin.read())"  # the turn, back
    driver = CommandDriver(f"{shlex.quote(sys.executable)} -c {shlex.quote(agent)}")
    outcome = driver.run(request(params={"blob": "é" * BIG}), threading.Event())
    assert isinstance(outcome, Completed)
    assert json.loads(outcome.output)["params"] == {"blob": "é" * BIG}


def test_item6_stop_ends_a_turn_whose_agent_never_reads_stdin(pids: Path) -> None:
    driver = CommandDriver(sleeper(pids).removeprefix("command:"))
    stop = threading.Event()
    outcome: list[object] = []
    turn = threading.Thread(
        target=lambda: outcome.append(driver.run(request(params={"blob": "x" * BIG}), stop))
    )
    turn.start()
    agent = pid_of(pids)
    stop.set()  # what a deadline or a cancel does
    turn.join(timeout=60)
    assert not turn.is_alive(), "the turn is still blocked on the agent's stdin"
    assert [type(o) for o in outcome] == [Canceled]
    assert not _running(agent)


def test_item6_stdout_held_open_after_the_agent_exits_ends_the_turn(pids: Path) -> None:
    """The agent answers and exits; a process it started in a session of its own keeps its
    stdout open. The answer still arrives, EXIT_DRAIN (2 s) after the exit."""
    held = shlex.quote(str(pids / "held"))
    script = f"setsid sleep 300 & echo $! > {held}; echo answer"
    outcome = CommandDriver(f"sh -c {shlex.quote(script)}").run(request(), threading.Event())
    assert isinstance(outcome, Completed) and outcome.output == "answer\n"
    assert _running(pid_of(pids, "held"))  # outside the agent's group: the fixture ends it


# --- through `mobctl run` ----------------------------------------------------------------------


def test_item6_agent_that_never_reads_stdin_still_times_out(tmp_path: Path, pids: Path) -> None:
    process = run_mob(tmp_path, sleeper(pids), *big_params(tmp_path), "--timeout", "2s", "--json")
    code, out, err = run_to_end(process)
    assert code == 5, err
    document = json.loads(out)
    assert (document["status"], document["cause"]) == ("failed", "step_error")
    [reason] = target_failures(tmp_path / "store")
    assert re.fullmatch(r"timeout \+ canceled after \d+ms", reason), reason
    assert not _running(pid_of(pids))


def test_item6_step_timeout_ms_ends_an_agent_that_never_reads_stdin(
    tmp_path: Path, pids: Path
) -> None:
    step = "timeout_ms = 1000\n"
    process = run_mob(tmp_path, sleeper(pids), *big_params(tmp_path), "--json", step=step)
    code, out, err = run_to_end(process)
    assert code == 3, err
    assert json.loads(out)["status"] == "failed"
    assert target_failures(tmp_path / "store") == ["timeout + canceled after 1000ms"]
    assert not _running(pid_of(pids))


def test_item6_ctrl_c_ends_a_run_whose_agent_never_reads_stdin(tmp_path: Path, pids: Path) -> None:
    step = "timeout_ms = 600000\n"
    process = run_mob(tmp_path, sleeper(pids), *big_params(tmp_path), step=step)
    try:
        agent = pid_of(pids)
    finally:
        process.send_signal(signal.SIGINT)
    code, _, err = run_to_end(process)
    assert code == 130, err
    assert flow_events(tmp_path / "store")[-1]["type"] == "flow_canceled"
    assert not _running(agent)


@pytest.mark.parametrize(
    "leader",
    ["exit", "exec sleep 300"],
    ids=["the agent exits at once", "the agent runs until killed"],
)
def test_item6_a_setsid_grandchild_holding_stdout_does_not_stretch_the_turn(
    tmp_path: Path, pids: Path, leader: str
) -> None:
    script = f"setsid sleep 300 & echo $! > {shlex.quote(str(pids / 'held'))}; {leader}"
    driver = f"command:sh -c {shlex.quote(script)}"
    process = run_mob(tmp_path, driver, "--json", step="timeout_ms = 1000\n")
    code, out, err = run_to_end(process)  # returns although the grandchild holds stdout
    assert code == 3, err
    assert json.loads(out)["status"] == "failed"
    assert target_failures(tmp_path / "store") == ["timeout + canceled after 1000ms"]
    assert _running(pid_of(pids, "held"))  # in a session of its own: the fixture ends it


REUSED_PID = """
import subprocess
from mobctl.drivers.command import _kill_group

leader = subprocess.Popen(["true"], start_new_session=True)
leader.wait()  # reaped: its pid is free again
with open("/proc/sys/kernel/ns_last_pid", "w") as next_pid:
    next_pid.write(str(leader.pid - 1))
bystander = subprocess.Popen(["sleep", "60"])  # not a group leader: in this process's group
assert bystander.pid == leader.pid, (bystander.pid, leader.pid)
_kill_group(leader)
print("alive" if bystander.poll() is None else "killed")
bystander.kill()
"""


def test_item16_a_reaped_leaders_pid_taken_by_another_process_is_not_killed() -> None:
    """The turn's process group is the leader's own pid (it starts its session): asked of the
    pid with getpgid once the leader was reaped, that pid may be another process's, whose
    group (here the caller's own) was killed. In a new pid namespace, where the next pid can
    be chosen, the leader's pid goes to a bystander at once."""
    namespace = ["unshare", "--pid", "--fork", "--mount-proc"]
    try:
        usable = subprocess.run([*namespace, "true"], capture_output=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("no unshare(1) to make a pid namespace")
    if usable.returncode != 0:
        pytest.skip("pid namespaces are not available here (they need root)")
    result = subprocess.run(
        [*namespace, sys.executable, "-c", REUSED_PID],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        start_new_session=True,  # what a wrong group kill hits is the namespace's, not ours
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "alive\n", "")
