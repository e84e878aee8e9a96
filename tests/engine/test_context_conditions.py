"""Paths, conditions and rendering against a context (flow-semantics §7.1, §8, §9)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from mobctl.definition.model import Condition, TextBlock
from mobctl.engine.conditions import ConditionError, evaluate
from mobctl.engine.context import ABSENT, Context, Fault, Present, build_context, resolve
from mobctl.engine.rendering import RenderError, render_message, render_text

CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)

CTX = Context(
    params={"env": "prod", "n": 7, "f": 7.0, "flag": True, "list": [1, {"k": "v"}], "none": None},
    steps={"triage": {"severity": "high", "score": 3}, "text": "plain"},
    loops={"rounds": [{"draft": "v1"}, {"draft": "v2"}]},
)


def cond(**fields: Any) -> Any:
    return CONDITION.validate_python(fields)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("params", Present(CTX.params)),
        ("params.env", Present("prod")),
        ("params.none", Present(None)),
        ("params.list.1.k", Present("v")),
        ("params.list.+01.k", Present("v")),
        ("steps.triage.output.severity", Present("high")),
        ("steps.triage", Present({"severity": "high", "score": 3})),
        ("steps.missing.x", ABSENT),
        ("loops.rounds.iterations.1.steps.draft", Present("v2")),
        ("loops.rounds.iterations.5.steps.draft", ABSENT),
        ("loops.other.iterations.0.steps.draft", ABSENT),
        ("params.nope", Fault("context reference 'params.nope' has no value at segment 'nope'")),
        ("params.list.9", Fault("context reference 'params.list.9' has no value at segment '9'")),
        (
            "steps.text.x",
            Fault(
                "context reference 'steps.text.x' cannot index segment 'x' into a non-object/array value"
            ),
        ),
        ("bogus.x", Fault("unparsable context reference 'bogus.x': UnknownRoot")),
        ("", Fault("unparsable context reference '': UnknownRoot")),
        ("steps", Fault("unparsable context reference 'steps': MalformedStructure")),
    ],
)
def test_resolution(path: str, expected: object) -> None:
    assert resolve(path, CTX) == expected


def test_context_layers() -> None:
    context = build_context(
        {"p": 1},
        {"a": 1, "draft": "root"},
        {"z": [{"draft": "z0"}], "b": [{"draft": "b0"}, {"x": 1}]},
        {"x": 2},
    )
    # root, then each loop's last iteration by sorted loop id, then the current iteration
    assert context.steps == {"a": 1, "draft": "z0", "x": 2}


def test_equality_is_type_strict() -> None:
    assert evaluate(cond(op="eq", path="params.n", value=7), CTX)
    assert not evaluate(cond(op="eq", path="params.n", value=7.0), CTX)
    assert evaluate(cond(op="eq", path="params.f", value=7.0), CTX)
    assert not evaluate(cond(op="eq", path="params.flag", value=1), CTX)
    assert evaluate(cond(op="eq", path="params.none", value=None), CTX)
    assert evaluate(cond(op="in", path="steps.triage.severity", values=["low", "high"]), CTX)
    assert not evaluate(cond(op="in", path="params.n", values=[7.0, "7"]), CTX)


def test_absent_is_false_and_not_absent_is_true() -> None:
    assert not evaluate(cond(op="eq", path="steps.review.ok", value=True), CTX)
    assert evaluate(
        cond(op="not", expr={"op": "eq", "path": "steps.review.ok", "value": True}), CTX
    )


def test_ordering() -> None:
    assert evaluate(cond(op="gt", path="params.n", value=6.5), CTX)
    assert evaluate(cond(op="lt", path="params.env", value="test"), CTX)
    with pytest.raises(ConditionError) as caught:
        evaluate(cond(op="gt", path="params.env", value=3), CTX)
    assert caught.value.message(step="s") == (
        "condition evaluation failed for step 's': condition path 'params.env' value \"prod\" "
        "is not comparable to 3"
    )
    with pytest.raises(ConditionError):
        evaluate(cond(op="lt", path="params.flag", value=3), CTX)


def test_logic_short_circuits_and_faults_are_fatal() -> None:
    assert evaluate(cond(op="and", exprs=[]), CTX)
    assert not evaluate(cond(op="or", exprs=[]), CTX)
    # the faulty second leaf is never reached
    assert not evaluate(
        cond(
            op="and",
            exprs=[
                {"op": "eq", "path": "params.n", "value": 0},
                {"op": "eq", "path": "params.nope", "value": 1},
            ],
        ),
        CTX,
    )
    assert evaluate(
        cond(
            op="or",
            exprs=[
                {"op": "eq", "path": "params.n", "value": 7},
                {"op": "eq", "path": "params.nope", "value": 1},
            ],
        ),
        CTX,
    )
    with pytest.raises(ConditionError) as caught:
        evaluate(cond(op="eq", path="params.nope", value=1), CTX)
    assert caught.value.message(loop="rounds") == (
        "condition evaluation failed for loop 'rounds' until condition: condition path did not "
        "resolve: context reference 'params.nope' has no value at segment 'nope'"
    )


def test_rendering() -> None:
    assert (
        render_text("env={{ params.env }} n={{params.n}} f={{ params.f }}", CTX)
        == "env=prod n=7 f=7.0"
    )
    assert render_text("{{ steps.triage }}", CTX) == '{"score":3,"severity":"high"}'
    assert render_text("{{ steps.review }} {{ params.none }}", CTX) == "null null"
    assert render_text("é {{ params.list }}", Context(params={"list": ["ü", 1.5]})) == 'é ["ü",1.5]'
    with pytest.raises(RenderError) as caught:
        render_text("{{ params.nope }}", CTX)
    assert caught.value.message("s") == (
        "template render failed for step 's': context reference 'params.nope' has no value at segment 'nope'"
    )
    with pytest.raises(RenderError, match="unmatched"):
        render_text("{{ params.env", CTX)


def test_block_messages_render_only_text_blocks() -> None:
    from mobctl.definition.model import StructuredBlock

    blocks = [
        TextBlock(type="text", text="{{ params.env }}"),
        StructuredBlock(type="structured", data={"t": "{{ params.env }}"}),
    ]
    rendered = render_message(blocks, CTX)  # type: ignore[arg-type]
    assert isinstance(rendered, list)
    assert rendered[0] == TextBlock(type="text", text="prod")
    assert rendered[1] == blocks[1]
