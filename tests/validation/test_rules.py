"""Phase 3: Meerkat's rules and mobctl's additions, each on a small definition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import HEAD, codes, diagnose, messages


def step(name: str, *lines: str, role: str = "worker", flow: str = "f") -> str:
    if not any(line.startswith("message") for line in lines):
        lines = (f'message = "{name}"', *lines)
    body = "\n".join(lines)
    return f'\n[flows.{flow}.steps.{name}]\nrole = "{role}"\n{body}\n'


def test_profile_rules() -> None:
    text = (
        '[mob]\nid = "t"\norchestrator = "boss"\n'
        '[profiles."-bad"]\nmodel = "claude-opus-4-8"\n'
        '[profiles.__flow_x]\nmodel = "claude-opus-4-8"\n'
        '[profiles.w]\nmodel = "mystery"\nskills = ["a", "b"]\nimage_generation_provider = "other"\n'
        "max_inline_peer_notifications = -2\n"
        '[skills.a]\nsource = "inline"\ncontent = "x"\n'
    )
    assert diagnose(text) == [
        "missing_orchestrator_profile mob.orchestrator 3:16",
        "invalid_profile_name profiles.-bad 4:1",
        "reserved_system_identifier profiles.__flow_x 6:1",
        "unknown_model profiles.w.model 9:9",
        "missing_skill_ref profiles.w.skills[1] 10:16",
        "invalid_image_generation_provider profiles.w.image_generation_provider 11:29",
        "invalid_inline_peer_notification_threshold profiles.w.max_inline_peer_notifications 12:33",
    ]


def test_model_resolution() -> None:
    defined = HEAD.replace("claude-sonnet-4-6", "mine") + '[models.mine]\nprovider = "anthropic"\n'
    assert diagnose(defined) == []
    annotated = HEAD.replace('"claude-sonnet-4-6"', '"anything"\nprovider = "other"')
    assert diagnose(annotated) == []
    legacy_only = HEAD.replace("claude-sonnet-4-6", "gemini-3-flash-preview")
    assert diagnose(legacy_only) == []


def test_wiring_reports_each_side() -> None:
    text = (
        HEAD
        + '[[wiring.role_wiring]]\na = "x"\nb = "y"\n[[wiring.role_wiring]]\na = "worker"\nb = "worker"\n'
    )
    assert diagnose(text) == [
        "invalid_wiring_profile wiring.role_wiring[0].a 7:5",
        "invalid_wiring_profile wiring.role_wiring[0].b 8:5",
    ]


@pytest.mark.parametrize(
    ("bridge", "expected"),
    [
        ('bind_address = "127.0.0.1:7000"', []),
        ('bind_address = "[::1]:7000"', []),
        (
            'bind_address = "localhost:7000"',
            ["bind_address must be a socket address: invalid socket address syntax"],
        ),
        (
            'bind_address = "127.0.0.1"',
            ["bind_address must be a socket address: invalid socket address syntax"],
        ),
        (
            'bind_address = "0.0.0.0:7000"',
            ["advertised_address is required when bind_address uses an unspecified interface"],
        ),
        ('bind_address = "[::]:7000"\nadvertised_address = "tcp://h:1"', []),
        (
            'advertised_address = "h:1"',
            [
                "advertised_address must be a typed peer address: peer address missing transport scheme: h:1"
            ],
        ),
        (
            'advertised_address = "ws://h:1"',
            [
                'advertised_address must be a typed peer address: unknown peer address transport "ws" in address "ws://h:1"'
            ],
        ),
        (
            'advertised_address = "inproc://x"',
            ["advertised_address must use tcp transport, got 'inproc'"],
        ),
    ],
)
def test_external_backend_bridge(bridge: str, expected: list[str]) -> None:
    text = (
        HEAD
        + '[backend]\ndefault = "external"\n[backend.external]\naddress_base = "tcp://a:1"\n'
        + f"[backend.external.supervisor_bridge]\n{bridge}\n"
    )
    prefix = "backend.external.supervisor_bridge."
    assert [m.removeprefix(prefix) for m in messages(text)] == expected


def test_external_backend_blank_base_and_unused_backend() -> None:
    text = HEAD + 'backend = "external"\n[backend.external]\naddress_base = "  "\n'
    assert diagnose(text) == ["invalid_external_backend_config backend.external.address_base 8:16"]
    unused = HEAD + '[backend.external]\naddress_base = ""\n'
    assert diagnose(unused) == []


def test_supervisor_and_topology_roles() -> None:
    text = HEAD + (
        '[supervisor]\nrole = "boss"\nescalation_threshold = 1\n'
        '[topology]\nmode = "advisory"\nrules = [{ from_role = "*", to_role = "ghost", allowed = true }]\n'
    )
    assert diagnose(text) == [
        "flow_unknown_role supervisor.role 7:8",
        "topology_unknown_role topology.rules[0].to_role 11:39",
    ]


def test_flat_step_rules() -> None:
    text = HEAD + step(
        "a",
        'depends_on = ["nope"]',
        'collection_policy = { type = "quorum", n = 0 }',
        'output_format = "json"',
    )
    text += step("b", 'depends_on = ["a"]', 'depends_on_mode = "any"', role="ghost")
    assert codes(text) == [
        "flow_unknown_step",
        "quorum_invalid",
        "json_output_without_schema",
        "flow_unknown_role",
        "branch_join_without_branch",
    ]


def test_depth_limit_counts_steps_not_edges() -> None:
    def chain(n: int) -> str:
        text = HEAD
        for i in range(n):
            text += step(f"s{i}", f'depends_on = ["s{i - 1}"]' if i else "")
        return text

    assert codes(chain(32)) == []
    assert diagnose(chain(33)) == ["flow_depth_exceeded flows.f.steps 7:1"]


def test_cycle_hides_depth_and_unknown_deps_do_not_count() -> None:
    text = HEAD + step("a", 'depends_on = ["b"]') + step("b", 'depends_on = ["a", "zz"]')
    assert codes(text) == ["flow_cycle_detected", "flow_unknown_step"]
    assert messages(text)[0] == "flow 'f' contains a cycle"


def test_branch_groups() -> None:
    text = HEAD + step("start")
    text += step("l", 'depends_on = ["start"]', 'branch = "g"')
    text += step("r", 'branch = "g"', 'condition = { op = "eq", path = "params.x", value = 1 }')
    text += step("solo", 'branch = "h"', 'condition = { op = "eq", path = "params.x", value = 1 }')
    assert codes(text) == [
        "branch_group_empty",
        "branch_step_missing_condition",
        "branch_step_conflicting_deps",
    ]
    assert messages(text) == [
        "branch group 'h' in flow 'f' must contain at least two steps",
        "branch step 'l' in group 'g' is missing condition",
        "branch step 'r' in group 'g' has conflicting dependencies",
    ]


def test_unreachable_step_and_any_join() -> None:
    cond = 'condition = { op = "eq", path = "params.x", value = 1 }'
    base = HEAD + step("start") + step("l", 'depends_on = ["start"]', 'branch = "g"', cond)
    base += step("r", 'depends_on = ["start"]', 'branch = "g"', cond)
    assert codes(base + step("j", 'depends_on = ["l", "r"]')) == ["unreachable_step"]
    assert codes(base + step("j", 'depends_on = ["l", "r"]', 'depends_on_mode = "any"')) == []
    assert codes(base + step("j", 'depends_on = ["l", "start"]')) == []


def test_tool_overlay_on_autonomous_role() -> None:
    text = HEAD + step("a", 'allowed_tools = ["x"]', 'blocked_tools = ["y"]')
    assert codes(text) == ["tool_overlay_autonomous", "tool_overlay_autonomous"]
    driven = HEAD + 'runtime_mode = "turn_driven"\n' + step("a", 'allowed_tools = ["x"]')
    assert codes(driven) == []


def node(path: str, kind: str, *lines: str) -> str:
    return f'\n[{path}]\nkind = "{kind}"\n' + "\n".join(lines) + "\n"


def loop_flow(*extra: str) -> str:
    text = HEAD + step("draft") + step("critique") + step("publish")
    text += node(
        "flows.f.root.nodes.rounds",
        "repeat_until",
        'loop_id = "rounds"',
        "depends_on = []",
        'depends_on_mode = "all"',
        "max_iterations = 3",
        'until = { op = "eq", path = "steps.critique.ok", value = true }',
    )
    text += node(
        "flows.f.root.nodes.rounds.body.nodes.d",
        "step",
        'step_id = "draft"',
        "depends_on = []",
        'depends_on_mode = "all"',
    )
    text += node(
        "flows.f.root.nodes.rounds.body.nodes.c",
        "step",
        'step_id = "critique"',
        'depends_on = ["d"]',
        'depends_on_mode = "all"',
    )
    text += node(
        "flows.f.root.nodes.p",
        "step",
        'step_id = "publish"',
        'depends_on = ["rounds"]',
        'depends_on_mode = "all"',
    )
    return text + "".join(extra)


def test_explicit_root_is_clean() -> None:
    assert diagnose(loop_flow()) == []


def test_frame_rules() -> None:
    text = loop_flow(
        node(
            "flows.f.root.nodes.again",
            "step",
            'step_id = "draft"',
            'depends_on = ["d", "p"]',
            'depends_on_mode = "all"',
        ),
        node(
            "flows.f.root.nodes.ghost",
            "step",
            'step_id = "nope"',
            "depends_on = []",
            'depends_on_mode = "all"',
        ),
        node(
            "flows.f.root.nodes.l2",
            "repeat_until",
            'loop_id = "rounds"',
            "depends_on = []",
            'depends_on_mode = "all"',
            "max_iterations = 0",
            'until = { op = "eq", path = "params.x", value = 1 }',
            "body = { nodes = {} }",
        ),
    )
    assert [row.rsplit(" ", 1)[0] for row in diagnose(text)] == [
        "flow_cycle_detected flows.f.root.nodes.again.step_id",
        "flow_unknown_step flows.f.root.nodes.again.depends_on",
        "flow_unknown_step flows.f.root.nodes.ghost.step_id",
        "flow_cycle_detected flows.f.root.nodes.l2.loop_id",
        "quorum_invalid flows.f.root.nodes.l2.max_iterations",
    ]


def test_root_that_omits_steps_and_frame_cycle() -> None:
    text = HEAD + step("a") + step("b") + step("c")
    text += node(
        "flows.f.root.nodes.x",
        "step",
        'step_id = "a"',
        'depends_on = ["y"]',
        'depends_on_mode = "all"',
    )
    text += node(
        "flows.f.root.nodes.y",
        "step",
        'step_id = "b"',
        'depends_on = ["x"]',
        'depends_on_mode = "all"',
    )
    assert [row.rsplit(" ", 1)[0] for row in diagnose(text)] == [
        "flow_cycle_detected flows.f.root",
        "flow_unknown_step flows.f.root",
    ]
    assert messages(text)[1] == "root frame for flow 'f' does not reference declared flow steps: c"


def test_frame_nesting_limit() -> None:
    def nested(depth: int) -> str:
        text = HEAD + step("s")
        path = "flows.f.root"
        for level in range(depth):
            path += f".nodes.l{level}"
            text += node(
                path,
                "repeat_until",
                f'loop_id = "l{level}"',
                "depends_on = []",
                'depends_on_mode = "all"',
                "max_iterations = 1",
                'until = { op = "eq", path = "params.x", value = 1 }',
            )
            path += ".body"
        text += node(
            path + ".nodes.n", "step", 'step_id = "s"', "depends_on = []", 'depends_on_mode = "all"'
        )
        return text

    assert codes(nested(32)) == []
    assert sorted(codes(nested(33))) == ["flow_depth_exceeded", "flow_unknown_step"]


def test_templates_and_conditions_reference_rules() -> None:
    text = HEAD + step("a") + step("b", 'message = "x {{ bogus.y }} {{ steps }} {{ loops.l.x }}"')
    text += step(
        "c", 'condition = { op = "and", exprs = [{ op = "eq", path = "steps.zz", value = 1 }] }'
    )
    assert diagnose(text) == [
        "invalid_template flows.f.steps.b.message 13:14",
        "invalid_template flows.f.steps.b.message 13:28",
        "invalid_template flows.f.steps.b.message 13:40",
        "unknown_template_ref flows.f.steps.c.condition.exprs[0].path 18:56",
    ]


def test_template_syntax_error_position_and_message() -> None:
    text = HEAD + step("a", 'message = "héllo {{ }}"')
    assert diagnose(text) == ["invalid_template flows.f.steps.a.message 9:20"]
    assert messages(text) == [
        "invalid template syntax at line 1, column 9 (byte 9): empty placeholder"
    ]


def test_block_message_text_is_templated() -> None:
    text = HEAD + step(
        "a",
        'message = [{ type = "text", text = "x {{ steps.q }}" }, { type = "structured", data = { t = "{{ steps.q }}" } }]',
    )
    assert diagnose(text) == ["unknown_template_ref flows.f.steps.a.message[0].text 9:39"]


def test_upstream_rule_for_flat_flows() -> None:
    text = (
        HEAD
        + step("a")
        + step("b", 'depends_on = ["a"]')
        + step("c", 'depends_on = ["b"]', 'message = "{{ steps.a }} {{ steps.c }} {{ params.x }}"')
    )
    text += step("d", 'message = "{{ steps.b.output.x }}"')
    assert [row.rsplit(" ", 1)[0] for row in diagnose(text)] == [
        "template_ref_not_upstream flows.f.steps.c.message",
        "template_ref_not_upstream flows.f.steps.d.message",
    ]
    assert messages(text)[0] == (
        "step 'c' reads '{{ steps.c }}', but step 'c' is not upstream of it (it may not have "
        "run yet and reads as null)"
    )


def test_upstream_rule_across_loops() -> None:
    clean = loop_flow().replace(
        'message = "publish"',
        'message = "{{ steps.critique }} {{ loops.rounds.iterations.0.steps.draft }}"',
    )
    clean = clean.replace('message = "draft"', 'message = "{{ steps.critique.notes }}"')
    assert diagnose(clean) == []
    wrong_loop_step = loop_flow().replace(
        'message = "publish"', 'message = "{{ loops.rounds.iterations.1.steps.publish }}"'
    )
    assert codes(wrong_loop_step) == ["unknown_template_ref"]
    not_upstream = loop_flow().replace('message = "draft"', 'message = "{{ steps.publish }}"')
    assert codes(not_upstream) == ["template_ref_not_upstream"]
    until_outside = loop_flow().replace('path = "steps.critique.ok"', 'path = "steps.publish.ok"')
    assert [row.rsplit(" ", 1)[0] for row in diagnose(until_outside)] == [
        "template_ref_not_upstream flows.f.root.nodes.rounds.until.path"
    ]


def test_schema_refs(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text(
        json.dumps({"type": "object", "additionalProperties": {"type": "string"}})
    )
    (tmp_path / "bad.json").write_text(json.dumps({"type": 3}))
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "broken.json").write_text("{")
    text = HEAD
    for name in ("ok", "bad", "list", "broken", "missing"):
        text += step(name, f'expected_schema_ref = "{name}.json"')
    text += step("blank", 'expected_schema_ref = " "')
    assert codes(text, base_dir=tmp_path) == ["invalid_value"]
    text = text.replace('expected_schema_ref = " "', "")
    assert [row.rsplit(" ", 1)[0] for row in diagnose(text, base_dir=tmp_path)] == [
        "aggregate_schema_mismatch flows.f.steps.bad.expected_schema_ref",
        "invalid_schema flows.f.steps.bad.expected_schema_ref",
        "aggregate_schema_mismatch flows.f.steps.list.expected_schema_ref",
        "invalid_schema flows.f.steps.list.expected_schema_ref",
        "aggregate_schema_mismatch flows.f.steps.broken.expected_schema_ref",
        "invalid_schema flows.f.steps.broken.expected_schema_ref",
        "aggregate_schema_mismatch flows.f.steps.missing.expected_schema_ref",
        "schema_ref_not_found flows.f.steps.missing.expected_schema_ref",
    ]


def test_aggregate_wrappers() -> None:
    def schema_step(schema: str, *lines: str) -> str:
        return HEAD + step("s", f"expected_schema_ref = '{schema}'", *lines)

    assert codes(schema_step('{"type": "object"}', 'collection_policy = { type = "any" }')) == []
    assert codes(schema_step('{"type": "object"}')) == ["aggregate_schema_mismatch"]
    assert codes(schema_step('{"patternProperties": {".*": {}}}')) == []
    assert codes(
        schema_step(
            '{"type": "object"}', 'dispatch_mode = "fan_in"', 'collection_policy = { type = "any" }'
        )
    ) == ["aggregate_schema_mismatch"]
    assert codes(schema_step('{"type": "array", "items": {}}', 'dispatch_mode = "fan_in"')) == []
    assert codes(
        schema_step(
            '{"$schema": "http://json-schema.org/draft-07/schema#", "type": "nope"}',
            'collection_policy = { type = "any" }',
        )
    ) == ["invalid_schema"]


def test_skill_paths(tmp_path: Path) -> None:
    (tmp_path / "skills").mkdir()
    (tmp_path / "skills" / "ok.md").write_text("fine")
    (tmp_path / "skills" / "bin.md").write_bytes(b"\xff\xfe")
    text = HEAD + "".join(
        f'[skills.{n}]\nsource = "path"\npath = "skills/{n}.md"\n' for n in ("ok", "bin", "gone")
    )
    assert codes(text, base_dir=tmp_path) == ["skill_path_not_found", "skill_path_not_found"]
    found = messages(text, base_dir=tmp_path)
    assert any("is not UTF-8 text" in m for m in found)
    assert any("does not exist" in m for m in found)


def test_unsafe_mob_id() -> None:
    assert codes(HEAD.replace('id = "t"', 'id = "a/b"')) == ["unsafe_id"]
    assert codes(HEAD.replace('id = "t"', 'id = ".."')) == ["unsafe_id"]
    assert codes(HEAD.replace('id = "t"', 'id = "ok.id-1_x"')) == []


def test_a_schema_ref_outside_the_schema_is_invalid(tmp_path: Path) -> None:
    """jsonschema would read a file:// $ref or fetch an http:// one; a definition from a pull
    request must not make mobctl do either, so such a schema is refused, in a file or inline."""
    (tmp_path / "secret.json").write_text('{"const": "AKIA-SECRET"}')
    ref = (tmp_path / "secret.json").as_uri()
    (tmp_path / "named.json").write_text(
        json.dumps({"type": "array", "items": {"$ref": "http://127.0.0.1:9/x"}})
    )
    text = HEAD + step(
        "inline",
        f"""expected_schema_ref = '{{"$ref": "{ref}"}}'""",
        'collection_policy = { type = "any" }',
    )
    text += step("named", 'expected_schema_ref = "named.json"', 'dispatch_mode = "fan_in"')
    text += step(
        "local",
        """expected_schema_ref = '{"$defs": {"n": {}}, "$ref": "#/$defs/n"}'""",
        'collection_policy = { type = "any" }',
    )
    assert messages(text, base_dir=tmp_path) == [
        f"step 'inline' inline schema is not a valid JSON Schema: $ref '{ref}' points outside "
        "the schema; mobctl resolves only references inside it ('#...') and never fetches a "
        "file or URL",
        "step 'named' schema file 'named.json' is not a valid JSON Schema: $ref "
        "'http://127.0.0.1:9/x' points outside the schema; mobctl resolves only references "
        "inside it ('#...') and never fetches a file or URL",
    ]
    assert "AKIA" not in " ".join(messages(text, base_dir=tmp_path))


def test_schema_dialects_are_checked_as_written() -> None:
    draft3 = HEAD + step(
        "s",
        """expected_schema_ref = '{"$schema": "http://json-schema.org/draft-03/schema#", "type": "object"}'""",
        'collection_policy = { type = "any" }',
    )
    assert codes(draft3) == []
    odd = HEAD + step(
        "s", """expected_schema_ref = '{"$schema": {}}'""", 'collection_policy = { type = "any" }'
    )
    assert codes(odd) == ["invalid_schema"]
    assert messages(odd) == [
        "step 's' inline schema is not a valid JSON Schema: $schema must be a string (the URI of a JSON Schema dialect)"
    ]


@pytest.mark.parametrize("keyword", ["pattern", "patternProperties"])
def test_a_pattern_nested_thousands_deep_is_an_invalid_schema(keyword: str) -> None:
    pattern = "(" * 5000 + "a" + ")" * 5000  # re.compile raised RecursionError: exit 70
    schema = {"pattern": pattern} if keyword == "pattern" else {keyword: {pattern: True}}
    text = HEAD + step(
        "s", f"expected_schema_ref = '{json.dumps(schema)}'", 'collection_policy = { type = "any" }'
    )
    assert messages(text) == [
        "step 's' inline schema is not a valid JSON Schema: a pattern in the schema is nested "
        "too deeply to compile"
    ]
