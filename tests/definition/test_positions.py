"""Source maps: where keys and values start, for TOML and JSON."""

from __future__ import annotations

import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from mobctl.definition.positions import json_source_map, toml_source_map

TOML = '''# comment
top = "x"  # trailing

[a]
b.c = 1
"quoted key" = 'lit'
arr = [
  1, # one
  { x = "y" },
  [2, 3],
]
multi = """
line
{{ here }}"""

[[t]]
v = 1
[[t]]
v = 2
[t.sub]
w = 1979-05-27 07:32:00
'''


def test_toml_keys_and_values() -> None:
    tomllib.loads(TOML)
    source = toml_source_map(TOML)
    pos = source.value
    assert (pos(("top",)).line, pos(("top",)).column) == (2, 7)
    assert (source.key(("a", "b", "c")).line, source.key(("a", "b", "c")).column) == (5, 3)
    assert pos(("a", "quoted key")).column == 16
    assert (pos(("a", "arr", 1, "x")).line, pos(("a", "arr", 1, "x")).column) == (9, 9)
    assert (pos(("a", "arr", 2, 1)).line, pos(("a", "arr", 2, 1)).column) == (10, 7)
    assert (pos(("t", 1, "v")).line, pos(("t", 1, "v")).column) == (19, 5)
    assert pos(("t", 1, "sub", "w")).line == 21
    assert pos(("t", 1, "sub", "w")).end_column == 24
    assert source.key(("t", 1, "sub")).line == 20
    # a missing key falls back to its table
    assert source.key(("a", "nope")).line == 4


def test_position_inside_strings() -> None:
    source = toml_source_map(TOML)
    decoded = tomllib.loads(TOML)["a"]["multi"]
    at = source.in_string(("a", "multi"), decoded, decoded.index("{{"))
    assert (at.line, at.column) == (14, 1)
    escaped = 'm = "a\\tb {{ x }}"\n'
    value = tomllib.loads(escaped)["m"]
    at = toml_source_map(escaped).in_string(("m",), value, value.index("{{"))
    assert (at.line, at.column) == (1, 5)  # an escape before it: the string's start


def test_json_positions() -> None:
    text = '{\n  "a": {"b": [1, {"c": null}]},\n  "d": "x"\n}'
    source = json_source_map(text)
    assert (source.value(("a", "b", 1, "c")).line, source.value(("a", "b", 1, "c")).column) == (
        2,
        24,
    )
    assert source.key(("d",)).line == 3


_keys = st.text(alphabet="abcxyz_-", min_size=1, max_size=5)
_scalars = st.one_of(
    st.integers(-5, 5),
    st.booleans(),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        _keys,
        st.one_of(
            _scalars, st.lists(_scalars, max_size=3), st.dictionaries(_keys, _scalars, max_size=3)
        ),
        max_size=6,
    )
)
def test_every_value_of_a_generated_document_is_located(document: dict[str, object]) -> None:
    import tomlkit

    text = tomlkit.dumps(document)
    parsed = tomllib.loads(text)
    source = toml_source_map(text)

    def walk(value: object, path: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                assert (*path, key) in source.keys
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))
        if path and not isinstance(value, dict):
            start, end = source.values[path]
            assert tomllib.loads("v = " + text[start:end])["v"] == value

    walk(parsed, ())
