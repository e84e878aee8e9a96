"""``expected_schema_ref`` schemas: a ``$ref`` is resolved inside the schema or not at all."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from referencing.exceptions import Unresolvable

from mobctl.definition.schemas import outside_refs, schema_validator
from tests.conftest import mobctl_process
from tests.engine.test_scenarios import HEAD


def test_a_ref_inside_the_schema_resolves() -> None:
    schema = {"$defs": {"n": {"type": "integer"}}, "properties": {"x": {"$ref": "#/$defs/n"}}}
    assert [e.message for e in schema_validator(schema).iter_errors({"x": "a"})] == [
        "'a' is not of type 'integer'"
    ]
    assert outside_refs(schema) == []


def test_a_file_ref_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "cfg.json"
    secret.write_text('{"properties": {"x": {"const": "SECRET"}}}')
    schema = {"$ref": secret.as_uri()}
    with pytest.raises(Unresolvable) as caught:
        list(schema_validator(schema).iter_errors({"x": 1}))
    assert caught.value.ref == secret.as_uri()
    assert outside_refs(schema) == [secret.as_uri()]


def test_a_url_ref_is_never_fetched() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/probe.json"
    with pytest.raises(Unresolvable):
        list(schema_validator({"items": {"$ref": url}}).iter_errors([1]))
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody connected
    listener.close()


def test_outside_refs_are_found_anywhere_but_in_data() -> None:
    schema = {
        "anyOf": [{"$ref": "other.json"}, {"items": [{"$dynamicRef": "https://x/y"}]}],
        "properties": {"$ref": {"type": "string"}},  # a property named $ref
        "enum": [{"$ref": "data.json"}],  # values, not schemas
        "default": {"$ref": "also-data"},
    }
    assert sorted(outside_refs(schema)) == ["https://x/y", "other.json"]


SLOW = "^(?:(?:a|a)+)+b$"  # backtracks for ages on many a's without the b


def test_a_pattern_that_backtracks_for_ages_fails_the_value_instead(tmp_path: Path) -> None:
    # jsonschema's own `re` held the process (and its GIL: no Ctrl-C) for hours here
    schema = json.dumps({"type": "object", "properties": {"x": {"pattern": SLOW}}})
    (tmp_path / "mob.toml").write_text(
        HEAD
        + '[flows.main.steps.s]\nrole = "w"\nmessage = "go"\noutput_format = "json"\n'
        + 'dispatch_mode = "one_to_one"\ncollection_policy = { type = "any" }\n'
        + f"expected_schema_ref = '{schema}'\n"
    )
    (tmp_path / "replies.toml").write_text(
        '[[reply]]\nstep = "s"\njson = { x = "' + "a" * 60 + '" }\n'
    )
    ran = mobctl_process(
        "run", "mob.toml", "--driver", "scripted:replies.toml", "--store", "st", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 3, ran.stderr
    failure = json.loads(ran.stdout)["failure"]["steps"][0]["reason"]
    assert failure.endswith(f"the pattern {SLOW!r} took longer than 1s to match")


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"pattern": "^a+$"}, "aab"),
        ({"pattern": "^a+$"}, "aaa"),
        ({"patternProperties": {"^x": {"type": "integer"}}}, {"xa": "s", "y": 1}),
        ({"patternProperties": {"^x": True}, "additionalProperties": False}, {"xa": 1, "y": 1}),
        ({"properties": {"a": True}, "additionalProperties": False}, {"a": 1, "b": 2, "c": 3}),
        ({"additionalProperties": {"type": "string"}}, {"a": 1}),
    ],
)
def test_time_limited_patterns_judge_as_jsonschema_does(schema: dict, value: object) -> None:
    import jsonschema

    stock = jsonschema.Draft202012Validator(schema).iter_errors(value)
    ours = schema_validator(schema).iter_errors(value)
    assert sorted(e.message for e in ours) == sorted(e.message for e in stock)
