"""TOML -> model -> JSON -> model, and model -> TOML -> model, are lossless."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobctl.definition.loader import load_file, load_text
from mobctl.definition.model import MobDefinition
from mobctl.definition.serialize import to_json_form, to_toml
from tests.conftest import CORPUS, SAMPLES, cli

# Every sample and corpus file that loads (corpus 08 has a shape error: nothing to convert).
FILES = [
    p
    for p in sorted(SAMPLES.glob("*.toml")) + sorted(CORPUS.glob("*.toml"))
    if load_file(p).definition is not None
]


def _reload(text: str, fmt: str) -> MobDefinition:
    loaded = load_text(text, fmt, "x", Path("."))  # type: ignore[arg-type]
    assert loaded.definition is not None, loaded.diagnostics
    return loaded.definition


def assert_round_trips(definition: MobDefinition) -> None:
    via_toml = _reload(to_toml(definition), "toml")
    assert via_toml == definition
    json_form = to_json_form(definition)
    via_json = _reload(json.dumps(json_form), "json")
    assert to_json_form(via_json) == json_form
    assert _reload(to_toml(via_json), "toml") == via_json


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_files_round_trip(path: Path) -> None:
    definition = load_file(path).definition
    assert definition is not None
    assert_round_trips(definition)


def test_json_form_shape() -> None:
    definition = load_file(SAMPLES / "triage.toml").definition
    assert definition is not None
    form = to_json_form(definition)
    assert list(form)[:2] == ["id", "orchestrator"]
    assert form["orchestrator"] == {"profile": "dispatcher"}
    assert list(form["profiles"]) == sorted(form["profiles"])
    steps = form["flows"]["main"]["steps"]
    assert list(steps) == ["classify", "page", "ticket", "report"]  # author order kept
    assert "root" in form["flows"]["main"]
    assert "output_format" not in steps["page"]
    assert json.loads(steps["classify"]["expected_schema_ref"])["required"] == ["severity"]
    assert steps["classify"]["expected_schema_ref"].startswith('{"properties":')


def test_convert_command(tmp_path: Path) -> None:
    out = tmp_path / "definition.json"
    result = cli("convert", SAMPLES / "draft-critique.toml", "--to", "json", "--out-file", out)
    assert result.exit_code == 0
    assert result.stderr == f"wrote {out}\n"
    back = cli("convert", out, "--to", "toml")
    assert back.exit_code == 0
    assert back.stdout.startswith('[mob]\nid = "draft-critique"\n')
    reloaded = load_text(back.stdout, "toml", "x", SAMPLES).definition
    original = load_file(SAMPLES / "draft-critique.toml").definition
    assert reloaded is not None and original is not None
    assert to_json_form(reloaded) == to_json_form(original)
    assert cli("validate", out).exit_code == 0


def test_convert_refuses_a_definition_with_shape_errors() -> None:
    result = cli("convert", SAMPLES / "invalid" / "invalid_value.toml", "--to", "json")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("error[invalid_definition]: ")
    assert "invalid_value" in result.stderr


def test_null_cannot_become_toml(tmp_path: Path) -> None:
    document = {
        "id": "n",
        "profiles": {"w": {"model": "claude-opus-4-8"}},
        "flows": {
            "f": {
                "steps": {
                    "s": {
                        "role": "w",
                        "message": "m",
                        "condition": {"op": "eq", "path": "params.x", "value": None},
                    }
                }
            }
        },
    }
    path = tmp_path / "n.json"
    path.write_text(json.dumps(document))
    result = cli("convert", path, "--to", "toml")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error[invalid_definition]: 'flows.f.steps.s.condition.value' is null, which TOML cannot represent"
    )


# --- generated definitions ----------------------------------------------------------------

NAMES = st.text(alphabet=string.ascii_lowercase + "_-", min_size=1, max_size=6).filter(
    lambda s: s[0].isalpha()
)
TEXT = st.text(alphabet=string.printable + "é✓", max_size=20)
JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        TEXT,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)),
    max_leaves=8,
)
TOMLISH = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        TEXT,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)),
    max_leaves=8,
)


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.one_of(
        st.builds(
            lambda p, v: {"op": "eq", "path": p, "value": v},
            st.sampled_from(["params.x", "steps.a.b"]),
            TOMLISH,
        ),
        st.builds(
            lambda v: {"op": "in", "path": "params.y", "values": v}, st.lists(TOMLISH, max_size=3)
        ),
        st.builds(
            lambda o, v: {"op": o, "path": "params.n", "value": v},
            st.sampled_from(["gt", "lt"]),
            st.integers(),
        ),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(
                lambda o, e: {"op": o, "exprs": e},
                st.sampled_from(["and", "or"]),
                st.lists(inner, max_size=3),
            ),
            st.builds(lambda e: {"op": "not", "expr": e}, inner),
        ),
        max_leaves=5,
    )


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    profiles = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    document: dict[str, Any] = {"mob": {"id": draw(NAMES)}}
    if draw(st.booleans()):
        document["mob"]["orchestrator"] = draw(st.sampled_from(profiles))
    document["profiles"] = {}
    for name in profiles:
        profile: dict[str, Any] = {"model": draw(st.sampled_from(["claude-opus-4-8", "gpt-5.4"]))}
        if draw(st.booleans()):
            profile["tools"] = {
                "shell": draw(st.booleans()),
                "mcp": draw(st.lists(NAMES, max_size=2)),
            }
        if draw(st.booleans()):
            profile["peer_description"] = draw(TEXT)
        if draw(st.booleans()):
            profile["provider_params"] = {
                "temperature": draw(st.floats(0, 2, width=32)),
                "provider_tag": {"provider": "anthropic", "extra": draw(TOMLISH)},
            }
        document["profiles"][name] = profile
    if draw(st.booleans()):
        document["profiles"]["realm"] = {"realm_profile": draw(NAMES)}
    steps: dict[str, Any] = {}
    for index in range(draw(st.integers(0, 5))):
        step: dict[str, Any] = {
            "role": draw(st.sampled_from(profiles)),
            "message": draw(
                st.one_of(
                    TEXT,
                    st.lists(st.builds(lambda t: {"type": "text", "text": t}, TEXT), max_size=2),
                )
            ),
        }
        if index and draw(st.booleans()):
            step["depends_on"] = draw(
                st.lists(st.sampled_from(list(steps)), max_size=2, unique=True)
            )
        if draw(st.booleans()):
            step["collection_policy"] = draw(
                st.sampled_from([{"type": "all"}, {"type": "any"}, {"type": "quorum", "n": 2}])
            )
        if draw(st.booleans()):
            step["condition"] = draw(conditions())
        if draw(st.booleans()):
            step["output_format"] = draw(st.sampled_from(["json", "text"]))
        if draw(st.booleans()):
            step["timeout_ms"] = draw(st.integers(0, 2**63 - 1))
        steps[f"s{index}"] = step
    if steps:
        document["flows"] = {"main": {"steps": steps}}
        if draw(st.booleans()):
            document["flows"]["main"]["description"] = draw(TEXT)
    if draw(st.booleans()):
        document["limits"] = {"max_step_retries": draw(st.integers(0, 5))}
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_generated_definitions_round_trip(document: dict[str, Any]) -> None:
    definition = MobDefinition.model_validate(document)
    assert_round_trips(definition)


@settings(max_examples=100, deadline=None)
@given(JSONISH)
def test_json_values_in_conditions_survive_the_json_form(value: Any) -> None:
    definition = MobDefinition.model_validate(
        {
            "mob": {"id": "v"},
            "profiles": {"w": {"model": "claude-opus-4-8"}},
            "flows": {
                "f": {
                    "steps": {
                        "s": {
                            "role": "w",
                            "message": "m",
                            "condition": {"op": "eq", "path": "params.x", "value": value},
                        }
                    }
                }
            },
        }
    )
    form = to_json_form(definition)
    assert _reload(json.dumps(form), "json") == definition


def test_convert_to_an_unwritable_place_is_a_usage_error(tmp_path: Path) -> None:
    result = cli(
        "convert",
        SAMPLES / "minimal.toml",
        "--to",
        "json",
        "--out-file",
        tmp_path / "no" / "x.json",
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error[output_not_writable]: cannot write {tmp_path / 'no' / 'x.json'}:"
    )


def test_output_schema_is_normalised_in_the_json_form(tmp_path: Path) -> None:
    path = tmp_path / "o.toml"
    path.write_text(
        '[mob]\nid = "o"\n[profiles.w]\nmodel = "claude-opus-4-8"\noutput_schema = { type = "object" }\n'
    )
    form = json.loads(cli("convert", path, "--to", "json").stdout)
    assert form["profiles"]["w"]["output_schema"] == {
        "type": "object",
        "properties": {},
        "required": [],
    }


def test_old_json_roots_without_failure_policy_are_not_explicit(tmp_path: Path) -> None:
    document = {
        "id": "old",
        "profiles": {"w": {"model": "claude-opus-4-8"}},
        "flows": {
            "f": {
                "steps": {"a": {"role": "w", "message": "x"}},
                "root": {
                    "nodes": {
                        "a": {
                            "kind": "step",
                            "step_id": "a",
                            "depends_on": [],
                            "depends_on_mode": "all",
                        }
                    }
                },
            }
        },
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    assert "[flows.f.root" not in cli("convert", path, "--to", "toml").stdout
