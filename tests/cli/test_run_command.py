"""`mobctl run` (and `register`): what it tells about the definition before the run, and how it
reads params."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


# --- item 5: mistakes caught before a run exists ---------------------------------------------

TWO_ROLES = (
    '[profiles.critic]\nmodel = "claude-sonnet-4-6"\n'
    '[flows.main.steps.draft]\nrole = "w"\nmessage = "Draft {{ params.topic }} for {{ params.who.name }}"\n'
    '[flows.main.steps.judge]\nrole = "critic"\nmessage = "Judge {{ steps.draft }}"\n'
    'depends_on = ["draft"]\n'
    '[flows.main.steps.extra]\nrole = "w"\nmessage = "{{ params.optional }}"\n'
    'condition = { op = "eq", path = "params.mode", value = "full" }\n'
)


def two_roles(tmp_path: Path) -> Path:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + TWO_ROLES)
    return mob


def no_run_exists(store: Path) -> bool:
    return not (store / "mobs" / "s" / "runs").exists() or not any(
        (store / "mobs" / "s" / "runs").iterdir()
    )


def test_item5_missing_params_the_flow_needs_are_a_usage_error_listing_them(
    tmp_path: Path,
) -> None:
    """It was a recorded failed run; `params.optional` sits behind a condition, so only the
    condition's own `params.mode` is needed."""
    mob, store = two_roles(tmp_path), tmp_path / "store"
    result = cli("run", mob, "-P", 'who={"title": "Dr"}', "--store", store)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "error[usage]: flow 'main' of mob 's' needs params that were not given: topic (read by "
        "step 'draft'); who.name (read by step 'draft'); mode (read by the condition of step "
        "'extra')\n"
        "hint: pass each with -p KEY=VALUE (text), -P KEY=JSON or --params JSON\n"
    )
    assert no_run_exists(store)
    given = cli(
        "run", mob, "-p", "topic=x", "-P", 'who={"name": "Ada"}', "-p", "mode=short",
        "--store", store, "--json",
    )  # fmt: skip
    assert given.exit_code == 0, given.stderr
    assert json.loads(given.stdout)["steps"]["extra"] == "skipped"


def test_item5_a_driver_for_a_role_no_step_has_is_a_usage_error(tmp_path: Path) -> None:
    """It silently fell back to echo for the role that was meant."""
    mob, store = two_roles(tmp_path), tmp_path / "store"
    params = ["-p", "topic=x", "-P", 'who={"name": "A"}', "-p", "mode=m"]
    result = cli("run", mob, *params, "--driver", "critc=echo", "--store", store)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "error[usage]: --driver critc=…: no step of flow 'main' of mob 's' has the role 'critc'\n"
        "hint: the roles of flow 'main': critic, w\n"
    )
    assert no_run_exists(store)
    ok = cli("run", mob, *params, "--driver", "critic=echo", "--driver", "w=echo", "--store", store)
    assert ok.exit_code == 0, ok.stderr


def test_item5_a_command_that_is_missing_or_not_executable_is_invalid_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's error table already said so; it failed every turn instead."""
    monkeypatch.chdir(tmp_path)
    mob, store = typo_mob(tmp_path), tmp_path / "store"
    (tmp_path / "plain.sh").write_text("#!/bin/sh\necho hi\n")
    for spec, stderr in (
        (
            "command:./nope.sh",
            "error[invalid_driver]: command './nope.sh' is not found\n"
            "hint: name an executable file (./agent.sh, /usr/bin/agent) or a program on PATH\n",
        ),
        (
            "command:./plain.sh --flag",
            "error[invalid_driver]: command './plain.sh' is not executable\n"
            "hint: chmod +x ./plain.sh\n",
        ),
        (
            "w=command:no-such-agent-anywhere",
            "error[invalid_driver]: command 'no-such-agent-anywhere' is not found on PATH\n"
            "hint: name an executable file (./agent.sh, /usr/bin/agent) or a program on PATH\n",
        ),
    ):
        result = cli("run", mob, "--driver", spec, "--store", store)
        assert (result.exit_code, result.stderr) == (2, stderr)
    assert not store.exists()  # refused before the definition was even registered
    (tmp_path / "plain.sh").chmod(0o755)
    ran = cli("run", mob, "--driver", "command:./plain.sh", "--store", store)
    assert ran.exit_code == 0, ran.stderr


def test_item5_a_scripted_delay_too_long_to_wait_is_refused_when_the_fixtures_load(
    tmp_path: Path,
) -> None:
    mob, store = typo_mob(tmp_path), tmp_path / "store"
    replies = tmp_path / "replies.toml"
    replies.write_text('[[reply]]\noutput = "x"\ndelay_ms = 9223372036854775807\n')
    result = cli("run", mob, "--driver", f"scripted:{replies}", "--store", store)
    assert (result.exit_code, result.stderr) == (
        2,
        "error[invalid_driver]: invalid fixtures file:\n"
        f"  {replies}:3:12: reply[0].delay_ms: Input should be less than or equal to "
        "3153600000000\n"
        "hint: each [[reply]] has match keys (step, member, role, iteration, attempt) and one "
        "answer (output, json or fail)\n",
    )
    replies.write_text('[[reply]]\noutput = "x"\ndelay_ms = 3153600000000\n')  # 100 years: kept
    waited = cli("run", mob, "--driver", f"scripted:{replies}", "--timeout", "1s", "--store", store)
    assert waited.exit_code == 5, waited.stderr


def test_item14_a_directory_named_like_a_registered_mob_does_not_stand_in_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mobctl run many` with `./many/` beside it runs the registered mob `many`: only a name
    ending in .toml/.json or holding a `/` is a file."""
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    mob = tmp_path / "def.toml"
    mob.write_text(HEAD.replace('id = "s"', 'id = "many"') + ECHO.replace("{{ params }}", "hi"))
    assert cli("register", mob, "--store", store).exit_code == 0
    (tmp_path / "many").mkdir()
    (tmp_path / "many" / "mob.toml").write_text("not a definition")
    ran = cli("run", "many", "--store", store, "--json")
    assert ran.exit_code == 0, ran.stderr
    assert json.loads(ran.stdout)["mob_id"] == "many"
    as_path = cli("run", "./many", "--store", store)  # asked for as a path: not a file
    assert (as_path.exit_code, as_path.stderr) == (
        1,
        "many: error[toml_syntax]: cannot read file: Is a directory\n"
        "error[invalid_definition]: many has 1 error(s); nothing was registered\n"
        "hint: run `mobctl validate many` for the diagnostics\n",
    )
