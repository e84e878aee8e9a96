"""Why a run did not complete, where people look: the end of `mobctl run`, `runs show` and
`runs list` (issue 13 items 3 and 4), on runs made by the real CLI."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from pathlib import Path

import pytest

from mobctl.api.failures import Failure, StepFailure
from mobctl.cli.failure_output import failure_lines
from tests.conftest import SAMPLES, cli
from tests.engine.test_scenarios import HEAD

RUN = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def _run_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ids (and lease tokens) drawn in order, so each output can be asserted whole."""
    drawn = itertools.count(1)
    monkeypatch.setattr(
        uuid, "uuid4", lambda: uuid.UUID(f"00000000-0000-4000-8000-{next(drawn):012d}")
    )


def ms(text: str) -> str:
    """Durations and times vary from run to run: 12ms, 1.0s, 22:05:36Z become N."""
    text = re.sub(r"\d+(\.\d+)?(ms|s)\b", "Nms", text)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(Z)?|\d\d:\d\d:\d\d(Z)?", "T", text)


def test_item3_the_summary_and_runs_show_say_why_a_quorum_run_failed(tmp_path: Path) -> None:
    """The README's code-review run without its reviewers: the cause (`required 2, available
    1`) was only in the event log, cut at 60 characters; `runs show` said `canceled - -`."""
    store = tmp_path / "store"
    ran = cli(
        "run", SAMPLES / "code-review.toml", "-p", "change=PR-42", "--store", store,
        "--driver", f"scripted:{SAMPLES / 'fixtures' / 'code-review.toml'}",
    )  # fmt: skip
    assert ran.exit_code == 3
    assert ran.stdout.splitlines()[:2] == [
        f"run {RUN} failed (insufficient_targets)",
        "reason    insufficient targets for step review: required 2, available 1",
    ]
    shown = cli("runs", "show", "code-review", RUN[:8], "--store", store)
    assert ms(shown.stdout).splitlines()[:6] == [
        f"run       {RUN}",
        "mob       code-review",
        "flow      main",
        "status    failed (insufficient_targets)",
        "reason    insufficient targets for step review: required 2, available 1",
        "started   T",
    ]
    again = cli("run", "code-review", "-p", "change=PR-42", "--store", store, "--json")
    document = json.loads(again.stdout)
    assert document["failure"] == {
        "cause": "insufficient_targets",
        "reason": "insufficient targets for step review: required 2, available 1",
        "steps": [],
    }


LONG = "the agent gave up: " + " ".join(f"word{i}" for i in range(40))


def test_item3_a_failed_step_is_named_with_its_member_and_its_whole_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n')
    replies = tmp_path / "replies.toml"
    replies.write_text(f'[[reply]]\nstep = "a"\nfail = "{LONG}"\n')
    store = tmp_path / "store"
    ran = cli("run", mob, "--driver", f"scripted:{replies}", "--store", store)
    wrapped = [
        "failed    step a on w-1: the agent gave up: word0 word1",
        "          word2 word3 word4 word5 word6 word7 word8 word9",
        "          word10 word11 word12 word13 word14 word15 word16",
        "          word17 word18 word19 word20 word21 word22 word23",
        "          word24 word25 word26 word27 word28 word29 word30",
        "          word31 word32 word33 word34 word35 word36 word37",
        "          word38 word39",
    ]
    reason = [
        "reason    flow failed for run",
        f"          {RUN}: root frame",
        "          sealed failed",
    ]
    assert ran.exit_code == 3
    assert ran.stdout == f"run {RUN} failed (step_error)\n" + "\n".join(reason + wrapped) + "\n"
    shown = cli("runs", "show", "s", RUN, "--store", store).stdout.splitlines()
    assert shown[3:14] == ["status    failed (step_error)", *reason, *wrapped]
    document = json.loads(cli("runs", "list", "s", "--store", store, "--json").stdout)
    assert (document[0]["status"], document[0]["timed_out"]) == ("failed", False)


def test_item4_a_timed_out_run_says_timed_out_everywhere(tmp_path: Path) -> None:
    """The summary said `failed (step_error)` while the exit code was 5, and `runs list` said
    `failed step_error`."""
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.slow]\nrole = "w"\nmessage = "a"\n')
    replies = tmp_path / "replies.toml"
    replies.write_text('[[reply]]\nstep = "slow"\noutput = "late"\ndelay_ms = 60000\n')
    store = tmp_path / "store"
    ran = cli("run", mob, "--driver", f"scripted:{replies}", "--timeout", "1s", "--store", store)
    assert ran.exit_code == 5
    reason = f"max flow duration exceeded for {RUN}"
    assert (
        ms(ran.stdout).replace("(+Nms)", "").split()
        == (
            f"run {RUN} timed out (step_error) reason flow failed for run {RUN}: {reason} "
            "failed step slow on w-1: timeout + canceled after Nms"
        ).split()
    )
    listed = cli("runs", "list", "s", "--store", store)
    assert ms(listed.stdout).splitlines()[1].split() == [
        RUN[:8], "main", "timed", "out", "step_error", "T", "Nms"
    ]  # fmt: skip
    shown = cli("runs", "show", "s", RUN, "--store", store)
    assert "status    timed out (step_error)\n" in shown.stdout
    assert "failed    step slow on w-1: timeout + canceled after " in shown.stdout
    document = json.loads(cli("runs", "list", "s", "--store", store, "--json").stdout)
    assert (document[0]["status"], document[0]["timed_out"]) == ("failed", True)
    only = cli("runs", "list", "s", "--status", "timed_out", "--store", store, "--json").stdout
    assert [r["run_id"] for r in json.loads(only)] == [RUN]
    # the run index is derived data: rebuilt from the snapshots and the log, it still knows
    (store / "mobs" / "s" / "runs.index.jsonl").unlink()
    assert cli("store", "check", "--repair", "--store", store).exit_code == 0
    again = cli("runs", "list", "s", "--store", store)
    assert ms(again.stdout) == ms(listed.stdout)


def test_failure_lines_wrap_under_their_label_and_escape_control_characters() -> None:
    failure = Failure(
        "failed",
        "step_error",
        "short",
        [StepFailure("a", None, "bad \x1b[2J template"), StepFailure("b", "w-2", "x " * 30)],
    )
    assert failure_lines(failure, width=40) == [
        "reason    short",
        "failed    step a: bad \\u001b[2J template",
        "failed    step b on w-2: x x x x x x x x",
        "          x x x x x x x x x x x x x x x",
        "          x x x x x x x",
    ]
