"""``-k EXPR`` chooses cases by name as pytest's ``-k`` chooses tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobctl.errors import UsageError
from mobctl.suites.keywords import keyword_matcher
from tests.conftest import cli
from tests.suites.conftest import CASE, write_suite

NAMES = ["quorum holds", "quorum fails after a retry", "loop stops", "One Abstention"]


@pytest.mark.parametrize(
    ("expression", "chosen"),
    [
        ("quorum", ["quorum holds", "quorum fails after a retry"]),
        ("QUORUM and not retry", ["quorum holds"]),
        ("loop or abstention", ["loop stops", "One Abstention"]),
        ('"one abstention"', ["One Abstention"]),
        ("not (quorum or loop)", ["One Abstention"]),
        ("(quorum and retry) or stops", ["quorum fails after a retry", "loop stops"]),
    ],
)
def test_expressions(expression: str, chosen: list[str]) -> None:
    matches = keyword_matcher(expression)
    assert [name for name in NAMES if matches(name)] == chosen


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("a and", "it ends where a word is expected"),
        ("(a", "a parenthesis is not closed"),
        ("a b", "unexpected 'b'"),
        (")", "unexpected ')'"),
        ("", "it ends where a word is expected"),
    ],
)
def test_malformed_expressions_are_usage_errors(expression: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        keyword_matcher(expression)
    assert caught.value.message == f"-k {expression!r}: {problem}"


@pytest.mark.parametrize("nesting", ["(" * 5000 + "a" + ")" * 5000, "not " * 5000 + "a"])
def test_deep_nesting_is_a_usage_error_not_a_recursion_error(nesting: str) -> None:
    with pytest.raises(UsageError) as caught:
        keyword_matcher(nesting)
    assert caught.value.message.endswith(": it nests 'not' and parentheses more than 100 deep")
    matches = keyword_matcher("not " * 50 + "(" * 50 + "loop" + ")" * 50)  # 100 deep
    assert [name for name in NAMES if matches(name)] == ["loop stops"]


def test_k_selects_cases_and_no_match_is_exit_2(project: Path) -> None:
    two = CASE + CASE.replace('"the case"', '"another case"')
    write_suite(project, "", case=two)
    chosen = cli("test", ".", "-k", "another")
    assert chosen.stdout == "PASS t.test.toml::another case\n1 passed, 0 failed\n"
    none = cli("test", ".", "-k", "nothing")
    assert none.stderr == "error[usage]: no case matches -k 'nothing' (2 case(s) found)\n"
    assert none.exit_code == 2
    bad = cli("test", ".", "-k", "a and")
    assert bad.stderr.startswith("error[usage]: -k 'a and': it ends where a word is expected\n")
    assert bad.exit_code == 2
