"""Template syntax and context references (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobctl.definition.references import LoopRef, ParamsRef, StepRef, Unparsable, parse_reference
from mobctl.definition.templates import Placeholder, TemplateSyntaxError, parse_template


def test_literal_and_placeholders() -> None:
    assert parse_template("a {{ params.x }} b {{steps.s}}") == [
        "a ",
        Placeholder("params.x", 2),
        " b ",
        Placeholder("steps.s", 19),
    ]
    assert parse_template("") == []
    assert parse_template("{ single } braces") == ["{ single } braces"]


@pytest.mark.parametrize(
    ("text", "kind", "line", "column", "byte"),
    [
        ("ab {{ x", "unmatched '{{'", 1, 4, 3),
        ("x }} y", "unmatched '}}'", 1, 3, 2),
        ("{{   }}", "empty placeholder", 1, 3, 2),
        ("{{ a {{ b }}", "nested '{{' inside placeholder", 1, 6, 5),
        ("é\n{{ a } }}", "single '}' inside placeholder", 2, 6, 8),
    ],
)
def test_syntax_errors(text: str, kind: str, line: int, column: int, byte: int) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        parse_template(text)
    error = caught.value
    assert (error.kind, error.line, error.column, error.byte) == (kind, line, column, byte)
    assert (
        str(error)
        == f"invalid template syntax at line {line}, column {column} (byte {byte}): {kind}"
    )


@given(st.text(alphabet="ab{} .\n", max_size=40))
def test_parse_either_succeeds_and_reassembles_or_raises(text: str) -> None:
    try:
        parts = parse_template(text)
    except TemplateSyntaxError as error:
        assert 0 <= error.index <= len(text)
        return
    rebuilt = "".join(p if isinstance(p, str) else "{{" for p in parts)
    assert rebuilt.replace("{{", "") == "".join(p for p in parts if isinstance(p, str))
    assert all(
        p.expression == p.expression.strip() and p.expression
        for p in parts
        if isinstance(p, Placeholder)
    )


def test_references() -> None:
    assert parse_reference("params") == ParamsRef(())
    assert parse_reference("params.a.b") == ParamsRef(("a", "b"))
    assert parse_reference("steps.s") == StepRef("s", ())
    assert parse_reference("steps.s.output.x") == StepRef("s", ("x",))
    assert parse_reference("steps.s.output.output") == StepRef("s", ("output",))
    assert parse_reference("loops.l.iterations.+02.steps.s.k") == LoopRef("l", 2, "s", ("k",))
    assert parse_reference("loops.l.iterations.x.steps.s") == Unparsable(
        "loops.l.iterations.x.steps.s", "MalformedStructure"
    )
    assert parse_reference("steps") == Unparsable("steps", "MalformedStructure")
    assert parse_reference("") == Unparsable("", "UnknownRoot")
    assert parse_reference("bogus.x") == Unparsable("bogus.x", "UnknownRoot")
