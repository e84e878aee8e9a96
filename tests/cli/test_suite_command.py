"""``mobctl test`` output as CI systems read it: JUnit XML (read back with junitparser, as
the JUnit reporters of GitHub, GitLab and Jenkins do), ``-o json``, ``--format github``."""

from __future__ import annotations

import json
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped

from tests.conftest import SAMPLES, cli
from tests.suites.conftest import CASE, project, write_suite

__all__ = ["project"]  # the fixture

MIXED = (
    CASE
    + '[case.expect]\nstatus = "completed"\n\n'
    + CASE.replace('"the case"', '"fails"')
    + '[case.expect]\nstatus = "failed"\nloops = { rounds = 5 }\n\n'
    + CASE.replace('"the case"', '"errs"').replace('"mob.toml"', '"gone"')
    + "\n"
    + CASE.replace('"the case"', '"later"')
    + 'skip = "not now"\n'
)


def test_junit_reads_back_with_one_testcase_per_case(project: Path) -> None:
    write_suite(project, "", case=MIXED)
    result = cli("test", "t.test.toml", "--junit", "out/junit.xml")
    assert result.stdout.endswith("1 passed, 2 failed, 1 skipped\n")
    assert result.exit_code == 1
    xml = JUnitXml.fromfile(str(project / "out" / "junit.xml"))
    suites = list(xml)
    assert [s.name for s in suites] == ["t.test.toml"]
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 1, 1, 1)
    cases = {case.name: case for case in suite}
    assert list(cases) == ["the case", "fails", "errs", "later"]
    assert all(case.classname == "t.test.toml" and case.time >= 0 for case in cases.values())
    assert cases["the case"].is_passed
    [failure] = cases["fails"].result
    assert isinstance(failure, Failure)
    assert (
        failure.message
        == "2 expectations failed; the first: the run ended completed, expected failed"
    )
    assert (
        "t.test.toml:16:10: expect.status: the run ended completed, expected failed" in failure.text
    )
    assert "expect.loops.rounds: loop 'rounds' ran 2 iterations, expected 5" in failure.text
    [error] = cases["errs"].result
    assert isinstance(error, Error)
    assert error.type == "not_found"
    [skipped] = cases["later"].result
    assert isinstance(skipped, Skipped)
    assert skipped.message == "not now"
    assert cases["fails"]._elem.get("line") == "10"
    assert cases["fails"]._elem.get("file") == "t.test.toml"


def test_junit_never_holds_a_control_character(project: Path) -> None:
    write_suite(
        project,
        "",
        case=CASE.replace('"the case"', '"bell \\u0007 and esc \\u001b"')
        + '[case.expect]\nstatus = "failed"\n',
    )
    cli("test", "t.test.toml", "--junit", "j.xml")
    text = (project / "j.xml").read_text()
    assert "\x07" not in text
    assert "\x1b" not in text
    assert [c.name for s in JUnitXml.fromfile(str(project / "j.xml")) for c in s] == [
        "bell \\u0007 and esc \\u001b"
    ]


def test_junit_never_holds_a_noncharacter_xml_refuses(project: Path) -> None:
    # U+FFFE and U+FFFF are no control characters, but XML 1.0 cannot hold them either
    write_suite(
        project,
        '[[case.expect.output]]\npath = "params.x"\nop = "eq"\nvalue = "\\uFFFF"\n',
        case=CASE.replace('"the case"', '"odd \\uFFFE"'),
    )
    assert cli("test", "t.test.toml", "--junit", "j.xml").exit_code == 1
    (case,) = [c for s in JUnitXml.fromfile(str(project / "j.xml")) for c in s]
    assert case.name == "odd \\ufffe"
    assert '"\\uffff"' in case.result[0].message


def test_json_document(project: Path) -> None:
    write_suite(project, "", case=MIXED)
    result = cli("test", "t.test.toml", "-o", "json")
    document = json.loads(result.stdout)
    assert document["summary"] == {"passed": 1, "failed": 2, "skipped": 1}
    assert [(c["name"], c["outcome"], c["line"]) for c in document["cases"]] == [
        ("the case", "passed", 1),
        ("fails", "failed", 10),
        ("errs", "failed", 20),
        ("later", "skipped", 27),
    ]
    fails = document["cases"][1]
    assert fails["status"] == "completed"
    assert fails["failures"][0] | {"evidence": None} == {
        "expectation": "expect.status",
        "line": 16,
        "column": 10,
        "message": "the run ended completed, expected failed",
        "expected": "failed",
        "actual": "completed",
        "detail": ['- "failed"', '+ "completed"'],
        "evidence": None,
    }
    assert fails["failures"][0]["evidence"][0]["kind"]["type"] == "flow_completed"
    assert document["cases"][2]["error"]["code"] == "not_found"
    assert json.loads(cli("test", "t.test.toml", "--json").stdout)["summary"] == document["summary"]
    assert result.exit_code == 1


def test_github_annotations_point_at_the_failed_expectation(project: Path) -> None:
    write_suite(project, "", case=MIXED)
    lines = cli("test", "t.test.toml", "--format", "github").stdout.splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert annotations == [
        "::error file=t.test.toml,line=16,col=10,title=mobctl test%3A fails::expect.status: the run ended completed, expected failed",
        "::error file=t.test.toml,line=17,col=20,title=mobctl test%3A fails::expect.loops.rounds: loop 'rounds' ran 2 iterations, expected 5",
        f"::error file=t.test.toml,line=20,col=1,title=mobctl test%3A errs::error[not_found]: no mob 'gone' is registered in {Path.home() / 'store'}",
    ]
    assert lines[-1] == "1 passed, 2 failed, 1 skipped"


def test_bad_output_options_are_usage_errors(project: Path) -> None:
    write_suite(project, "")
    result = cli("test", "t.test.toml", "-o", "wide")
    assert (result.exit_code, result.stderr) == (
        2,
        "error[usage]: -o/--output 'wide' is not an output format of this command\n"
        "hint: use text, json or yaml\n",
    )
    result = cli("test", "t.test.toml", "--format", "sarif")
    assert (result.exit_code, result.stderr) == (
        2,
        "error[usage]: --format 'sarif' is not a report format\nhint: use text or github\n",
    )
    unwritable = cli("test", "t.test.toml", "--junit", "t.test.toml/x.xml")
    assert unwritable.stderr.startswith(
        "error[output_not_writable]: cannot write t.test.toml/x.xml"
    )
    assert unwritable.exit_code == 2


def test_the_sample_suites_pass(monkeypatch) -> None:
    monkeypatch.chdir(SAMPLES.parent)
    result = cli("test", "sample-mobs/tests")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.endswith("15 passed, 0 failed\n")
