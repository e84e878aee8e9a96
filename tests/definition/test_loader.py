"""Phases 1 and 2: syntax, shape, unknown and deprecated keys, the JSON form, positions."""

from __future__ import annotations

import json

from tests.helpers import HEAD, codes, diagnose, messages


def test_toml_syntax_error_has_parser_position() -> None:
    assert diagnose('[mob]\nid = "x"\nid = "y"\n') == ["toml_syntax None 3:9"]
    assert messages("[mob\n") == ["Expected ']' at the end of a table declaration"]


def test_json_syntax_and_duplicate_keys() -> None:
    assert diagnose('{"id": "x",}', fmt="json") == ["json_syntax None 1:12"]
    assert messages('{"id": "x", "id": "y"}', fmt="json") == ["duplicate key 'id'"]
    assert messages("[1]", fmt="json") == ["a definition must be a JSON object"]
    assert messages('{"id": NaN}', fmt="json") == ["NaN is not valid JSON"]


def test_missing_required_key_points_at_the_deepest_existing_table() -> None:
    assert diagnose("[mob]\n[profiles.w]\nmodel = 'claude-opus-4-8'\n") == [
        "invalid_value mob.id 1:1"
    ]
    text = HEAD + '[flows.f.steps.s]\nrole = "worker"\ncondition = { op = "eq", value = 1 }\n'
    assert diagnose(text) == [
        "invalid_value flows.f.steps.s.message 6:1",
        "invalid_value flows.f.steps.s.condition.path 8:13",
    ]
    assert messages(text)[0] == "missing required key 'message'"


def test_a_profile_without_model_or_realm_profile() -> None:
    text = '[mob]\nid = "x"\n[profiles.w]\npeer_description = "?"\n'
    assert diagnose(text) == ["invalid_value profiles.w.model 3:1"]


def test_types_are_strict() -> None:
    text = (
        HEAD
        + "[limits]\nmax_step_retries = 1.0\nmax_active_nodes = true\nmax_flow_duration_ms = -1\n"
    )
    assert diagnose(text) == [
        "invalid_value limits.max_step_retries 7:20",
        "invalid_value limits.max_active_nodes 8:20",
        "invalid_value limits.max_flow_duration_ms 9:24",
    ]
    assert messages(text) == [
        "expected an integer, found a float",
        "expected an integer, found a boolean",
        "-1 is out of range for 'max_flow_duration_ms': must be >= 0",
    ]


def test_quorum_is_a_u8() -> None:
    text = (
        HEAD
        + '[flows.f.steps.s]\nrole = "worker"\nmessage = "m"\ncollection_policy = { type = "quorum", n = 256 }\n'
    )
    assert messages(text) == ["256 is out of range for 'n': must be <= 255"]


def test_unknown_enum_word_and_unknown_tag() -> None:
    text = HEAD + '[flows.f.steps.s]\nrole = "worker"\nmessage = "m"\ndispatch_mode = "broadcast"\n'
    assert messages(text) == [
        "invalid value 'broadcast' for 'dispatch_mode': expected 'fan_out', 'one_to_one' or 'fan_in'"
    ]
    text = HEAD + '[skills.k]\nsource = "url"\n'
    assert diagnose(text) == ["invalid_value skills.k.source 7:10"]
    assert messages(text) == ["unknown source 'url': expected one of inline, path"]
    text = HEAD + "[skills.k]\ncontent = 'x'\n"
    assert messages(text) == ["missing required key 'source'"]


def test_datetimes_are_not_strings() -> None:
    text = HEAD.replace('"claude-sonnet-4-6"', "1979-05-27T07:32:00Z")
    assert messages(text) == ["expected a string, found a date-time"]


def test_unknown_keys_warn_in_open_tables_and_fail_in_closed_ones() -> None:
    text = HEAD + "extrnal_addressable = true\n[models.m]\nprovider = 'openai'\nvison = true\n"
    assert diagnose(text) == [
        "unknown_key profiles.worker.extrnal_addressable 6:1",
        "unknown_key models.m.vison 9:1",
    ]
    report_messages = messages(text)
    assert report_messages[0] == (
        "unknown key 'extrnal_addressable' in [profiles.worker]; did you mean 'external_addressable'?"
    )
    from pathlib import Path

    from mobctl.validation.catalog import bundled_catalog
    from mobctl.validation.validate import validate_bytes

    report = validate_bytes(text.encode(), "toml", "t", Path("."), bundled_catalog())
    assert [d.severity.value for d in report.diagnostics] == ["warning", "error"]
    assert report.diagnostics[0].suggestion == "external_addressable"


def test_unknown_key_alone_still_builds_the_model() -> None:
    text = HEAD + 'depends_no = 1\n[flows.f.steps.s]\nrole = "ghost"\nmessage = "m"\n'
    assert [row.split()[0] for row in diagnose(text)] == ["unknown_key", "flow_unknown_role"]


