"""The drivers, with real child processes for the command driver."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from mobctl.drivers.base import (
    Canceled,
    Completed,
    DispatchError,
    DriverError,
    Failed,
    Member,
    TurnProfile,
    TurnRequest,
)
from mobctl.drivers.command import CommandDriver
from mobctl.drivers.echo import EchoDriver
from mobctl.drivers.registry import parse_drivers
from mobctl.drivers.scripted import ScriptedDriver


def request(**changes: object) -> TurnRequest:
    base: dict[str, object] = {
        "kind": "step",
        "mob_id": "m",
        "run_id": "r",
        "flow_id": "main",
        "step_id": "draft",
        "member": Member("writer-1", 0, "writer"),
        "message": "Write about caching",
        "params": {"topic": "caching"},
    }
    return TurnRequest(**(base | changes))  # type: ignore[arg-type]


def test_echo() -> None:
    assert EchoDriver().run(request(), threading.Event()) == Completed("Write about caching")
    blocks = [
        {"type": "text", "text": "a"},
        {"type": "structured", "data": {}},
        {"type": "text", "text": "b"},
    ]
    assert EchoDriver().run(request(message=blocks), threading.Event()) == Completed("a\nb")


FIXTURES = """
[[reply]]
step = "draft"
iteration = 0
output = "v1"

[[reply]]
step = "draft"
json = { approved = true, notes = ["ok"] }

[[reply]]
role = "critic"
attempt = 1
fail = "flaky"

[[reply]]
member = "slow-1"
delay_ms = 300000
output = "late"
"""


def test_scripted_replies(tmp_path: Path) -> None:
    path = tmp_path / "fixtures.toml"
    path.write_text(FIXTURES)
    driver = ScriptedDriver(path)
    stop = threading.Event()
    assert driver.run(request(), stop) == Completed("v1")
    assert driver.run(request(iteration=1), stop) == Completed(
        '{"approved": true, "notes": ["ok"]}'
    )
    critic = Member("critic-1", 0, "critic")
    assert driver.run(request(step_id="critique", member=critic), stop) == Failed("flaky")
    assert driver.run(request(step_id="critique", member=critic, attempt=2), stop) == Failed(
        "no scripted reply for step 'critique', member 'critic-1', iteration 0"
    )
    slow = request(step_id="x", member=Member("slow-1", 0, "slow"))
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert driver.run(slow, stop) == Canceled()
    assert time.monotonic() - started < 60  # canceled, not the reply's 300 s


def test_fixtures_are_validated_with_positions(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[reply]]\nstep = "a"\n\n[[reply]]\nstep = 3\noutput = "x"\nfail = "y"\ncolour = 1\n'
    )
    with pytest.raises(DriverError) as caught:
        ScriptedDriver(path)
    message = caught.value.message
    assert (
        f"{path}:1:1: reply[0]: a reply needs exactly one of output, json, fail (found none)"
        in message
    )
    assert f"{path}:5:8: reply[1].step: Input should be a valid string" in message
    assert f"{path}:8:10: reply[1].colour: Extra inputs are not permitted" in message
    with pytest.raises(DriverError, match="cannot read fixtures"):
        ScriptedDriver(tmp_path / "missing.toml")


SCRIPT = """
import json, os, sys
turn = json.load(sys.stdin)
if turn["message"] == "fail":
    print("first line", file=sys.stderr)
    print("the real reason", file=sys.stderr)
    print("", file=sys.stderr)
    sys.exit(3)
if turn["message"] == "silent":
    sys.exit(4)
