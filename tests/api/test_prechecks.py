"""Which params a flow is certain to read, and which driver roles it has (api/prechecks.py),
on the bundled samples and on small flows that put params where they may be absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobctl.api.prechecks import check_run, needed_params
from mobctl.definition.loader import load_file, load_text
from mobctl.definition.model import MobDefinition
from mobctl.engine.profiles import flow_roles
from mobctl.errors import UsageError
from tests.conftest import SAMPLES
from tests.engine.test_scenarios import HEAD


def definition(flows: str) -> MobDefinition:
    loaded = load_text(HEAD + flows, "toml", "t.toml", Path("."))
    assert loaded.definition is not None, loaded.diagnostics
    return loaded.definition


def needed(flows: str, flow: str = "main") -> list[tuple[str, str]]:
    return list(needed_params(definition(flows).flows[flow]))


def sample(name: str) -> MobDefinition:
    loaded = load_file(SAMPLES / name)
    assert loaded.definition is not None
    return loaded.definition


def test_the_samples_need_what_their_readme_commands_pass() -> None:
    assert list(needed_params(sample("minimal.toml").flows["main"])) == [
        ("step 'greet'", "params.name")
    ]
    assert [path for _, path in needed_params(sample("code-review.toml").flows["main"])] == [
        "params.change",
        "params.change",
    ]
    # the loop's body runs at least once: its first step's params are needed
    assert list(needed_params(sample("draft-critique.toml").flows["main"])) == [
        ("step 'draft'", "params.topic")
    ]
    triage = sample("triage.toml")
    assert list(needed_params(triage.flows["main"])) == [("step 'classify'", "params.incident")]
    # `and`: the first operand is always evaluated, the second only when the first is true
    assert list(needed_params(triage.flows["escalate"])) == [
        ("the condition of step 'recheck'", "params.escalate")
    ]


def test_params_in_branches_behind_conditions_or_after_short_circuits_are_not_needed() -> None:
    flows = (
        '[flows.main.steps.a]\nrole = "w"\nmessage = "{{ params.a }} {{ params }}"\n'
        '[flows.main.steps.gated]\nrole = "w"\nmessage = "{{ params.behind }}"\n'
        'condition = { op = "or", exprs = [{ op = "not", expr = { op = "eq", '
        'path = "params.first", value = 1 } }, { op = "eq", path = "params.second", value = 2 }] }\n'
        '[flows.main.steps.after]\nrole = "w"\nmessage = "{{ params.after_gate }}"\n'
        'depends_on = ["gated"]\n'
        '[flows.main.steps.x]\nrole = "w"\nmessage = "{{ params.in_branch }}"\n'
        'depends_on = ["a"]\nbranch = "g"\ncondition = { op = "eq", path = "params.bx", value = 1 }\n'
        '[flows.main.steps.y]\nrole = "w"\nmessage = "{{ params.in_branch }}"\n'
        'depends_on = ["a"]\nbranch = "g"\ncondition = { op = "eq", path = "params.by", value = 1 }\n'
        '[flows.main.steps.join]\nrole = "w"\nmessage = "{{ params.joined }} {{ steps.a.x }}"\n'
        'depends_on = ["a"]\n'
        '[flows.main.steps.bad]\nrole = "w"\nmessage = "{{ params.broken"\n'
    )
    assert needed(flows) == [
        ("step 'a'", "params.a"),
        ("the condition of step 'gated'", "params.first"),
        ("step 'join'", "params.joined"),
    ]


def test_check_run_names_every_missing_param_once_with_its_readers() -> None:
    mob = definition(
        '[flows.main.steps.a]\nrole = "w"\nmessage = "{{ params.x.y }} {{ params.z }}"\n'
        '[flows.main.steps.b]\nrole = "w"\nmessage = "{{ params.z }}"\n'
    )
    with pytest.raises(UsageError) as caught:
        check_run(mob, "main", {"x": {"other": 1}}, [])
    assert caught.value.message == (
        "flow 'main' of mob 's' needs params that were not given: x.y (read by step 'a'); "
        "z (read by step 'a', step 'b')"
    )
    check_run(mob, "main", {"x": {"y": None}, "z": []}, [])  # null and [] are values


def test_driver_roles_are_the_steps_and_the_supervisors() -> None:
    mob = definition(
        '[profiles.boss]\nmodel = "claude-sonnet-4-6"\n'
        '[supervisor]\nrole = "boss"\nescalation_threshold = 1\n'
        '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n'
        '[flows.other.steps.b]\nrole = "boss"\nmessage = "b"\n'
    )
    assert sorted(flow_roles(mob, "main")) == ["boss", "w"]
    check_run(mob, "main", {}, ["boss=echo", "w=scripted:x.toml", "echo", "command:env A=1 x"])
    with pytest.raises(UsageError, match="has the role 'nobody'"):
        check_run(mob, "main", {}, ["nobody=echo"])
