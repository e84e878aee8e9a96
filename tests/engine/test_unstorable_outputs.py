"""Agent output the store cannot write or read back (a lone surrogate, nesting deeper than the
store's readers take, a non-JSON value handed over as structured output) is a malformed output:
the turn fails, is retried per ``max_step_retries``, and the run ends failed, never orphaned."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mobctl.canonical import json_equal
from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import Completed, Drivers, Failed, Outcome, TurnRequest
from mobctl.engine.outputs import MAX_OUTPUT_DEPTH, MalformedOutput, parse_output
from mobctl.engine.runner import FlowRunner
from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.check import check_store
from tests.conftest import cli, mobctl_process
from tests.engine.test_scenarios import HEAD, brief, flow_events

JSON_STEP = '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\noutput_format = "json"\n'
RETRY = "[limits]\nmax_step_retries = 1\n"


def mob_file(tmp_path: Path, body: str) -> Path:
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + body)
    return mob


def agent(tmp_path: Path, stdout: str) -> str:
    """A ``command:`` driver whose agent prints ``stdout`` (the real command driver)."""
    answer = tmp_path / "answer.txt"
    answer.write_text(stdout, "utf-8")
    script = tmp_path / "agent.py"
    script.write_text(
        f"import sys\nsys.stdin.read()\nsys.stdout.write(open({str(answer)!r}).read())\n"
    )
    return f"command:{sys.executable} {script}"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_failed_cleanly(store: Path, result: Any, reasons: list[str]) -> None:
    """Exit 3, each attempt's exact reason, a failed (not orphaned) run, a consistent store,
    and nothing left for `runs resume`."""
    assert result.returncode == 3, result.stderr
    assert "bug" not in result.stderr
    kinds = flow_events(store)
    run_id = kinds[0]["run_id"]
    assert brief(kinds) == [
        "flow_started main",
        *[
            line
            for reason in reasons
            for line in ("step_dispatched a", f"step_target_failed a {reason}")
        ],
        f"step_failed a {reasons[-1]}",
        f"flow_failed main flow failed for run {run_id}: root frame sealed failed",
    ]
    listed = json.loads(cli("runs", "list", "s", "--store", store, "--json").stdout)
    assert [(r["status"], r["orphaned"]) for r in listed] == [("failed", False)]
    checked = cli("store", "check", "--store", store)
    assert (checked.exit_code, checked.stdout) == (0, "store is consistent\n")
    resumed = cli("runs", "resume", "s", run_id, "--store", store)
    assert (resumed.exit_code, resumed.stderr) == (
        1,
        f"error[run_not_resumable]: run {run_id} is already failed; nothing to resume\n",
    )


def test_item9_lone_surrogate_output_fails_the_turn_cleanly(tmp_path: Path) -> None:
    """``{"k":"\\ud800"}`` is valid JSON text, but its string is not Unicode: UTF-8 cannot
    encode it, so no record of it can be written (it crashed the run with exit 70)."""
    mob = mob_file(tmp_path, RETRY + JSON_STEP)
    fixtures = tmp_path / "f.toml"
    fixtures.write_text('[[reply]]\noutput = \'{"k":"\\ud800"}\'\n')
    store = tmp_path / "store"
    result = mobctl_process("run", mob, "--driver", f"scripted:{fixtures}", "--store", store)
    reason = (
        "malformed JSON output for step 'a' target 'w-1': a string holds a lone surrogate "
        '(U+D800), which UTF-8 cannot encode; raw_output="{"k":"\\ud800"}..."'
    )
    assert_failed_cleanly(store, result, [reason, reason])


def test_item9_lone_surrogate_from_the_command_driver(tmp_path: Path) -> None:
    mob = mob_file(tmp_path, JSON_STEP)
    store = tmp_path / "store"
    driver = agent(tmp_path, '{"k": ["ok", "\\udc80"]}\n')
    result = mobctl_process("run", mob, "--driver", driver, "--store", store)
    assert_failed_cleanly(
        store,
        result,
        [
            "malformed JSON output for step 'a' target 'w-1': a string holds a lone surrogate "
            '(U+DC80), which UTF-8 cannot encode; raw_output="{"k": ["ok", "\\udc80"]}\n..."'
        ],
    )


def test_item9_deeply_nested_output_fails_the_turn_cleanly(tmp_path: Path) -> None:
    """Nesting the store's readers cannot take (pydantic validates JSON to 255 levels: it
    crashed the run from 253 levels on) up to what Python's json cannot even parse (from 994
    levels): all one rule, more than MAX_OUTPUT_DEPTH levels is malformed."""
    for depth in (MAX_OUTPUT_DEPTH + 1, 253, 979, 5000):
        case = tmp_path / str(depth)
        case.mkdir()
        mob = mob_file(case, RETRY + JSON_STEP)
        store = case / "store"
        driver = agent(case, nested(depth))
        result = mobctl_process("run", mob, "--driver", driver, "--store", store)
        reason = (
            "malformed JSON output for step 'a' target 'w-1': nested more than 200 levels deep; "
            f'raw_output="{"[" * 200}..."'
        )
        assert_failed_cleanly(store, result, [reason, reason])


def test_item9_output_at_the_depth_limit_is_stored_and_read_back(tmp_path: Path) -> None:
    """MAX_OUTPUT_DEPTH levels in the deepest place the store keeps an output (a fan_in
    aggregate in a loop, in flow_completed's structured_output, which the snapshot keeps as
    its terminal event): the run completes and every reader takes it; one level more is
    malformed."""
    mob = mob_file(
        tmp_path,
        '[flows.main.steps.s]\nrole = "w"\nmessage = "s"\noutput_format = "json"\n'
        'dispatch_mode = "fan_in"\n'
        '[flows.main.root.nodes.l]\nkind = "repeat_until"\nloop_id = "l"\ndepends_on = []\n'
        'depends_on_mode = "all"\nmax_iterations = 1\n'
        'until = { op = "eq", path = "steps.s.0.target", value = "w-1" }\n'
        '[flows.main.root.nodes.l.body.nodes.n]\nkind = "step"\nstep_id = "s"\n'
        'depends_on = []\ndepends_on_mode = "all"\n',
    )
    store = tmp_path / "store"
    value: list[Any] = []
    for _ in range(MAX_OUTPUT_DEPTH - 1):
        value = [value]
    result = mobctl_process(
        "run", mob, "--driver", agent(tmp_path, nested(MAX_OUTPUT_DEPTH)), "--store", store
    )
    assert result.returncode == 0, result.stderr
    run_id = flow_events(store)[0]["run_id"]
    shown = cli("runs", "show", "s", run_id, "--store", store, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "completed"
    completed = flow_events(store)[-1]
    assert completed["type"] == "flow_completed"
    assert json_equal(
        completed["structured_output"], {"steps": {"s": [{"target": "w-1", "output": value}]}}
    )
    tailed = cli("events", "tail", "s", "--store", store, "--json")
    assert tailed.exit_code == 0, tailed.stderr
    checked = cli("store", "check", "--store", store)
    assert (checked.exit_code, checked.stdout) == (0, "store is consistent\n")

    deeper = tmp_path / "deeper"
    deeper.mkdir()
    result = mobctl_process(
        "run", mob, "--driver", agent(deeper, nested(MAX_OUTPUT_DEPTH + 1)), "--store", store
    )
    assert result.returncode == 3, result.stderr
    assert flow_events(store)[-3]["reason"].startswith(
        "malformed JSON output for step 's' target 'w-1': nested more than 200 levels deep;"
    )


def test_item9_a_recursive_schema_over_a_deep_output_fails_the_step(tmp_path: Path) -> None:
    """jsonschema recurses with the schema: a deep (storable) output can exhaust Python's
    recursion limit while it is validated, which crashed the run."""
    level = '{"type": "array", "items": {"$ref": "#/$defs/n"}}'
    schema = (
        '{"$defs": {"n": {"allOf": [{"anyOf": [{"type": "null"}, ' + level + "]}, " + level + "]}}"
        ', "type": "object", "additionalProperties": {"$ref": "#/$defs/n"}}'
    )
    mob = mob_file(tmp_path, JSON_STEP + f"expected_schema_ref = '{schema}'\n")
    store = tmp_path / "store"
    driver = agent(tmp_path, nested(MAX_OUTPUT_DEPTH))
    result = mobctl_process("run", mob, "--driver", driver, "--store", store)
    assert result.returncode == 3, result.stderr
    assert brief(flow_events(store))[-2:-1] == [
        "step_failed a schema validation failed for step a: the output is nested too deeply "
        "to validate",
    ]


# --- any outcome a driver returns ----------------------------------------------------------


class Answers:
    """A driver (the Driver protocol) that returns one given outcome for every turn."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        return self.outcome