def test_top_level_key_after_a_table_gets_a_hint() -> None:
    from pathlib import Path

    from mobctl.validation.catalog import bundled_catalog
    from mobctl.validation.validate import validate_bytes

    text = '[mob]\nid = "x"\nimage_generation_provider = "gemini"\n[profiles.w]\nmodel = "claude-opus-4-8"\n'
    report = validate_bytes(text.encode(), "toml", "t", Path("."), bundled_catalog())
    (diag,) = report.diagnostics
    assert (diag.code, diag.location, diag.line) == (
        "unknown_key",
        "mob.image_generation_provider",
        3,
    )
    assert diag.hint == "top-level keys must come before the first [table]"


def test_realm_reference_with_other_keys() -> None:
    text = '[mob]\nid = "x"\n[profiles.w]\nrealm_profile = "house"\nmodel = "nope"\ntools = {}\n'
    assert diagnose(text) == ["realm_profile_mixed_keys profiles.w 3:1"]
    assert messages(text) == [
        "profile 'w' is a realm_profile reference; its other keys are ignored: model, tools"
    ]


def test_seed_schema_loads_with_deprecations() -> None:
    text = HEAD + (
        "[profiles.worker.tools]\nmob_tasks = true\n"
        '[mcp.search]\ncommand = ["mcp-search", "--stdio"]\nenv = { TOKEN = "x" }\n'
        '[mcp.web]\nurl = "http://localhost:1"\n'
    )
    assert diagnose(text) == [
        "deprecated_key profiles.worker.tools.mob_tasks 7:1",
        "deprecated_key mcp 8:1",
    ]
    neither = HEAD + '[mcp.broken]\nenv = { A = "b" }\n'
    assert diagnose(neither) == ["deprecated_key mcp 6:1", "invalid_mcp_server mcp.broken 6:1"]
    empty = HEAD + "[mcp.empty]\ncommand = []\n"
    assert (
        "an MCP server needs exactly one of a non-empty 'command' and 'url' (neither set)"
        in messages(empty)
    )
    http_052 = HEAD + '[mcp.web]\ncommand = []\nurl = "http://h:1/mcp"\n'
    assert codes(http_052) == ["deprecated_key"]


def test_legacy_provider_spelling_is_read_as_openai() -> None:
    from pathlib import Path

    from mobctl.definition.loader import load_text

    text = HEAD.replace('model = "claude-sonnet-4-6"', 'model = "x"\nprovider = "open_a_i"')
    loaded = load_text(text, "toml", "t", Path("."))
    assert loaded.definition is not None
    assert loaded.definition.profiles["worker"].provider == "openai"  # type: ignore[union-attr]


def test_json_form_is_reshaped_and_positioned() -> None:
    document = {
        "id": "j",
        "orchestrator": {"profile": "ghost"},
        "profiles": {"w": {"model": "gpt-5.2"}},
        "owner_session_id": "s-1",
    }
    text = json.dumps(document, indent=2)
    assert diagnose(text, fmt="json") == [
        "missing_orchestrator_profile mob.orchestrator 3:19",
        "unknown_model profiles.w.model 8:16",
        "deprecated_key owner_session_id 11:3",
    ]


def test_json_root_equal_to_the_synthesised_one_is_not_explicit() -> None:
    from pathlib import Path

    from mobctl.definition.loader import load_text

    document = {
        "id": "j",
        "profiles": {"w": {"model": "claude-opus-4-8"}},
        "flows": {
            "f": {
                "steps": {"a": {"role": "w", "message": "x", "depends_on": ["zz"]}},
                "root": {
                    "nodes": {
                        "a": {
                            "kind": "step",
                            "step_id": "a",
                            "depends_on": ["zz"],
                            "depends_on_mode": "all",
                            "failure_policy": "escalate",
                        }
                    }
                },
            }
        },
    }
    loaded = load_text(json.dumps(document), "json", "t", Path("."))
    assert loaded.definition is not None and loaded.definition.flows["f"].root is None
    # so the unknown dependency is reported once, not again at a synthesised location
    assert [row.split()[0:2] for row in diagnose(json.dumps(document), fmt="json")] == [
        ["flow_unknown_step", "flows.f.steps.a.depends_on"]
    ]


def test_non_table_where_a_table_is_expected() -> None:
    text = 'profiles = 3\n[mob]\nid = "x"\n'
    assert diagnose(text) == ["invalid_value profiles 1:12"]
    assert messages(text) == ["expected a table, found an integer"]
    text = HEAD + "[flows.f.steps.s]\nrole = 'worker'\nmessage = 'm'\ncondition = 'params.x'\n"
    assert messages(text) == ["expected a table, found the string 'params.x'"]


def test_stale_repeat_until_syntax_is_invalid() -> None:
    text = HEAD + (
        '[flows.f.steps.s]\nrole = "worker"\nmessage = "m"\n'
        '[flows.f.root.nodes.loop]\ntype = "repeat_until"\nuntil = "all_pass"\n'
    )
    assert "invalid_value flows.f.root.nodes.loop.kind 9:1" in diagnose(text)


