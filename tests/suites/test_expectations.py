"""Every expectation kind, passing and failing, with the exact report text of ``mobctl test``
(the run of ``conftest.MOB``: a retry of ``a``, a JSON ``b``, ``c`` skipped by its condition,
two iterations of the loop ``rounds``; its events have the cursors below)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli
from tests.suites.conftest import write_suite

PASSING = """
[case.expect]
status = "completed"
steps = { a = "completed", b = "completed", c = "skipped", d = "completed" }
order = ["a", "b", "d", "d"]
dispatches = { a = 2, b = 1, c = 0, d = 2 }
retries = { a = 1, b = 0 }
events = { subsequence = ["flow_started", "step_target_failed", "step_skipped", "flow_*"], never = ["step_failed"] }
loops = { rounds = 2 }

[[case.expect.output]]
path = "steps.a"
op = "eq"
value = "alpha"

[[case.expect.output]]
path = "steps.b.n"
op = "ne"
value = 4

[[case.expect.output]]
path = "steps.b.word"
op = "in"
values = ["alpha", "bravo"]

[[case.expect.output]]
path = "steps.b.n"
op = "gt"
value = 2.5

[[case.expect.output]]
path = "steps.b.n"
op = "lt"
value = 4

[[case.expect.output]]
path = "steps.b"
op = "exists"

[[case.expect.output]]
path = "steps.c"
op = "absent"

[[case.expect.output]]
path = "steps.a"
op = "matches"
value = "^al.h"

[[case.expect.output]]
path = "steps.b"
op = "schema"
value = { type = "object", required = ["n", "word"] }

[[case.expect.output]]
path = "loops.rounds.iterations.0.steps.d.done"
op = "eq"
value = false

[[case.expect.output]]
path = "params.x"
op = "eq"
value = 1
"""


def test_every_kind_passing(project: Path) -> None:
    write_suite(project, PASSING)
    result = cli("test", "t.test.toml")
    assert result.stdout == "PASS t.test.toml::the case\n1 passed, 0 failed\n"
    assert result.exit_code == 0


def test_the_events_exact(project: Path) -> None:
    types = [
        "flow_started",
        *["step_dispatched", "step_target_failed"],
        *["step_dispatched", "step_target_completed", "step_completed"] * 2,
        "step_skipped",
        *["step_dispatched", "step_target_completed", "step_completed"] * 2,
        "flow_completed",
    ]
    write_suite(project, f"[case.expect]\nevents = {types!r}\n".replace("'", '"'))
    assert cli("test", "t.test.toml").exit_code == 0


HEAD = "FAIL t.test.toml::the case\n"
TAIL = "0 passed, 1 failed\n"
FINISHED = 'event 19 flow_completed flow_id=main structured_output={"steps":{"a":"alpha","b":{"n":3,"word":"bravo"},"d":{"do...'

FAILING = {
    "status": (
        'status = "failed"',
        f"""  t.test.toml:8:10: expect.status: the run ended completed, expected failed
    - "failed"
    + "completed"
    {FINISHED}
""",
    ),
    "cause": (
        'cause = "step_error"',
        f"""  t.test.toml:8:9: expect.cause: the run's cause is null, expected "step_error"
    - "step_error"
    + null
    {FINISHED}
""",
    ),
    "steps": (
        'steps = { c = "completed", zz = "skipped" }',
        """  t.test.toml:8:15: expect.steps.c: step 'c' is skipped, expected completed
    - "completed"
    + "skipped"
    event 12 step_skipped step=c reason="condition evaluated to false"
  t.test.toml:8:33: expect.steps.zz: flow 'main' has no step 'zz' (its steps: a, b, c, d)
""",
    ),
    "order exact": (
        'order = ["a", "d", "b"]',
        """  t.test.toml:8:9: expect.order.exact: the steps completed in another order
    --- expected
    +++ actual
    @@ -1,3 +1,4 @@
     a
    +b
     d
    -b
    +d
    event 8 step_completed step=a
    event 11 step_completed step=b
    event 15 step_completed step=d
    event 18 step_completed step=d