def wrap(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
texts = st.text(max_size=12) | st.lists(st.characters() | surrogates, max_size=12).map("".join)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities included
    texts,
    st.integers(4290, 4310).map(lambda digits: 10**digits),  # past 4300 digits: not writable
    st.sampled_from([(1, 2), b"x", {1: "int key"}, {"\udfff": 1}]),
)
values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
)
depths = st.sampled_from([0, 0, 1, MAX_OUTPUT_DEPTH - 1, MAX_OUTPUT_DEPTH, 252, 253, 980, 2000])


def raw_json(depth: int, leaf: Any, ascii_only: bool) -> str:
    try:
        inner = json.dumps(leaf, ensure_ascii=ascii_only)
    except (TypeError, ValueError):
        inner = "not json"
    return "[" * depth + inner + "]" * depth


@st.composite
def outcomes(draw: st.DrawFn) -> tuple[Outcome, str]:
    """A driver's outcome and the step's output format."""
    output_format = draw(st.sampled_from(["json", "text"]))
    if draw(st.booleans()):
        return Failed(draw(texts)), output_format
    depth, leaf = draw(depths), draw(values)
    raw = draw(st.one_of(texts, st.builds(raw_json, st.just(depth), st.just(leaf), st.booleans())))
    structured = wrap(depth, leaf) if draw(st.booleans()) else None
    return Completed(raw, structured), output_format


