"""Cases run in stores of their own, in this process, concurrently with ``-j``; a case never
touches the user's store; results come out in suite order."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import cli, mobctl_process
from tests.suites.conftest import CASE, write_suite

ONE_STEP = """
[mob]
id = "meet"

[profiles.w]
model = "claude-sonnet-4-6"

[flows.main.steps.s]
role = "w"
message = "meet"
"""

RENDEZVOUS = """
import pathlib, sys, time
here = pathlib.Path(sys.argv[1])
here.joinpath(sys.argv[2]).touch()
deadline = time.monotonic() + 60
while not here.joinpath(sys.argv[3]).exists():
    if time.monotonic() > deadline:
        sys.exit("the other case never came")
    time.sleep(0.02)
print("met")
"""


def _rendezvous(project: Path, timeout: str) -> None:
    (project / "meet.toml").write_text(ONE_STEP)
    (project / "meet.py").write_text(RENDEZVOUS)
    cases = ""
    for me, other in (("a", "b"), ("b", "a")):
        command = f"command:{sys.executable} meet.py {project} {me} {other}"
        cases += (
            f'[[case]]\nname = "{me} meets {other}"\nmob = "meet.toml"\n'
            f"drivers = [{command!r}]\n{timeout}\n"
            '[case.expect]\nstatus = "completed"\n\n'
        )
    (project / "meet.test.toml").write_text(cases.replace("'", '"'))


def test_cases_run_concurrently_with_j(project: Path) -> None:
    """Each case waits for the other to have started: they pass only if they run at once."""
    _rendezvous(project, "")
    result = cli("test", "meet.test.toml", "-j", "2", "--allow-command")
    assert result.stdout == (
        "PASS meet.test.toml::a meets b\nPASS meet.test.toml::b meets a\n2 passed, 0 failed\n"
    )


def test_jobs_default_to_the_cores(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rendezvous(project, 'timeout = "5s"')
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    two = cli("test", "meet.test.toml", "--allow-command")
    assert two.stdout.endswith("\n2 passed, 0 failed\n")
    for arrived in ("a", "b"):
        (project / arrived).unlink()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one = cli("test", "meet.test.toml", "--allow-command")
    assert one.stdout.endswith("\n1 passed, 1 failed\n")


def test_one_job_runs_them_one_after_the_other(project: Path) -> None:
    _rendezvous(project, 'timeout = "2s"')
    result = cli("test", "meet.test.toml", "-j", "1", "--allow-command")
    lines = result.stdout.splitlines()
    assert lines[0] == "FAIL meet.test.toml::a meets b"  # alone, it waits until its deadline
    assert "PASS meet.test.toml::b meets a" in lines  # a had come and gone
    assert lines[-1] == "1 passed, 1 failed"
    assert result.exit_code == 1


def test_results_come_in_suite_order_whatever_finishes_first(project: Path) -> None:
    slow = project / "slow.toml"
    slow.write_text(
        (project / "fixtures.toml")
        .read_text()
        .replace('output = "alpha"', 'output = "alpha"\ndelay_ms = 300')
    )
    cases = "".join(
        CASE.replace('"the case"', f'"case {i}"').replace(
            "fixtures.toml", "slow.toml" if i % 2 == 0 else "fixtures.toml"
        )
        for i in range(6)
    )
    write_suite(project, "", case=cases)
    result = cli("test", "t.test.toml", "-j", "4")
    assert result.stdout == "".join(f"PASS t.test.toml::case {i}\n" for i in range(6)) + (
        "6 passed, 0 failed\n"
    )


def test_a_case_never_touches_the_users_store_and_leaves_nothing(
    project: Path, tmp_path_factory
) -> None:
    temp = tmp_path_factory.mktemp("tmp")
    users = tmp_path_factory.mktemp("user") / "store"
    write_suite(project, '[case.expect]\nstatus = "completed"\n')
    result = mobctl_process(
        "test", "t.test.toml", "--store", users, cwd=project, env={"TMPDIR": str(temp)}
    )
    assert result.stdout == "PASS t.test.toml::the case\n1 passed, 0 failed\n", result.stderr
    assert not users.exists()
    assert list(temp.iterdir()) == []  # every case store, and their directory, removed
    assert not (project / ".mobctl").exists()


def test_a_case_store_is_never_synced_to_the_disk(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is thrown away after the case: syncing it would only slow every case down."""
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    monkeypatch.setattr("mobctl.store.directory.files._datasync", synced.append)
    write_suite(project, '[case.expect]\nstatus = "completed"\n')
    assert cli("test", "t.test.toml").stdout == "PASS t.test.toml::the case\n1 passed, 0 failed\n"
    assert synced == []


