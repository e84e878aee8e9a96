"""``mobctl runs logs``: every driver's turns leave a transcript, private, read back by run-id
prefix and filtered by step and member."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from tests.conftest import cli

MOB = """
[mob]
id = "s"

[profiles.w]
model = "claude-sonnet-4-6"
runtime_mode = "turn_driven"
skills = ["tone"]

[skills.tone]
source = "inline"
content = "Be kind."

[flows.main.steps.a]
role = "w"
message = "first {{ params.x }}"

[flows.main.steps.b]
role = "w"
message = "second"
depends_on = ["a"]
"""

AGENT = """
import json, sys
turn = json.load(sys.stdin)
if turn["step_id"] == "b":
    print("x" * 10000, file=sys.stderr)
    print("b went wrong", file=sys.stderr)
    sys.exit(3)
print("A says \\x1b[31mhi")
"""


def started(tmp_path: Path, *driver: str) -> tuple[Path, str]:
    mob = tmp_path / "mob.toml"
    mob.write_text(MOB)
    store = tmp_path / "store"
    ran = cli("run", mob, "-p", "x=1", *driver, "--store", store, "--json")
    return store, json.loads(ran.stdout)["run_id"]


def logs(store: Path, run_id: str, *more: str) -> dict[str, object]:
    result = cli("runs", "logs", "s", run_id[:6], "--store", store, "--json", *more)
    assert result.exit_code == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_a_command_turn_keeps_its_payload_exit_status_and_stderr_end(tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    store, run_id = started(tmp_path, "--driver", f"command:{sys.executable} {agent}")
    turns = logs(store, run_id)["turns"]
    assert isinstance(turns, list)
    assert [(t["step_id"], t["member"], t["attempt"]) for t in turns] == [
        ("a", "w-1", 1),
        ("b", "w-1", 1),
    ]
    first, second = (t["record"] for t in turns)
    assert first["status"] == "completed" and first["output"] == "A says \x1b[31mhi\n"
    sent = first["driver"]["stdin"]
    assert sent["protocol"] == 1 and sent["message"] == "first 1"
    assert sent["system_prompt"] == "Be kind." and sent["profile"]["name"] == "w"
    assert first["driver"]["exit_status"] == 0
    assert second["status"] == "failed" and second["reason"] == "b went wrong"
    assert second["driver"]["exit_status"] == 3
    kept = second["driver"]["stderr"]
    assert len(kept) == 4096 and kept.endswith("b went wrong\n")
    (log,) = (store / "mobs" / "s" / "runs").glob("*.turns.jsonl")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    # printed for people: control characters escaped
    shown = cli("runs", "logs", "s", run_id[:6], "--step", "a", "--store", store)
    assert shown.exit_code == 0
    assert shown.stdout.startswith("== a [0] w-1 attempt 1: completed in ")
    assert "\x1b" not in shown.stdout and "A says \\u001b[31mhi" in shown.stdout


def test_scripted_replies_are_kept_and_filtered_by_step_and_member(tmp_path: Path) -> None:
    replies = tmp_path / "r.toml"
    replies.write_text('[[reply]]\nstep = "a"\noutput = "A"\n[[reply]]\nstep = "b"\noutput = "B"\n')
    store, run_id = started(tmp_path, "--driver", f"scripted:{replies}")
    only_b = logs(store, run_id, "--step", "b")["turns"]
    assert isinstance(only_b, list) and [t["record"]["output"] for t in only_b] == ["B"]
    assert logs(store, run_id, "--member", "w-2")["turns"] == []
    everything = logs(store, run_id, "--member", "w-1")
    assert everything["run_id"] == run_id
    assert [t["record"]["output"] for t in everything["turns"]] == ["A", "B"]  # type: ignore[attr-defined]


def test_an_unknown_run_is_not_found(tmp_path: Path) -> None:
    replies = tmp_path / "r.toml"
    replies.write_text('[[reply]]\noutput = "A"\n')
    store, _ = started(tmp_path, "--driver", f"scripted:{replies}")
    result = cli("runs", "logs", "s", "ffffffff", "--store", store)
    assert result.exit_code == 1 and result.stderr.startswith("error[not_found]: ")
