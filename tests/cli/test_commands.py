"""--version, schema and graph through the real CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema

from tests.conftest import CORPUS, SAMPLES, cli, mobctl_process


def test_version() -> None:
    from mobctl import __version__

    result = cli("--version")
    assert (result.exit_code, result.stdout) == (0, f"mobctl {__version__}\n")
    assert mobctl_process("--version").stdout == f"mobctl {__version__}\n"


def test_help_lists_commands_with_examples() -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("validate", "schema", "graph", "convert"):
        assert command in result.stdout
    assert "mobctl validate sample-mobs/minimal.toml" in cli("validate", "--help").stdout


def test_schema_is_a_valid_json_schema_that_accepts_every_sample() -> None:
    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    corpus = [CORPUS / "01_coding_swarm_mob.toml"] if CORPUS.is_dir() else []
    for path in [*sorted(SAMPLES.glob("*.toml")), *corpus]:
        errors = list(validator.iter_errors(tomllib.loads(path.read_text())))
        assert errors == [], (path.name, [e.message for e in errors])
    rejected = tomllib.loads((SAMPLES / "invalid" / "invalid_value.toml").read_text())
    assert list(validator.iter_errors(rejected))


def test_graph_mermaid() -> None:
    result = cli("graph", SAMPLES / "triage.toml")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("flowchart TD\n")
    assert 'subgraph c1["branch route"]' in out
    assert '-->|"steps.classify.severity in [#quot;high#quot;, #quot;critical#quot;]"|' in out
    assert "-.->" in out  # the any-join is dashed


def test_graph_dot_with_loop() -> None:
    result = cli("graph", SAMPLES / "draft-critique.toml", "--flow", "main", "--format", "dot")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith('digraph "main" {')
    assert 'label="loop rounds (until steps.critique.approved == true, max 4)";' in out
    assert out.rstrip().endswith("}")


def test_graph_flow_errors(tmp_path: Path) -> None:
    unknown = cli("graph", SAMPLES / "triage.toml", "--flow", "nope")
    assert unknown.exit_code == 1
    assert unknown.stderr.splitlines() == [
        "error[unknown_flow]: mob 'triage' has no flow 'nope'",
        "hint: flows: main, escalate",
    ]
    two = tmp_path / "two.toml"
    two.write_text((SAMPLES / "triage.toml").read_text().replace("flows.main", "flows.first"))
    ambiguous = cli("graph", two)
    assert ambiguous.exit_code == 1
    assert "has 2 flows and none is 'main'; name one" in ambiguous.stderr
    missing = cli("graph", tmp_path / "nope.toml")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error[path_not_found]:")
