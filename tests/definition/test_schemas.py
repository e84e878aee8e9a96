"""``expected_schema_ref`` schemas: a ``$ref`` is resolved inside the schema or not at all."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from referencing.exceptions import Unresolvable

from mobctl.definition.schemas import outside_refs, schema_validator


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
