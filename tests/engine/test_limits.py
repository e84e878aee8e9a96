"""Record caps (store contract §2.5): outputs, params and a command's stdout are bounded by
the store's record cap (`MOBCTL_MAX_RECORD_BYTES`, default 1 MiB), with clear errors."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli
from tests.engine.test_scenarios import HEAD, flow_events

CAP = 64 * 1024
LIMIT = CAP // 2 - 4096  # an output is written twice in one run change


def mob(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mob.toml"
    path.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n' + extra)
    return path


def test_an_output_over_the_limit_fails_its_step_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(CAP))
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(f'[[reply]]\noutput = "{"x" * 100_000}"\n')
    store = tmp_path / "store"
    ran = cli("run", mob(tmp_path), "--driver", f"scripted:{fixtures}", "--store", store, "--json")
    assert ran.exit_code == 3, ran.stderr
    assert json.loads(ran.stdout)["status"] == "failed"
    failed = next(e for e in flow_events(store) if e["type"] == "step_target_failed")
    size = len(json.dumps("x" * 100_000))
    assert failed["reason"] == (
        f"the output of 'w-1' for step a is {size} bytes; outputs are limited to {LIMIT} bytes "
        "(half of the store's record cap, MOBCTL_MAX_RECORD_BYTES)"
    )
    assert cli("events", "verify", "s", "--store", store).exit_code == 0
    assert cli("store", "check", "--store", store).exit_code == 0
    log = store / "mobs" / "s" / "events.jsonl"
    assert max(len(line) for line in log.read_bytes().splitlines()) < CAP


def test_an_aggregate_over_the_limit_fails_its_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of three targets fits; their fan-in does not."""
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(CAP))
    store = tmp_path / "store"
    definition = mob(tmp_path)
    assert cli("register", definition, "--store", store).exit_code == 0
    for _ in range(3):
        assert cli("members", "spawn", "s", "w", "--store", store).exit_code == 0
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(f'[[reply]]\noutput = "{"y" * 12_000}"\n')
    ran = cli("run", "s", "--driver", f"scripted:{fixtures}", "--store", store, "--json")
    assert ran.exit_code == 3, ran.stderr
    failed = next(e for e in flow_events(store) if e["type"] == "step_failed")
    assert failed["reason"].startswith("the output of step a is ")
    assert cli("store", "check", "--store", store).exit_code == 0


def test_params_over_the_limit_are_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(CAP))
    store = tmp_path / "store"
    definition = mob(tmp_path)
    assert cli("register", definition, "--store", store).exit_code == 0
    before = sorted(p.name for p in (store / "mobs" / "s").iterdir())
    log = (store / "mobs" / "s" / "events.jsonl").read_bytes()
    ran = cli("run", "s", "-p", f"big={'z' * 40_000}", "--store", store)
    assert ran.exit_code == 1
    assert ran.stderr.startswith(
        f"error[record_too_large]: the run's params are {40_000 + 10} bytes; params are "
        f"limited to {LIMIT} bytes"
    )
    assert sorted(p.name for p in (store / "mobs" / "s").iterdir()) == before
    assert (store / "mobs" / "s" / "events.jsonl").read_bytes() == log  # not even a member


def test_a_bad_cap_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("lots", "100", "-5", "²²²²²", "9" * 5000):  # the last two were exit 70
        monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", bad)
        result = cli("store", "init", "--store", tmp_path / "store")
        assert (result.exit_code, result.stderr) == (
            2,
            "error[usage]: MOBCTL_MAX_RECORD_BYTES must be a number of bytes of at least 16384, "
            f"not {bad!r}\n",
        )


