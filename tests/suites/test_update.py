"""``--update`` rewrites the failing ``eq`` output assertions with the actual values, with
tomlkit: comments and layout survive, and nothing else in the file changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobctl.suites.update import toml_value
from tests.conftest import cli
from tests.suites.conftest import CASE, write_suite

EXPECT = """
# the outputs we rely on
[case.expect]
status = "completed"  # keep me

[[case.expect.output]]
path = "steps.a"
op = "eq"
value = "old"   # the old answer

[[case.expect.output]]
path = "steps.b"
op = "eq"
value = { n = 0 }

[[case.expect.output]]
path = "steps.b.n"
op = "gt"
value = 10

[[case.expect.output]]
path = "steps.a"
op = "eq"
value = "alpha"
"""


def test_update_rewrites_failing_eq_values_and_keeps_everything_else(project: Path) -> None:
    suite = write_suite(project, EXPECT)
    before = suite.read_text()
    result = cli("test", "t.test.toml", "--update")
    assert result.stdout == (
        "FAIL t.test.toml::the case\n"
        "  t.test.toml:24:9: expect.output[2].value: steps.b.n is 3, expected gt 10\n"
        "    event 11 step_completed step=b\n"
        "updated t.test.toml:14:9: expect.output[0].value\n"
        "updated t.test.toml:19:9: expect.output[1].value\n"
        "0 passed, 1 failed\n"
    )
    assert result.exit_code == 1  # the gt assertion cannot be updated
    assert suite.read_text() == before.replace('value = "old"', 'value = "alpha"').replace(
        "value = { n = 0 }", 'value = {n = 3, word = "bravo"}'
    )


def test_a_case_whose_failures_were_all_updated_passes(project: Path) -> None:
    suite = write_suite(project, EXPECT.replace("value = 10", "value = 1"))
    result = cli("test", "t.test.toml", "--update")
    assert result.stdout.startswith("PASS t.test.toml::the case\n")
    assert result.stdout.endswith("1 passed, 0 failed\n")
    assert cli("test", "t.test.toml").exit_code == 0  # the file now says what the run does
    assert "# the old answer" in suite.read_text()


def test_without_update_nothing_is_written(project: Path) -> None:
    suite = write_suite(project, EXPECT)
    before = suite.read_text()
    assert cli("test", "t.test.toml").exit_code == 1
    assert suite.read_text() == before


@pytest.mark.parametrize("then", ["", "mkfifo t.test.toml; "])
def test_a_suite_deleted_or_replaced_while_it_ran_is_left_alone(project: Path, then: str) -> None:
    # the case's own driver takes the suite away: deleted, or a FIFO in its place (exit 70)
    change = f"rm t.test.toml; {then}echo alpha"
    case = CASE.replace('"scripted:fixtures.toml"', f"'command:sh -c \"{change}\"'")
    write_suite(
        project, '[[case.expect.output]]\npath = "steps.a"\nop = "eq"\nvalue = "old"\n', case=case
    )
    result = cli("test", "t.test.toml", "--update", "--allow-command")
    assert result.stderr == (
        "error[usage]: t.test.toml changed since mobctl test read it; nothing was updated\n"
        "hint: run mobctl test --update again\n"
    )
    assert result.exit_code == 2
    assert (project / "t.test.toml").exists() == bool(then)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )
)
def test_toml_value_round_trips_every_value_toml_can_hold(value: object) -> None:
    import tomllib

    import tomlkit

    from mobctl.suites.expectations import _tomlable

    if not _tomlable(value):
        return
    document = tomlkit.document()
    document["value"] = toml_value(value)
    assert tomllib.loads(document.as_string())["value"] == value
