"""Suite files are checked before any case runs: every problem a located diagnostic, exit 2;
the paths a suite names stay inside the current directory; no program runs unless allowed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import cli
from tests.suites.conftest import CASE, write_suite

BAD = """
[[case]]
name = "one"
mob = "../outside.toml"
drivers = ["scripted:missing.toml", "command:rm -rf /", "bogus:x", "w=replay:/etc,fallback=llm"]
timeout = "soon"
realm_profiles = { p = "nope.toml" }

[[case.expect.output]]
path = "stepz.a"
op = "matches"
value = "("

[[case.expect.output]]
path = "steps.a"
op = "schema"
value = { type = 3 }

[[case]]
name = "one"
mob = "not a slug!"
"""


def test_an_invalid_suite_gets_every_diagnostic_located_and_exit_2(project: Path) -> None:
    (project / "bad.test.toml").write_text(BAD.lstrip())
    result = cli("test", "bad.test.toml")
    outside = (
        "leads outside the suite's directory, the current directory and every --allow-path root"
    )
    assert result.stdout.splitlines() == [
        f"bad.test.toml:3:7: error[path_outside_suite] case[0].mob: path '../outside.toml' {outside}",
        "bad.test.toml:4:12: error[path_not_found] case[0].drivers[0]: no file 'missing.toml' (relative to the suite)",
        "bad.test.toml:4:37: error[invalid_driver] case[0].drivers[1]: a suite runs no program (command:) unless mobctl test is given --allow-command",
        "bad.test.toml:4:57: error[invalid_driver] case[0].drivers[2]: unknown driver kind 'bogus'",
        f"bad.test.toml:4:68: error[path_outside_suite] case[0].drivers[3]: path '/etc' {outside}",
        "bad.test.toml:6:24: error[path_not_found] case[0].realm_profiles.p: no file 'nope.toml' (relative to the suite)",
        "bad.test.toml:5:11: error[invalid_value] case[0].timeout: timeout 'soon' is not a duration",
        "bad.test.toml:9:8: error[invalid_value] case[0].expect.output[0].path: 'stepz.a' is not a flow path (unknown root in 'stepz.a': expected params, steps.<id> or loops.<id>)",
        "bad.test.toml:11:9: error[invalid_regex] case[0].expect.output[0].value: not a regular expression: missing ) at position 1",
        "bad.test.toml:16:9: error[invalid_schema] case[0].expect.output[1].value: not a JSON Schema: 3 is not valid under any of the given schemas",
        "bad.test.toml:20:7: error[invalid_value] case[1].mob: 'not a slug!' is neither a definition file nor a mob id",
        "bad.test.toml:19:8: error[duplicate_case] case[1].name: a case named 'one' comes earlier in this suite",
    ]
    assert result.stderr == "error[invalid_suite]: 12 error(s) in 1 suite file(s); no case ran\n"
    assert result.exit_code == 2


def test_shape_errors_are_located_like_validate(project: Path) -> None:
    write_suite(
        project,
        '[case.expect]\nstatus = "done"\nstauts = "completed"\n\n'
        '[[case.expect.output]]\npath = "steps.a"\nop = "in"\nvalue = 1\n',
    )
    result = cli("test", "t.test.toml")
    assert result.stdout.splitlines() == [
        "t.test.toml:8:10: error[invalid_value] case[0].expect.status: Input should be 'pending', 'running', 'completed', 'failed' or 'canceled'",
        "t.test.toml:11:1: error[invalid_value] case[0].expect.output[0]: op 'in' takes no value",
        "t.test.toml:9:1: error[unknown_key] case[0].expect.stauts: unknown key 'stauts'",
    ]
    assert result.exit_code == 2


def test_a_toml_syntax_error(project: Path) -> None:
    (project / "syn.test.toml").write_text("[[case]\nname = 1\n")
    result = cli("test", "syn.test.toml", "--format", "github")
    assert result.stdout == (
        "::error file=syn.test.toml,line=1,col=7,title=toml_syntax::"
        "Expected ']]' at the end of an array declaration\n"
    )
    assert result.exit_code == 2


def test_json_output_of_an_invalid_suite(project: Path) -> None:
    (project / "syn.test.toml").write_text("[[case]]\n")
    result = cli("test", "syn.test.toml", "-o", "json")
    document = json.loads(result.stdout)
    assert document["cases"] == []
    assert [
        (d["code"], d["location"], d["line"], d["column"], d["message"])
        for d in document["diagnostics"]
    ] == [
        ("invalid_value", "case[0]", 1, 1, "missing required key 'name'"),
        ("invalid_value", "case[0]", 1, 1, "missing required key 'mob'"),
    ]
    assert result.exit_code == 2


def test_paths_resolve_from_the_suite_and_may_use_allow_path(
    project: Path, tmp_path_factory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "mob.toml").write_text((project / "mob.toml").read_text())
    (project / "tests").mkdir()
    suite = project / "tests" / "s.test.toml"
    suite.write_text(
        f'[[case]]\nname = "n"\nmob = "{elsewhere / "mob.toml"}"\n'
        'params = { x = 1, run_c = false }\ndrivers = ["scripted:../fixtures.toml"]\n'
    )
    refused = cli("test", "tests")
    assert "error[path_outside_suite] case[0].mob" in refused.stdout
    assert refused.exit_code == 2
    allowed = cli("test", "tests", "--allow-path", elsewhere)
    assert allowed.stdout == "PASS tests/s.test.toml::n\n1 passed, 0 failed\n"


def test_a_linked_path_leading_out_is_refused(project: Path, tmp_path_factory) -> None:
    secret = tmp_path_factory.mktemp("secret")
    (secret / "f.toml").write_text('[[reply]]\noutput = "x"\n')
    os.symlink(secret, project / "inside")
    write_suite(
        project,
        "",
        case='[[case]]\nname = "n"\nmob = "mob.toml"\ndrivers = ["scripted:inside/f.toml"]\n',
    )
    result = cli("test", "t.test.toml")
    assert (
        "error[path_outside_suite] case[0].drivers[0]: path 'inside/f.toml' leads outside"
        in result.stdout
    )
    assert result.exit_code == 2


def test_a_realm_profile_name_that_cannot_name_a_file_is_an_invalid_suite(project: Path) -> None:
    (project / "p.toml").write_text('model = "claude-sonnet-4-6"\n')
    write_suite(
        project, "", case=CASE + 'realm_profiles = { "../evil" = "p.toml", ok = "p.toml" }\n'
    )
    result = cli("test", "t.test.toml")
    assert result.stdout == (
        "t.test.toml:6:20: error[invalid_value] case[0].realm_profiles.../evil: '../evil' cannot "
        "name a realm profile (letters, digits, '.', '_', '-')\n"
    )  # the case ran and failed with unsafe_id
    assert result.exit_code == 2


def test_command_drivers_only_with_allow_command(project: Path) -> None:
    write_suite(
        project,
        '[case.expect]\nstatus = "completed"\nloops = { rounds = 1 }\n',
        case='[[case]]\nname = "n"\nmob = "mob.toml"\nparams = { x = 1, run_c = false }\n'
        """drivers = [\"\"\"command:echo '{"done": true}'\"\"\"]\n""",
    )
    refused = cli("test", "t.test.toml")
    assert "error[invalid_driver] case[0].drivers[0]: a suite runs no program" in refused.stdout
    assert refused.exit_code == 2
    result = cli("test", "t.test.toml", "--allow-command")
    assert result.stdout == "PASS t.test.toml::n\n1 passed, 0 failed\n"