print(json.dumps({"turn": turn, "env": {k: v for k, v in os.environ.items() if k.startswith("MOBCTL_")}}))
"""


def test_command_driver_protocol(tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    driver = CommandDriver(f"{sys.executable} {script}")
    outcome = driver.run(request(attempt=2, iteration=1), threading.Event())
    assert isinstance(outcome, Completed)
    data = json.loads(outcome.output)
    assert data["turn"] == {
        "protocol": 1,
        "mob_id": "m",
        "run_id": "r",
        "flow_id": "main",
        "step_id": "draft",
        "member": "writer-1",
        "role": "writer",
        "attempt": 2,
        "iteration": 1,
        "message": "Write about caching",
        "params": {"topic": "caching"},
        "output_format": "text",
        "profile": None,
        "system_prompt": "",
        "expected_schema": None,
    }
    assert outcome.transcript == {"stdin": data["turn"], "exit_status": 0, "stderr": ""}
    assert {k: v for k, v in data["env"].items() if k != "MOBCTL_STORE"} == {
        "MOBCTL_MOB_ID": "m",
        "MOBCTL_RUN_ID": "r",
        "MOBCTL_FLOW_ID": "main",
        "MOBCTL_STEP_ID": "draft",
        "MOBCTL_MEMBER": "writer-1",
        "MOBCTL_ROLE": "writer",
        "MOBCTL_ATTEMPT": "2",
        "MOBCTL_ITERATION": "1",
    }
    failed = driver.run(request(message="fail"), threading.Event())
    assert isinstance(failed, Failed) and failed.reason == "the real reason"
    assert failed.transcript is not None and failed.transcript["exit_status"] != 0
    assert "the real reason" in failed.transcript["stderr"]
    silent = driver.run(request(message="silent"), threading.Event())
    assert isinstance(silent, Failed) and silent.reason == "exit code 4"
    assert silent.transcript is not None and silent.transcript["exit_status"] == 4


def test_the_command_payload_carries_the_profile_and_expected_schema(tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    profile = TurnProfile(
        name="writer", model="claude-sonnet-4-6", provider="anthropic", system_prompt="Be brief."
    )
    schema = {"type": "object", "required": ["title"]}
    turn = request(profile=profile, expected_schema=schema, output_format="json")
    outcome = CommandDriver(f"{sys.executable} {script}").run(turn, threading.Event())
    assert isinstance(outcome, Completed)
    sent = json.loads(outcome.output)["turn"]
    assert sent["profile"] == profile.document() and sent["profile"]["model"] == "claude-sonnet-4-6"
    assert sent["system_prompt"] == "Be brief." and sent["expected_schema"] == schema
    with pytest.raises(DispatchError, match="cannot start"):
        CommandDriver("/nonexistent/agent").run(request(), threading.Event())


def test_command_driver_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = tmp_path / "spawner.sh"
    script.write_text(
        f"#!/bin/sh\nsleep 300 &\necho $! >> {pids}\nsleep 300 &\necho $! >> {pids}\nwait\n"
    )
    script.chmod(0o755)
    stop = threading.Event()

    def stop_once_both_started() -> None:
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            if pids.exists() and len(pids.read_text().split()) == 2:
                break
            time.sleep(0.02)
        stop.set()

    threading.Thread(target=stop_once_both_started, daemon=True).start()
    started = time.monotonic()
    assert isinstance(CommandDriver(str(script)).run(request(), stop), Canceled)
    assert time.monotonic() - started < 60  # canceled, not the children's 300 s
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    for pid in children:
        assert not _running(pid), pid


def _running(pid: int) -> bool:
    """Alive and not a zombie (orphans may wait for a reaper that never comes in containers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_command_output_is_capped(tmp_path: Path) -> None:
    driver = CommandDriver(f"{sys.executable} -c \"print('x' * 5000)\"", output_cap=1000)
    outcome = driver.run(request(), threading.Event())
    assert isinstance(outcome, Failed) and outcome.reason == (
        "output exceeds 1000 bytes (the store's record cap, MOBCTL_MAX_RECORD_BYTES); the "
        "command was stopped"
    )


def test_driver_specs() -> None:
    drivers = parse_drivers(["command:env X=1 true", "critic=echo"])
    assert isinstance(drivers.default, CommandDriver)
    assert drivers.default.argv == ["env", "X=1", "true"]
    assert isinstance(drivers.for_role("critic"), EchoDriver)
    assert isinstance(parse_drivers([]).for_role("any"), EchoDriver)
    for bad in ("telepathy", "scripted", "command:", "echo:x"):
        with pytest.raises(DriverError, match="invalid driver"):
            parse_drivers([bad])
