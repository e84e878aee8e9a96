"""``run MOB_OR_FILE``: which definition runs, and ``runs resume`` never registers one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, cli
from tests.engine.test_resume import kill_when, resume
from tests.engine.test_scenarios import HEAD

IMPOSTOR = (SAMPLES / "minimal.toml").read_text().replace("Say hello to", "PR TEXT for")


def spec_revision(store: Path, mob: str) -> int:
    listed = cli("specs", "list", "--store", store, "--json")
    return next(s["revision"] for s in json.loads(listed.stdout) if s["mob_id"] == mob)


def test_item6_a_file_named_like_a_mob_does_not_stand_in_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Path
) -> None:
    assert cli("register", SAMPLES / "minimal.toml", "--store", store).exit_code == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello").write_text(IMPOSTOR)
    ran = cli("run", "hello", "-p", "name=Ada", "--driver", "echo", "--store", store, "--json")
    assert ran.exit_code == 0, ran.stderr
    assert "PR TEXT" not in ran.stdout and spec_revision(store, "hello") == 1
    as_file = cli("run", "./hello", "-p", "name=Ada", "--driver", "echo", "--store", store)
    assert as_file.exit_code == 0, as_file.stderr
    assert spec_revision(store, "hello") == 2


def test_item6_an_unregistered_name_with_a_file_of_that_name_says_how_to_run_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello").write_text(IMPOSTOR)
    result = cli("run", "hello", "--store", store)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error[not_found]: no mob 'hello' is registered in {store}\n"
        "hint: to run the file 'hello', write it as ./hello\n"
    )


def test_item6_resume_uses_the_stored_definition_whatever_the_cwd_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\ntimeout_ms = 120000\n')
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(
        '[[reply]]\nstep = "a"\nattempt = 1\ndelay_ms = 120000\noutput = "never"\n'
        '[[reply]]\nstep = "a"\noutput = "A"\n'
    )
    store = tmp_path / "store"
    run_id = kill_when(store, tmp_path, mob, fixtures, '"step_id":"a","target"')
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "s").write_text(mob.read_text().replace('message = "a"', 'message = "PR TEXT"'))
    code, document, err = resume(store, run_id, fixtures, "--json")
    assert code == 0, err
    assert document["status"] == "completed"
    assert spec_revision(store, "s") == 1