def test_directories_find_test_toml_files_and_skip_links(project: Path) -> None:
    (project / "tests" / "deep").mkdir(parents=True)
    write_suite(project / "tests" / "deep", "", name="a.test.toml")
    (project / "tests" / "deep" / "a.test.toml").write_text(
        (project / "tests" / "deep" / "a.test.toml")
        .read_text()
        .replace('"mob.toml"', '"../../mob.toml"')
        .replace('"scripted:fixtures.toml"', '"scripted:../../fixtures.toml"')
    )
    (project / "tests" / "notes.toml").write_text("x = 1\n")  # not a suite: not read
    os.symlink(project / "tests" / "deep" / "a.test.toml", project / "tests" / "link.test.toml")
    result = cli("test", "tests")
    assert result.stdout == "PASS tests/deep/a.test.toml::the case\n1 passed, 0 failed\n"
    assert (
        result.stderr
        == "warning: skipped 'tests/link.test.toml': a symbolic link is not followed\n"
    )


def test_globs_name_suites(project: Path) -> None:
    for name in ("a.test.toml", "b.test.toml", "c.test.toml"):
        write_suite(project, "", case=CASE.replace('"the case"', f'"{name}"'), name=name)
    result = cli("test", "[ab].test.toml")
    assert result.stdout == (
        "PASS a.test.toml::a.test.toml\nPASS b.test.toml::b.test.toml\n2 passed, 0 failed\n"
    )
    nothing = cli("test", "z*.test.toml")
    assert nothing.stderr.startswith("error[path_not_found]: ")
    assert nothing.exit_code == 2


def test_nothing_to_run_is_a_usage_error(project: Path) -> None:
    (project / "empty").mkdir()
    result = cli("test", "empty")
    assert (
        result.stderr
        == "error[path_not_found]: no suite file (*.test.toml) with a case was found\n"
    )
    assert result.exit_code == 2
    missing = cli("test", "nope")
    assert missing.stderr.startswith("error[path_not_found]: path 'nope' does not exist\n")
    assert missing.exit_code == 2