@settings(max_examples=100)
@given(outcomes())
def test_item9_any_driver_outcome_is_stored_and_read_back_or_fails_as_malformed(
    case: tuple[Outcome, str],
) -> None:
    """Whatever a driver returns, the run ends (never an exception): a completed run whose
    output reads back from disk equal to what the driver gave, or a failed run whose turn
    failed as a malformed output (or with the driver's reason); the store stays consistent."""
    outcome, output_format = case
    definition = MobDefinition.model_validate(
        {
            "mob": {"id": "s"},
            "profiles": {"w": {"model": "claude-sonnet-4-6", "runtime_mode": "turn_driven"}},
            "flows": {
                "main": {
                    "steps": {"a": {"role": "w", "message": "a", "output_format": output_format}}
                }
            },
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        runner = FlowRunner(
            DirectoryStore(Path(tmp)), definition, "main", {}, Drivers(Answers(outcome))
        )
        runner.create()
        runner.execute()
        store = DirectoryStore(Path(tmp))  # read back from disk, not from a cache
        run = store.runs("s").get_run(runner.run_id)
        assert run is not None
        events = [e.kind for e in store.events("s").replay_all()]
        report = check_store(store)
        assert report.ok, report.problems
    event(f"{run.status} {output_format} {type(outcome).__name__}")
    target_events = [e for e in events if e.type.startswith("step_target_")]
    assert len(target_events) == 1
    if run.status == "completed":
        assert isinstance(outcome, Completed)
        stored = run.root_step_outputs["a"]["w-1"]  # type: ignore[index,call-overload]
        if output_format == "text":
            expected = outcome.output
        elif outcome.structured_output is not None:
            expected = outcome.structured_output
        else:
            try:
                expected = json.loads(outcome.output)  # read by Python's json
            except ValueError:
                expected = stored  # fenced: the fence rules are test_outputs.py's
        assert json_equal(stored, expected)
        assert json_equal(target_events[0].field("output"), expected)
        return
    assert run.status == "failed"
    reason = target_events[0].field("reason")
    if isinstance(outcome, Failed):
        assert reason == outcome.reason.encode("utf-8", "backslashreplace").decode()
    else:
        kind = "JSON" if output_format == "json" else "text"
        assert reason.startswith(f"malformed {kind} output for step 'a' target 'w-1': ")


def test_item9_params_the_store_cannot_write_are_a_usage_error(tmp_path: Path) -> None:
    """The same values as params: refused before the run is created (they crashed `mobctl
    run` with exit 70)."""
    mob = mob_file(tmp_path, JSON_STEP)
    store = tmp_path / "store"
    for params, problem in (
        (
            ["-P", 'x="\\udfff"'],
            "a string holds a lone surrogate (U+DFFF), which UTF-8 cannot encode",
        ),
        (
            ["--params", '{"x": ' + nested(MAX_OUTPUT_DEPTH) + "}"],
            "nested more than 200 levels deep",
        ),
    ):
        result = cli("run", mob, *params, "--driver", "echo", "--store", store)
        assert (result.exit_code, result.stderr) == (
            2,
            f"error[usage]: the run's params cannot be stored: {problem}\n"
            "hint: pass params as UTF-8 text\n",
        )
    assert not (store / "mobs" / "s" / "runs").exists()


def test_item9_what_a_driver_may_hand_over_as_structured_output() -> None:
    for value, problem in (
        ([float("nan")], "nan is not a JSON number"),
        ({"a": float("-inf")}, "-inf is not a JSON number"),
        ({1: "x"}, "object keys are strings, not int"),
        ({"\udc00": 1}, "a string holds a lone surrogate (U+DC00), which UTF-8 cannot encode"),
        ((1, 2), "a value of type tuple is not JSON"),
        ([b"x"], "a value of type bytes is not JSON"),
        ([10**4301], "Exceeds the limit (4300 digits) for integer string conversion"),
    ):
        with pytest.raises(MalformedOutput) as caught:
            parse_output("raw", value, "json")
        assert str(caught.value) == problem
    storable = {"k": [1, 1.5, True, None, "é", 10**4299, 2**64]}
    assert parse_output("raw", storable, "json") is storable