""",
    ),
    "order subsequence": (
        'order = { subsequence = ["b", "a"] }',
        """  t.test.toml:8:25: expect.order.subsequence: no completion of 'a' after 'b'
    - ["b","a"]
    + ["a","b","d","d"]
    event 8 step_completed step=a
    event 11 step_completed step=b
    event 15 step_completed step=d
    event 18 step_completed step=d
""",
    ),
    "dispatches": (
        "dispatches = { a = 1 }",
        """  t.test.toml:8:20: expect.dispatches.a: step 'a' was dispatched 2 times, expected 1
    - 1
    + 2
    event 4 step_dispatched step=a member=w-1 attempt=1
    event 6 step_dispatched step=a member=w-1 attempt=2
""",
    ),
    "retries": (
        "retries = { a = 0 }",
        """  t.test.toml:8:17: expect.retries.a: step 'a' was retried 1 time, expected 0
    - 0
    + 1
    event 6 step_dispatched step=a member=w-1 attempt=2
""",
    ),
    "events exact": (
        'events = ["flow_started", "step_dispatched", "step_target_failed", "flow_completed"]',
        """  t.test.toml:8:10: expect.events.exact: the run's events differ
    --- expected
    +++ actual
    @@ -2,3 +2,16 @@
     step_dispatched
     step_target_failed
    +step_dispatched
    +step_target_completed
    +step_completed
    +step_dispatched
    +step_target_completed
    +step_completed
    +step_skipped
    +step_dispatched
    +step_target_completed
    +step_completed
    +step_dispatched
    +step_target_completed
    +step_completed
     flow_completed