def test_a_command_printing_too_much_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command driver's stdout follows the same cap: a child printing 5 MiB (and then
    sleeping) is killed as soon as it passes the cap, and the turn fails."""
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(CAP))
    pid_file = tmp_path / "pid"
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "sys.stdout.write('x' * (5 << 20))\nsys.stdout.flush()\ntime.sleep(300)\n"
    )
    store = tmp_path / "store"
    started = time.monotonic()
    ran = cli(
        "run",
        mob(tmp_path, "timeout_ms = 120000\n"),
        "--driver",
        f"command:{sys.executable} {agent}",
        "--store",
        store,
        "--json",
    )
    assert ran.exit_code == 3, ran.stderr
    assert time.monotonic() - started < 60  # not the child's 300 s, nor the step's 120 s
    failed = next(e for e in flow_events(store) if e["type"] == "step_target_failed")
    assert failed["reason"] == (
        f"output exceeds {CAP} bytes (the store's record cap, MOBCTL_MAX_RECORD_BYTES); the "
        "command was stopped"
    )
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_params_that_are_not_json_are_refused_or_kept_as_text(tmp_path: Path) -> None:
    store = tmp_path / "store"
    definition = mob(tmp_path)
    for document, message in (
        ('{"x": NaN}', "--params is not valid JSON: NaN is not JSON"),
        ("[" * 100_000, "--params is not valid JSON: nested too deeply"),
        ("[1]", "--params must be a JSON object"),
        (
            '{"x": 1e999999}',
            "--params is not valid JSON: the number 1e999999 is out of range (Infinity is not JSON)",
        ),
        (
            '{"x": [1, -2.5e400]}',
            "--params is not valid JSON: the number -2.5e400 is out of range (-Infinity is not "
            "JSON)",
        ),
    ):
        result = cli("run", definition, "--params", document, "--store", store)
        assert (result.exit_code, result.stderr) == (2, f"error[usage]: {message}\n")
    (tmp_path / "latin1.json").write_bytes(b'{"x": "\xe9"}')
    result = cli("run", definition, "--params", f"@{tmp_path / 'latin1.json'}", "--store", store)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error[usage]: params file {tmp_path / 'latin1.json'} is not UTF-8"
    )
    for value, literal in (("1e999", "1e999"), ("[0.5e309]", "0.5e309")):
        result = cli("run", definition, "-P", f"x={value}", "--store", store)
        assert (result.exit_code, result.stderr) == (
            2,
            f"error[usage]: -P x: the number {literal} is out of range (Infinity is not JSON)\n"
            "hint: to pass it as text, use -p KEY=VALUE\n",
        )
    assert not store.exists()
    args = ["-p", "x=NaN", "-p", "y=Infinity", "-p", "z=[1e999", "-p", 'w="1e999"']
    ran = cli("run", definition, *args, "--store", store, "--json")
    assert ran.exit_code == 0, ran.stderr
    started = next(e for e in flow_events(store) if e["type"] == "flow_started")
    assert started["params"] == {"x": "NaN", "y": "Infinity", "z": "[1e999", "w": '"1e999"'}


SMALL = 16_384  # the smallest cap MOBCTL_MAX_RECORD_BYTES takes


def ended_cleanly(store: Path, cap: int) -> dict[str, Any]:
    """The one run of mob `s` has a terminal status and the store is consistent: the run's
    summary (`runs list --json`)."""
    listed = cli("runs", "list", "s", "--store", store, "--json")
    assert listed.exit_code == 0, listed.stderr
    [summary] = json.loads(listed.stdout)
    assert summary["orphaned"] is False
    checked = cli("store", "check", "--store", store)
    assert (checked.exit_code, checked.stdout) == (0, "store is consistent\n"), checked.stderr
    assert cli("events", "verify", "s", "--store", store).exit_code == 0
    log = store / "mobs" / "s" / "events.jsonl"
    assert max(len(line) for line in log.read_bytes().splitlines()) < cap
    return dict(summary)


def failure_reasons(store: Path, run_id: str) -> list[str]:
    """Every copy of the step's failure reason: the target's and the step's events, the ledger."""
    shown = cli("runs", "show", "s", run_id, "--store", store, "--json")
    assert shown.exit_code == 0, shown.stderr
    ledger = [entry["reason"] for entry in json.loads(shown.stdout)["failure_ledger"]]
    kinds = ("step_target_failed", "step_failed")
    return [e["reason"] for e in flow_events(store) if e["type"] in kinds] + ledger


