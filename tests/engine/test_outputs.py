"""Output parsing, collection policies, aggregates and result envelopes (§7.7, §7.8, §11.3)."""

from __future__ import annotations

import pytest

from mobctl.definition.model import AllPolicy, AnyPolicy, QuorumPolicy
from mobctl.engine.outputs import (
    MalformedOutput,
    TargetResult,
    collect,
    parse_output,
    result_envelope,
    structured_output,
)

ALL, ANY = AllPolicy(type="all"), AnyPolicy(type="any")


def test_text_and_json_parsing() -> None:
    assert parse_output(" raw \n", None, "text") == " raw \n"
    assert parse_output(' {"a": 1} ', None, "json") == {"a": 1}
    assert parse_output("anything", {"s": True}, "json") == {"s": True}
    assert parse_output("1", None, "json") == 1 and isinstance(
        parse_output("1.0", None, "json"), float
    )
    fenced = 'Here you go:\n```json\n{"approved": true}\n```\nthanks'
    assert parse_output(fenced, None, "json") == {"approved": True}
    assert parse_output("```\n[1, 2]", None, "json") == [1, 2]
    with pytest.raises(MalformedOutput):
        parse_output("not json", None, "json")
    with pytest.raises(MalformedOutput):
        parse_output("NaN", None, "json")
    for overflowing in ("1e999", '{"a": [-1e999]}', "```json\n2e308\n```"):
        with pytest.raises(MalformedOutput, match=r"^the number -?\de\d+ is out of range"):
            parse_output(overflowing, None, "json")
    assert parse_output("1e-999", None, "json") == 0.0


def ok(target: str, value: object) -> TargetResult:
    return TargetResult(target, True, value)


def bad(target: str, reason: str) -> TargetResult:
    return TargetResult(target, False, reason=reason)


def test_aggregates() -> None:
    results = [ok("a-2", 1), ok("a-1", 2)]
    assert collect(results, ALL, "fan_out").aggregate == {"a-1": 2, "a-2": 1}
    assert list(collect(results, ALL, "fan_out").aggregate) == ["a-1", "a-2"]
    assert collect(results, ANY, "fan_out").aggregate == 1
    assert collect(results, ALL, "fan_in").aggregate == [
        {"target": "a-2", "output": 1},
        {"target": "a-1", "output": 2},
    ]
    assert collect([ok("w-1", "v")], ALL, "fan_out").aggregate == {"w-1": "v"}


def test_policies_and_reasons() -> None:
    mixed = [ok("a", 1), bad("b", "flaky"), bad("c", "timeout + canceled after 5ms")]
    failed = collect(mixed, ALL, "fan_out")
    assert not failed.ok and failed.reason == "flaky; timeout + canceled after 5ms"
    assert collect(mixed, ANY, "fan_out").aggregate == 1
    assert collect(mixed, QuorumPolicy(type="quorum", n=1), "fan_out").aggregate == {"a": 1}
    short = collect(mixed, QuorumPolicy(type="quorum", n=2), "fan_out")
    assert short.reason == "flaky; timeout + canceled after 5ms"
    assert collect([bad("a", "x")], ANY, "one_to_one").reason == "x"
    nothing = collect([ok("a", 1), ok("b", 2)], QuorumPolicy(type="quorum", n=3), "fan_out")
    assert (
        nothing.reason == "collection policy Quorum { n: 3 } not satisfied: 2 successes, 0 failures"
    )


def test_result_envelope_and_structured_output() -> None:
    assert result_envelope({}) is None
    assert result_envelope({"a": {"w-1": "A"}}) == {"w-1": "A"}
    assert result_envelope({"a": 1, "b": 2}) == {"steps": {"a": 1, "b": 2}}
    assert structured_output({}, {}) is None
    loops = {
        "rounds": [
            {"draft": "v1", "critique": {"approved": False}},
            {"draft": "v2", "critique": {"approved": True}},
        ]
    }
    assert structured_output({}, loops) == {
        "steps": {"draft": "v2", "critique": {"approved": True}}
    }
