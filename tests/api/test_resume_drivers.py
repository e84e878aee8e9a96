"""Trust item 3: `runs resume` never runs a program that only the store names.

A resume without --driver reuses the recorded `echo` and `scripted:` drivers; a recorded
`command:` needs --driver on the command line again (exit 2, `driver_required`), and the error
shows the recorded spec, escaped and clipped, so the user can pass it again knowingly. Real
`mobctl run` processes are SIGKILLed to leave orphaned runs; every agent they started is
ended by the test."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from pathlib import Path

from tests.conftest import cli
from tests.drivers.test_command_pipes import pid_of, pids  # noqa: F401  (a fixture)
from tests.engine.test_resume import kill_when
from tests.engine.test_run_processes import start, wait_for_dispatch
from tests.engine.test_scenarios import HEAD, flow_events

MOB = HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 120000\n'


def snapshot(store: Path, run_id: str) -> Path:
    return store / "mobs" / "s" / "runs" / f"{run_id}.json"


def plant(store: Path, run_id: str, specs: list[str]) -> bytes:
    """Record ``specs`` as the run's drivers, as someone who can write the store could."""
    path = snapshot(store, run_id)
    document = json.loads(path.read_text())
    document["mobctl"]["drivers"] = specs
    path.write_text(json.dumps(document))
    return path.read_bytes()


def orphan_of_a_scripted_run(tmp_path: Path) -> tuple[Path, str]:
    """A run started with scripted: whose owner was SIGKILLed mid-step."""
    mob = tmp_path / "mob.toml"
    mob.write_text(MOB)
    fixtures = tmp_path / "f.toml"
    fixtures.write_text('[[reply]]\nattempt = 1\ndelay_ms = 120000\noutput = "never"\n')
    store = tmp_path / "store"
    return store, kill_when(store, tmp_path, mob, fixtures, '"step_dispatched"')


def test_item3_resume_never_runs_a_command_named_only_in_the_store(
    tmp_path: Path,
    pids: Path,  # noqa: F811
) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(MOB)
    store = tmp_path / "store"
    script = f"echo $$ >> {shlex.quote(str(pids / 'agent'))}; exec sleep 300"
    spec = f"command:sh -c {shlex.quote(script)}"
    owner = start(["run", str(mob), "--driver", spec, "--store", str(store)], tmp_path)
    run_id = wait_for_dispatch(store)
    agent = pid_of(pids)
    owner.kill()  # the owner dies; its agent, in a session of its own, is ended here
    owner.communicate(timeout=30)
    os.kill(agent, signal.SIGKILL)
    before = snapshot(store, run_id).read_bytes()

    resumed = cli("runs", "resume", "s", run_id[:8], "--store", store)
    assert (resumed.exit_code, resumed.stdout, resumed.stderr) == (
        2,
        "",
        f"error[driver_required]: run {run_id} was started with a driver that runs a program "
        f"({spec}); a resume never runs a program that only the store names\n"
        f"hint: if you trust it, pass the drivers again yourself: mobctl runs resume s "
        f"{run_id} --driver {shlex.quote(spec)}\n",
    )
    assert pids.joinpath("agent").read_text().split() == [str(agent)]  # it ran once, not twice
    assert snapshot(store, run_id).read_bytes() == before  # nothing taken over, nothing written

    # named again on the command line, it runs
    answer = f"command:{shlex.quote(sys.executable)} -c \"print('resumed')\""
    resumed = cli("runs", "resume", "s", run_id[:8], "--driver", answer, "--store", store)
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming with" not in resumed.stderr
    assert [e["type"] for e in flow_events(store)][-1] == "flow_completed"


def test_item3_a_planted_command_is_not_run_and_its_spec_is_shown_escaped_and_clipped(
    tmp_path: Path,
) -> None:
    store, run_id = orphan_of_a_scripted_run(tmp_path)
    marker = tmp_path / "pwned"
    head = f"command:touch {marker} \x1b]0;owned\x07\x1b[2J"
    before = plant(store, run_id, ["w=echo", head + "x" * 300])

    resumed = cli("runs", "resume", "s", run_id, "--store", store)
    assert resumed.exit_code == 2
    # the first 200 characters, then "…"; the control characters escaped as they are shown
    shown = f"command:touch {marker} \\u001b]0;owned\\u0007\\u001b[2J" + "x" * (200 - len(head))
    assert resumed.stderr == (
        f"error[driver_required]: run {run_id} was started with a driver that runs a program "
        f"({shown}…); a resume never runs a program that only the store names\n"
        f"hint: if you trust it, pass the drivers again yourself: mobctl runs resume s "
        f"{run_id} --driver w=echo --driver '{shown}…'\n"
    )
    assert "\x1b" not in resumed.stderr and "\x07" not in resumed.stderr
    assert not marker.exists()
    assert snapshot(store, run_id).read_bytes() == before


def test_item3_resume_reuses_recorded_scripted_and_echo_drivers(tmp_path: Path) -> None:
    store, run_id = orphan_of_a_scripted_run(tmp_path)
    answers = tmp_path / "answers.toml"
    answers.write_text('[[reply]]\noutput = "from the fixtures"\n')
    plant(store, run_id, ["echo", f"w=scripted:{answers}"])

    resumed = cli("runs", "resume", "s", run_id, "--store", store, "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stderr.startswith(
        f"resuming with the drivers it was started with: echo w=scripted:{answers}\n"
    )
    assert json.loads(resumed.stdout)["outputs"] == {"a": {"w-1": "from the fixtures"}}


def test_item3_a_recorded_scripted_path_is_only_read(tmp_path: Path) -> None:
    """A fixtures path from the store names a file to read, never a program; one that is not a
    regular file (a FIFO would block the read forever) is refused before the run is taken."""
    store, run_id = orphan_of_a_scripted_run(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = plant(store, run_id, [f"scripted:{fifo}"])

    resumed = cli("runs", "resume", "s", run_id, "--store", store)
    assert (resumed.exit_code, resumed.stderr) == (
        2,
        f"error[invalid_driver]: cannot read fixtures {fifo}: it is not a regular file\n",
    )
    assert snapshot(store, run_id).read_bytes() == before