""",
    ),
    "events subsequence": (
        'events = { subsequence = ["step_skipped", "step_fail*"] }',
        """  t.test.toml:8:26: expect.events.subsequence: no 'step_fail*' event after 'step_skipped'
    - ["step_skipped","step_fail*"]
    + ["flow_started","step_dispatched","step_target_failed","step_dispatched","step_target_completed","step_completed","step_dispatched","step_target_completed","step_completed","step_skipped","step_dispa…
""",
    ),
    "events never": (
        'events = { never = ["step_target_failed", "step_skip*"] }',
        """  t.test.toml:8:21: expect.events.never[0]: the run has 1 'step_target_failed' event
    event 5 step_target_failed step=a member=w-1 reason=flaky
  t.test.toml:8:43: expect.events.never[1]: the run has 1 'step_skip*' event
    event 12 step_skipped step=c reason="condition evaluated to false"
""",
    ),
    "loops": (
        "loops = { rounds = 3, other = 0 }",
        """  t.test.toml:8:20: expect.loops.rounds: loop 'rounds' ran 2 iterations, expected 3
    - 3
    + 2
  t.test.toml:8:31: expect.loops.other: flow 'main' has no loop 'other' (its loops: rounds)
""",
    ),
}


@pytest.mark.parametrize("kind", FAILING)
def test_every_kind_failing(project: Path, kind: str) -> None:
    expect, report = FAILING[kind]
    write_suite(project, f"[case.expect]\n{expect}\n")
    result = cli("test", "t.test.toml")
    assert result.stdout == HEAD + report + TAIL
    assert result.exit_code == 1


OUTPUTS = [
    (
        "steps.a",
        "eq",
        'value = "beta"',
        """  t.test.toml:10:9: expect.output[0].value: steps.a is "alpha", expected "beta"
    - "beta"
    + "alpha"
    event 8 step_completed step=a
""",
    ),
    (
        "steps.b.n",
        "ne",
        "value = 3",
        """  t.test.toml:10:9: expect.output[0].value: steps.b.n is 3, expected ne 3
    event 11 step_completed step=b
""",
    ),
    (
        "steps.b.word",
        "in",
        'values = ["x", "y"]',
        """  t.test.toml:10:10: expect.output[0].values: steps.b.word is "bravo", expected one of ["x","y"]
    event 11 step_completed step=b
""",
    ),
    (
        "steps.b.n",
        "gt",
        "value = 5",
        """  t.test.toml:10:9: expect.output[0].value: steps.b.n is 3, expected gt 5
    event 11 step_completed step=b
""",
    ),
    (
        "steps.b.n",
        "lt",
        "value = 2",
        """  t.test.toml:10:9: expect.output[0].value: steps.b.n is 3, expected lt 2
    event 11 step_completed step=b
""",
    ),
    (
        "steps.b.word",
        "gt",
        "value = 2",
        """  t.test.toml:10:9: expect.output[0].value: steps.b.word cannot be compared: condition path 'steps.b.word' value "bravo" is not comparable to 2
    event 11 step_completed step=b
""",
    ),
    (
        "steps.c",
        "exists",
        "",
        """  t.test.toml:8:8: expect.output[0].path: steps.c is absent (no such output)
    event 12 step_skipped step=c reason="condition evaluated to false"
""",
    ),
    (
        "steps.b.nope",
        "exists",
        "",
        """  t.test.toml:8:8: expect.output[0].path: steps.b.nope is absent (context reference 'steps.b.nope' has no value at segment 'nope')
    event 11 step_completed step=b
""",
    ),
    (
        "steps.a",
        "absent",
        "",
        """  t.test.toml:8:8: expect.output[0].path: steps.a is present: "alpha"
    event 8 step_completed step=a
""",
    ),
    (
        "steps.a",
        "matches",
        'value = "^be"',
        """  t.test.toml:10:9: expect.output[0].value: steps.a is "alpha", which does not match /^be/
    event 8 step_completed step=a
""",
    ),
    (
        "steps.b",
        "matches",
        'value = "x"',
        """  t.test.toml:10:9: expect.output[0].value: steps.b is {"n":3,"word":"bravo"}, not text to match /x/
    event 11 step_completed step=b
""",
    ),
    (
        "steps.b",
        "schema",
        'value = { type = "object", required = ["missing"] }',
        """  t.test.toml:10:9: expect.output[0].value: steps.b does not match the schema: 'missing' is a required property (at value)
    event 11 step_completed step=b
""",
    ),
    (
        "loops.rounds.iterations.0.steps.d.done",
        "eq",
        "value = true",
        """  t.test.toml:10:9: expect.output[0].value: loops.rounds.iterations.0.steps.d.done is false, expected true
    - true
    + false
    event 18 step_completed step=d
""",
    ),
    (
        "params.x",
        "eq",
        "value = 1.0",
        """  t.test.toml:10:9: expect.output[0].value: params.x is 1, expected 1.0
    - 1.0
    + 1
    event 3 flow_started flow_id=main params={"x":1,"run_c":false}
""",
    ),
]


@pytest.mark.parametrize(
    ("path", "op", "operand", "report"), OUTPUTS, ids=[f"{o[1]}:{o[0]}" for o in OUTPUTS]
)
def test_every_output_operator_failing(
    project: Path, path: str, op: str, operand: str, report: str
) -> None:
    write_suite(project, f'[[case.expect.output]]\npath = "{path}"\nop = "{op}"\n{operand}\n')
    result = cli("test", "t.test.toml")
    assert result.stdout == HEAD + report + TAIL
    assert result.exit_code == 1


def test_every_failure_is_reported_not_just_the_first(project: Path) -> None:
    write_suite(
        project,
        '[case.expect]\nstatus = "failed"\nloops = { rounds = 1 }\n\n'
        '[[case.expect.output]]\npath = "steps.a"\nop = "eq"\nvalue = "x"\n',
    )
    lines = cli("test", "t.test.toml").stdout.splitlines()
    assert [line.split(": ")[1] for line in lines if line.startswith("  t.test.toml:")] == [
        "expect.status",
        "expect.loops.rounds",
        "expect.output[0].value",
    ]


def test_a_pathological_pattern_is_cut_off_not_a_hang(project: Path) -> None:
    (project / "fixtures.toml").write_text(
        (project / "fixtures.toml")
        .read_text()
        .replace('output = "alpha"', f'output = "{"a" * 5000}!"')
    )
    write_suite(
        project, '[[case.expect.output]]\npath = "steps.a"\nop = "matches"\nvalue = "^(a|aa)+$"\n'
    )
    result = cli("test", "t.test.toml")
    assert "steps.a took longer than 1s to match /^(a|aa)+$/" in result.stdout
    assert result.exit_code == 1
