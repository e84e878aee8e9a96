"""A step's end: its output checked against ``expected_schema_ref`` without reaching out."""

from __future__ import annotations

from pathlib import Path

from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import Completed, Drivers
from mobctl.engine.runner import FlowRunner
from mobctl.store.directory import DirectoryStore
from tests.engine.test_unstorable_outputs import Answers


def test_a_schema_ref_outside_the_schema_fails_the_step_and_reads_nothing(tmp_path: Path) -> None:
    """Validation refuses such a schema; a definition that skipped it (a planted store) still
    gets a failed step (never an exception that orphans the run) and nothing is read."""
    secret = tmp_path / "cfg.json"
    secret.write_text('{"properties": {"x": {"const": "AKIA-SECRET"}}}')
    step = {"role": "w", "message": "a", "output_format": "json"}
    definition = MobDefinition.model_validate(
        {
            "mob": {"id": "s"},
            "profiles": {"w": {"model": "claude-sonnet-4-6", "runtime_mode": "turn_driven"}},
            "flows": {
                "main": {
                    "steps": {
                        "a": {
                            **step,
                            "collection_policy": {"type": "any"},
                            "expected_schema_ref": f'{{"$ref": "{secret.as_uri()}"}}',
                        }
                    }
                }
            },
        }
    )
    store = DirectoryStore(tmp_path / "store")
    answers = Drivers(Answers(Completed(output='{"x": 1}')))
    runner = FlowRunner(store, definition, "main", {}, answers)
    runner.create()
    runner.execute()
    run = DirectoryStore(tmp_path / "store").runs("s").get_run(runner.run_id)
    assert run is not None and run.status == "failed"
    failed = [e.kind for e in store.events("s").replay_all() if e.kind.type == "step_failed"]
    assert [e.reason for e in failed] == [  # type: ignore[attr-defined]
        f"schema validation failed for step a: the schema's $ref '{secret.as_uri()}' is not "
        "inside the schema (never fetched)"
    ]