def test_a_registered_mob_is_copied_from_the_users_store_which_is_only_read(
    project: Path, tmp_path_factory
) -> None:
    users = tmp_path_factory.mktemp("user") / "store"
    assert cli("register", "mob.toml", "--store", users).exit_code == 0
    before = {p: p.read_bytes() for p in users.rglob("*") if p.is_file()}
    write_suite(
        project, '[case.expect]\nstatus = "completed"\n', case=CASE.replace('"mob.toml"', '"t"')
    )
    result = cli("test", "t.test.toml", "--store", users)
    assert result.stdout == "PASS t.test.toml::the case\n1 passed, 0 failed\n"
    after = {p: p.read_bytes() for p in users.rglob("*") if p.is_file()}
    assert after == before
    unknown = CASE.replace('"mob.toml"', '"nope"')
    write_suite(project, "", case=unknown)
    missing = cli("test", "t.test.toml", "--store", users)
    assert missing.stdout.startswith(
        "FAIL t.test.toml::the case\n  t.test.toml:1: error[not_found]: no mob 'nope' is registered in "
    )


def test_a_case_that_cannot_run_reports_why(project: Path) -> None:
    (project / "broken.toml").write_text("[mob]\nid = 'broken'\n[profiles.w]\nmodel = 3\n")
    write_suite(project, "", case=CASE.replace('"mob.toml"', '"broken.toml"'))
    result = cli("test", "t.test.toml")
    broken = project / "broken.toml"
    assert result.stdout == (
        "FAIL t.test.toml::the case\n"
        f"  t.test.toml:1: error[invalid_definition]: {broken} has 1 error(s); nothing was registered\n"
        f"    hint: run `mobctl validate {broken}` for the diagnostics\n"
        f"    {broken}:4:9: error[invalid_value] profiles.w.model: expected a string, found an integer\n"
        "0 passed, 1 failed\n"
    )
    assert result.exit_code == 1


def test_members_realm_profiles_and_skipped_cases(project: Path) -> None:
    (project / "editor.toml").write_text('model = "claude-opus-4-8"\n')
    mob = (project / "mob.toml").read_text()
    (project / "mob.toml").write_text(
        mob.replace('model = "claude-sonnet-4-6"', 'realm_profile = "editor"')
    )
    with (project / "fixtures.toml").open("a") as fixtures:
        fixtures.write('\n[[reply]]\nstep = "c"\noutput = "charlie"\n')
    case = CASE.replace("run_c = false", "run_c = true").replace(
        "params =", 'realm_profiles = { editor = "editor.toml" }\nmembers = { w = 2 }\nparams ='
    )
    skipped = CASE.replace('"the case"', '"later"') + 'skip = "not yet"\n'
    write_suite(
        project,
        '[[case.expect.output]]\npath = "steps.c"\nop = "eq"\n'
        'value = { w-1 = "charlie", w-2 = "charlie" }\n\n' + skipped,
        case=case,
    )
    result = cli("test", "t.test.toml")
    assert result.stdout == (
        "PASS t.test.toml::the case\nSKIP t.test.toml::later (not yet)\n"
        "1 passed, 0 failed, 1 skipped\n"
    )
    assert result.exit_code == 0