def test_output_schema_must_be_a_table() -> None:
    text = HEAD + 'output_schema = "{}"\n'
    assert diagnose(text) == ["invalid_value profiles.worker.output_schema 6:17"]
    assert messages(text) == ["expected a table (a JSON Schema object)"]


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    assert codes("x = " + "[" * 1000 + "]" * 1000 + "\n") == ["toml_syntax"]
    assert codes('{"id": "x", "p": ' + "[" * 5000 + "]" * 5000 + "}", fmt="json") == ["json_syntax"]

    def nested(depth: int) -> str:
        text = HEAD + '[flows.f.steps.s]\nrole = "worker"\nmessage = "m"\ncondition = '
        text += '{ op = "not", expr = ' * depth + '{ op = "eq", path = "params.x", value = 1 }'
        return text + " }" * depth + "\n"

    assert codes(nested(150)) == []
    assert codes(nested(250)) == ["toml_syntax"]


def test_non_finite_numbers_are_refused() -> None:
    text = HEAD + "[profiles.worker.provider_params]\ntemperature = nan\ntop_p = -inf\n"
    assert sorted(diagnose(text)) == [
        "invalid_value profiles.worker.provider_params.temperature 7:15",
        "invalid_value profiles.worker.provider_params.top_p 8:9",
    ]


def test_keys_spelled_like_union_tags_keep_their_paths() -> None:
    text = '[mob]\nid = "x"\n[profiles."profile=inline"]\nmodel = "claude-opus-4-8"\nzzz = 1\n'
    assert diagnose(text) == [
        "invalid_profile_name profiles.profile=inline 3:1",
        "unknown_key profiles.profile=inline.zzz 5:1",
    ]
    step = HEAD + '[flows.f.steps."message=text"]\nrole = "worker"\nmessage = 5\n'
    assert diagnose(step) == ["invalid_value flows.f.steps.message=text.message 8:11"]


def test_json_positions_for_missing_keys_duplicates_and_constants() -> None:
    assert diagnose('{\n  "id": "x",\n  "flows": {}\n}', fmt="json") == [
        "empty_profiles profiles 2:3"
    ]
    assert diagnose('{"id": "x",\n "id": "y"}', fmt="json") == ["json_syntax None 2:2"]
    assert diagnose('{"id": "x", "n": NaN}', fmt="json") == ["json_syntax None 1:18"]


def test_json_only_and_toml_only_shapes() -> None:
    assert codes(HEAD + "[source_identity]\nkind = 'mobpack'\n") == ["unknown_key"]
    assert codes('owner_session_id = "s"\n' + HEAD) == ["unknown_key"]
    legacy = '{"id": "x", "profiles": {"w": {"model": "claude-opus-4-8"}}, "mcp_servers": {}}'
    assert diagnose(legacy, fmt="json") == ["deprecated_key mcp_servers 1:62"]
    string_orchestrator = (
        '{"id": "x", "orchestrator": "w", "profiles": {"w": {"model": "claude-opus-4-8"}}}'
    )
    assert diagnose(string_orchestrator, fmt="json") == ["invalid_value orchestrator 1:29"]
    mob_table = '{"mob": {"id": "x"}, "id": "x", "profiles": {"w": {"model": "claude-opus-4-8"}}}'
    assert diagnose(mob_table, fmt="json") == ["unknown_key mob 1:2"]


def test_hints() -> None:
    from pathlib import Path

    from mobctl.validation.catalog import bundled_catalog
    from mobctl.validation.validate import validate_bytes

    def first(text: str) -> object:
        return validate_bytes(text.encode(), "toml", "t", Path("."), bundled_catalog()).diagnostics[
            0
        ]

    late = HEAD + "[profiles.worker.tools]\nimage_generation_provider = 'gemini'\n"
    diag = first(late)
    assert diag.hint == "top-level keys must come before the first [table]"  # type: ignore[attr-defined]
    assert diag.suggestion is None  # type: ignore[attr-defined]
    policy = HEAD + "[flows.f.steps.s]\nrole = 'worker'\nmessage = 'm'\ncollection_policy = 'all'\n"
    assert first(policy).hint == 'write { type = "all" }'  # type: ignore[attr-defined]
    stale = HEAD + (
        '[flows.f.steps.s]\nrole = "worker"\nmessage = "m"\n'
        '[flows.f.root.nodes.loop]\ntype = "repeat_until"\nuntil = "all_pass"\n'
    )
    assert sorted(diagnose(stale)) == [
        "invalid_value flows.f.root.nodes.loop.kind 9:1",
        "invalid_value flows.f.root.nodes.loop.until 11:9",
    ]
    assert first(stale).hint == 'write kind = "repeat_until" (not type = ...)'  # type: ignore[attr-defined]
    overrides = HEAD + 'resume_overrides = ["model", "tools"]\n'
    assert messages(overrides) == [
        "invalid value 'tools' for 'resume_overrides': expected 'model', 'provider' or 'provider_params'"
    ]
