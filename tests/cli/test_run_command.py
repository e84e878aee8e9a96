"""`mobctl run` (and `register`): what it tells about the definition before the run, and how it
reads params."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli
from tests.engine.test_scenarios import HEAD

TYPO = (
    '[flows.main.steps.draft]\nrole = "w"\nmessage = "draft"\n'
    '[flows.main.steps.publish]\nrole = "w"\nmessage = "Publish: {{ steps.draft }}"\n'
    'depend_on = ["draft"]\n'
)
WARNINGS = (
    "{file}:13:21: warning[template_ref_not_upstream] flows.main.steps.publish.message: step "
    "'publish' reads '{{{{ steps.draft }}}}', but step 'draft' is not upstream of it (it may not "
    "have run yet and reads as null)\n"
    "  hint: add it to depends_on (directly or through a dependency)\n"
    "{file}:14:1: warning[unknown_key] flows.main.steps.publish.depend_on: unknown key "
    "'depend_on' in [flows.main.steps.publish]; did you mean 'depends_on'?\n"
)


def typo_mob(tmp_path: Path) -> Path:
    mob = tmp_path / "typo.toml"
    mob.write_text(HEAD + TYPO)
    return mob


def test_item1_run_of_a_file_prints_validates_warnings_and_the_new_revision(
    tmp_path: Path,
) -> None:
    """A typo'd key used to run silently (the step ran with its input missing)."""
    mob, store = typo_mob(tmp_path), tmp_path / "store"
    validated = cli("validate", mob)
    warnings = WARNINGS.format(file=mob)
    assert validated.stdout == warnings + "0 errors, 2 warnings in 1 file\n"
    first = cli("run", mob, "--store", store, "--json")
    assert first.exit_code == 0
    lines = first.stderr.splitlines(keepends=True)
    assert "".join(lines[:3]) == warnings  # before the run exists
    assert lines[3] == "registered s revision 1\n"
    assert lines[4].startswith("run ") and lines[4].endswith(" (s/main)\n")
    again = cli("run", mob, "--store", store)
    assert again.stderr.startswith(warnings + "run ")  # unchanged: no new revision to name
    mob.write_text(mob.read_text() + "[limits]\nmax_step_retries = 2\n")
    edited = cli("run", mob, "--store", store)
    assert edited.stderr.startswith(warnings + "registered s revision 2\nrun ")
    by_id = cli("run", "s", "--store", store)  # a registered mob: nothing is registered
    assert by_id.exit_code == 0 and by_id.stderr.startswith("run ")


def test_item1_strict_turns_the_warnings_into_errors_on_run_and_register(tmp_path: Path) -> None:
    mob, store = typo_mob(tmp_path), tmp_path / "store"
    errors = WARNINGS.format(file=mob).replace("warning[", "error[")
    refused = (
        f"error[invalid_definition]: {mob} has 2 error(s); nothing was registered\n"
        f"hint: run `mobctl validate {mob}` for the diagnostics\n"
    )
    for command in (("run", mob, "--strict"), ("register", mob, "--strict")):
        result = cli(*command, "--store", store)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", errors + refused)
    assert not store.exists()  # nothing was registered, no run exists


def test_item1_register_prints_the_warnings_also_with_json(tmp_path: Path) -> None:
    mob, store = typo_mob(tmp_path), tmp_path / "store"
    result = cli("register", mob, "--store", store, "--json")
    assert result.exit_code == 0
    assert result.stderr == WARNINGS.format(file=mob)
    assert json.loads(result.stdout)["revision"] == 1
    text = cli("register", mob, "--store", store)
    assert text.stderr == WARNINGS.format(file=mob)
    assert text.stdout.startswith("s is unchanged at revision 1 ")


ECHO = '[flows.main.steps.a]\nrole = "w"\nmessage = "{{ params }}"\n'


def run_params(tmp_path: Path, *args: str) -> tuple[int, object, str]:
    mob = tmp_path / "echo.toml"
    mob.write_text(HEAD + ECHO)
    result = cli("run", mob, *args, "--store", tmp_path / "store", "--json")
    started = result.stdout and json.loads(result.stdout)
    params = started and json.loads(started["outputs"]["a"]["w-1"])
    return result.exit_code, params, result.stderr


def test_item6_p_is_always_a_string_and_P_is_json(tmp_path: Path) -> None:
    """`-p version=1.10` became 1.1 and `-p sha=1e5` became 100000.0."""
    code, params, _ = run_params(
        tmp_path,
        *("-p", "version=1.10", "-p", "sha=1e5", "-p", "flag=true", "-p", "empty="),
        *("-P", "n=3", "-P", 'flags=["a"]', "-P", "ratio=1.10", "-P", "on=false"),
    )
    assert code == 0
    assert params == {
        "version": "1.10",
        "sha": "1e5",
        "flag": "true",
        "empty": "",
        "n": 3,
        "flags": ["a"],
        "ratio": 1.1,
        "on": False,
    }


def test_item6_order_params_then_P_then_p(tmp_path: Path) -> None:
    code, params, _ = run_params(
        tmp_path, "--params", '{"a": 1, "b": 1, "c": 1}', "-P", "b=2", "-P", "c=2", "-p", "c=3"
    )
    assert (code, params) == (0, {"a": 1, "b": 2, "c": "3"})


def test_item6_P_refuses_what_is_not_json(tmp_path: Path) -> None:
    cases = {
        ("-P", "x=hello"): "error[usage]: -P x: the value is not JSON: Expecting value: line 1 "
        "column 1 (char 0)\n"
        "hint: -P takes JSON (-P n=3, -P 'flags=[\"a\"]'); -p KEY=VALUE passes text\n",
        ("-P", "x=1e999"): "error[usage]: -P x: the number 1e999 is out of range (Infinity is "
        "not JSON)\nhint: to pass it as text, use -p KEY=VALUE\n",
        ("-P", "novalue"): "error[usage]: -P takes KEY=JSON, not 'novalue'\n",
        ("-p", "=v"): "error[usage]: -p takes KEY=VALUE, not '=v'\n",
    }
    for args, stderr in cases.items():
        code, _, err = run_params(tmp_path, *args)
        assert (code, err) == (2, stderr)
    assert not (tmp_path / "store").exists()