def test_a_huge_stderr_line_is_clipped_and_the_run_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure reason is the command's last stderr line, recorded three times: unclipped, a
    line just under the cap made a run change too large and left the run orphaned (exit 1)."""
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(SMALL))
    agent = tmp_path / "agent.py"
    agent.write_text("import sys\nsys.stderr.write('x' * 16_000 + '\\n')\nsys.exit(1)\n")
    store = tmp_path / "store"
    command = f"command:{sys.executable} {agent}"
    ran = cli("run", mob(tmp_path), "--driver", command, "--store", store, "--json")
    assert ran.exit_code == 3, ran.stderr
    document = json.loads(ran.stdout)
    assert (document["status"], document["cause"]) == ("failed", "step_error")
    reason = "x" * 4070 + "… [clipped, 16000 bytes]"
    assert len(reason.encode()) == 4096
    assert failure_reasons(store, document["run_id"]) == [reason, reason, reason]
    assert ended_cleanly(store, SMALL)["status"] == "failed"


def test_a_huge_scripted_failure_is_clipped_at_a_character_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(SMALL))
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(f'[[reply]]\nfail = "{"é" * 50_001}"\n')  # 100,002 bytes
    store = tmp_path / "store"
    scripted = f"scripted:{fixtures}"
    ran = cli("run", mob(tmp_path), "--driver", scripted, "--store", store, "--json")
    assert ran.exit_code == 3, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    # 4,096 bytes less the 27 of the marker leave 4,069: 2,034 "é" and half of one, dropped
    reason = "é" * 2034 + "… [clipped, 100002 bytes]"
    assert failure_reasons(store, run_id) == [reason, reason, reason]
    assert ended_cleanly(store, SMALL)["status"] == "failed"


def test_outputs_of_steps_ending_together_are_written_in_separate_run_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each output fits a run change, two do not: the scheduler used to record the outputs of
    all the steps that ended in one pass in one change, over the cap (the run was orphaned)."""
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(CAP))
    steps = "".join(f'[flows.main.steps.{s}]\nrole = "w"\nmessage = "{s}"\n' for s in "bc")
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(f'[[reply]]\ndelay_ms = 200\noutput = "{"y" * 20_000}"\n')
    store = tmp_path / "store"
    scripted = f"scripted:{fixtures}"
    ran = cli("run", mob(tmp_path, steps), "--driver", scripted, "--store", store, "--json")
    assert ran.exit_code == 0, ran.stderr
    assert json.loads(ran.stdout)["outputs"] == {s: {"w-1": "y" * 20_000} for s in "abc"}
    assert ended_cleanly(store, CAP)["status"] == "completed"


def test_a_record_too_large_for_the_store_fails_the_run_instead_of_orphaning_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four outputs fit one by one, but `flow_completed` carries them all: the run ends failed
    (cause `internal`) with the store's refusal as the reason, and its outputs are kept."""
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(CAP))
    steps = "".join(f'[flows.main.steps.{s}]\nrole = "w"\nmessage = "{s}"\n' for s in "bcd")
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(f'[[reply]]\noutput = "{"y" * 20_000}"\n')
    store = tmp_path / "store"
    scripted = f"scripted:{fixtures}"
    ran = cli("run", mob(tmp_path, steps), "--driver", scripted, "--store", store, "--json")
    assert ran.exit_code == 3, ran.stderr
    document = json.loads(ran.stdout)
    assert (document["status"], document["cause"]) == ("failed", "internal")
    assert document["outputs"] == {s: {"w-1": "y" * 20_000} for s in "abcd"}
    [failed] = [e for e in flow_events(store) if e["type"] == "flow_failed"]
    assert re.fullmatch(
        f"flow failed for run {document['run_id']}: a record is too large for the store: a run "
        rf"change of \d+ bytes; the limit is {CAP} \(the store's record cap, "
        r"MOBCTL_MAX_RECORD_BYTES\)",
        failed["reason"],
    ), failed["reason"]
    assert not any(e["type"] == "flow_completed" for e in flow_events(store))
    summary = ended_cleanly(store, CAP)
    assert (summary["status"], summary["cause"]) == ("failed", "internal")


def test_the_reason_is_the_last_stderr_line_after_more_stderr_than_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command driver kept the first cap's worth of stderr: a chatty command's closing error
    line was lost (the reason was a line from the middle, or `exit code 1`)."""
    monkeypatch.setenv("MOBCTL_MAX_RECORD_BYTES", str(SMALL))
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import sys\n"
        "for i in range(5000):\n    sys.stderr.write(f'progress {i}\\n')\n"
        "sys.stderr.write('x' * 30_000 + '\\n')\n"
        "sys.stderr.write('error: the disk is full\\n\\n')\nsys.exit(1)\n"
    )
    store = tmp_path / "store"
    command = f"command:{sys.executable} {agent}"
    ran = cli("run", mob(tmp_path), "--driver", command, "--store", store, "--json")
    assert ran.exit_code == 3, ran.stderr
    failed = next(e for e in flow_events(store) if e["type"] == "step_target_failed")
    assert failed["reason"] == "error: the disk is full"
