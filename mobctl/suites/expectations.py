"""Checking a case's expectations against its run: every expectation checked, every failure
reported (the expectation's place in the suite, a one-line message, diff-style detail lines,
and the events that prove what happened), never just the first."""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
from dataclasses import dataclass
from typing import Any

import regex

from mobctl.definition.model import Condition, EqCondition, GtCondition, InCondition, LtCondition
from mobctl.definition.references import LoopRef, StepRef, parse_reference
from mobctl.definition.schemas import schema_validator
from mobctl.engine.conditions import ConditionError, evaluate
from mobctl.engine.context import Absent, Fault, resolve
from mobctl.store.models import MobEvent
from mobctl.suites.model import Expect, OutputAssertion
from mobctl.suites.record import RunRecord

DocPath = tuple[str | int, ...]
MATCH_SECONDS = 1.0  # a `matches` pattern gets this long (a suite may come from a pull request)
SHOWN = 200  # characters of a value in a message


@dataclass(frozen=True)
class Failure:
    where: DocPath  # the expectation, inside its case (``("expect", "steps", "publish")``)
    message: str
    detail: tuple[str, ...] = ()  # "- expected" / "+ actual" lines, or a unified diff
    evidence: tuple[MobEvent, ...] = ()
    expected: Any = None
    actual: Any = None
    update: Any = None  # what ``--update`` writes as the value (an ``eq`` output assertion)


def shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _versus(expected: Any, actual: Any) -> tuple[str, ...]:
    return (f"- {shown(expected)}", f"+ {shown(actual)}")


def _diff(expected: list[str], actual: list[str]) -> tuple[str, ...]:
    return tuple(difflib.unified_diff(expected, actual, "expected", "actual", lineterm="", n=2))


def _times(count: int) -> str:
    return f"{count} time{'' if count == 1 else 's'}"


def check(expect: Expect, record: RunRecord, schemas: dict[int, Any]) -> list[Failure]:
    """Every failed expectation of ``expect`` on the run ``record``."""
    return _Checker(record, schemas).all(expect)


class _Checker:
    def __init__(self, record: RunRecord, schemas: dict[int, Any]) -> None:
        self.record = record
        self.schemas = schemas
        self.statuses: dict[str, str] = record.step_statuses()
        self.context = record.context()
        self.failures: list[Failure] = []

    def fail(self, where: DocPath, message: str, **fields: Any) -> None:
        self.failures.append(Failure(("expect", *where), message, **fields))

    def all(self, expect: Expect) -> list[Failure]:
        self.status(expect)
        for step, status in expect.steps.items():
            self.step(step, status)
        if expect.order is not None:
            self.order(expect.order.exact, expect.order.subsequence)
        for step, count in expect.dispatches.items():
            self.count(("dispatches", step), step, count, retries=False)
        for step, count in expect.retries.items():
            self.count(("retries", step), step, count, retries=True)
        if expect.events is not None:
            self.events(expect.events.exact, expect.events.subsequence, expect.events.never)
        iterations = self.record.loop_iterations()
        for loop, count in expect.loops.items():
            actual = iterations.get(loop, 0)
            if loop not in self.record.loop_ids:
                self.fail(
                    ("loops", loop),
                    f"flow '{self.record.run.flow_id}' has no loop '{loop}' "
                    f"(its loops: {', '.join(sorted(self.record.loop_ids)) or 'none'})",
                )
            elif actual != count:
                self.fail(
                    ("loops", loop),
                    f"loop '{loop}' ran {actual} iteration{'' if actual == 1 else 's'}, "
                    f"expected {count}",
                    detail=_versus(count, actual),
                    expected=count,
                    actual=actual,
                )
        for index, assertion in enumerate(expect.output):
            self.output(index, assertion)
        return self.failures

    def status(self, expect: Expect) -> None:
        run, terminal = self.record.run, tuple(self.record.terminal())
        if expect.status is not None and run.status != expect.status:
            self.fail(
                ("status",),
                f"the run ended {run.status}, expected {expect.status}",
                detail=_versus(expect.status, run.status),
                evidence=terminal,
                expected=expect.status,
                actual=run.status,
            )
        cause = self.record.cause
        if expect.cause is not None and cause != expect.cause:
            self.fail(
                ("cause",),
                f"the run's cause is {shown(cause)}, expected {shown(expect.cause)}",
                detail=_versus(expect.cause, cause),
                evidence=terminal,
                expected=expect.cause,
                actual=cause,
            )

    def known(self, where: DocPath, step: str) -> bool:
        if step in self.statuses:
            return True
        self.fail(
            where,
            f"flow '{self.record.run.flow_id}' has no step '{step}' "
            f"(its steps: {', '.join(sorted(self.statuses)) or 'none'})",
        )
        return False

    def step(self, step: str, expected: str) -> None:
        if not self.known(("steps", step), step):
            return
        actual = self.statuses[step]
        if actual != expected:
            ended = self.record.of_step(step, "step_completed", "step_failed", "step_skipped")
            events = self.record.of_step(step)
            self.fail(
                ("steps", step),
                f"step '{step}' is {actual}, expected {expected}",
                detail=_versus(expected, actual),
                evidence=tuple((ended or events)[-1:]),
                expected=expected,
                actual=actual,
            )

    def order(self, exact: list[str] | None, subsequence: list[str] | None) -> None:
        completions = self.record.of_type("step_completed")
        actual = [str(e.kind.field("step_id")) for e in completions]
        if exact is not None and exact != actual:
            self.fail(
                ("order", "exact"),
                "the steps completed in another order",
                detail=_diff(exact, actual),
                evidence=tuple(completions),
                expected=exact,
                actual=actual,
            )
        if subsequence is not None:
            missing = _first_missing(subsequence, actual)
            if missing is not None:
                self.fail(
                    ("order", "subsequence"),
                    f"no completion of '{subsequence[missing]}'"
                    + (f" after '{subsequence[missing - 1]}'" if missing else ""),
                    detail=_versus(subsequence, actual),
                    evidence=tuple(completions),
                    expected=subsequence,
                    actual=actual,
                )

    def count(self, where: DocPath, step: str, expected: int, *, retries: bool) -> None:
        if not self.known(where, step):
            return
        events = self.record.retries(step) if retries else self.record.dispatches(step)
        if len(events) != expected:
            verb = "retried" if retries else "dispatched"
            self.fail(
                where,
                f"step '{step}' was {verb} {_times(len(events))}, expected {expected}",
                detail=_versus(expected, len(events)),
                evidence=tuple(events),
                expected=expected,
                actual=len(events),
            )

    def events(
        self, exact: list[str] | None, subsequence: list[str] | None, never: list[str] | None
    ) -> None:
        events = self.record.events
        actual = [e.kind.type for e in events]
        if exact is not None and exact != actual:
            self.fail(
                ("events", "exact"),
                "the run's events differ",
                detail=_diff(exact, actual),
                expected=exact,
                actual=actual,
            )
        if subsequence is not None:
            missing = _first_missing(subsequence, actual, glob=True)
            if missing is not None:
                self.fail(
                    ("events", "subsequence"),
                    f"no '{subsequence[missing]}' event"
                    + (f" after '{subsequence[missing - 1]}'" if missing else ""),
                    detail=_versus(subsequence, actual),
                    expected=subsequence,
                    actual=actual,
                )
        for index, pattern in enumerate(never or []):
            found = [e for e in events if fnmatch.fnmatchcase(e.kind.type, pattern)]
            if found:
                self.fail(
                    ("events", "never", index),
                    f"the run has {len(found)} '{pattern}' event{'' if len(found) == 1 else 's'}",
                    evidence=tuple(found),
                    expected=[],
                    actual=[e.kind.type for e in found],
                )

    # --- outputs --------------------------------------------------------------------------

    def output(self, index: int, check: OutputAssertion) -> None:
        operand = "values" if check.op == "in" else "value" if check.value is not None else "path"
        where: DocPath = ("output", index, operand)
        path = check.path
        resolution = resolve(path, self.context)
        evidence = self.proof(path)
        present = not isinstance(resolution, Absent | Fault)
        value = None if isinstance(resolution, Absent | Fault) else resolution.value
        if check.op == "absent":
            if present:
                self.fail(
                    where,
                    f"{path} is present: {shown(value)}",
                    evidence=evidence,
                    expected=None,
                    actual=value,
                )
            return
        if not present:
            why = resolution.detail if isinstance(resolution, Fault) else "no such output"
            self.fail(where, f"{path} is absent ({why})", evidence=evidence)
            return
        problem = self.judge(check, index, value)
        if problem is not None:
            message, detail, update = problem
            self.fail(
                where,
                f"{path} {message}",
                detail=detail,
                evidence=evidence,
                expected=check.values if check.op == "in" else check.value,
                actual=value,
                update=update,
            )

    def judge(
        self, check: OutputAssertion, index: int, value: Any
    ) -> tuple[str, tuple[str, ...], Any] | None:
        """Why ``value`` fails ``check`` (message, detail, the value ``--update`` would write),
        or None when it passes."""
        op = check.op
        if op == "exists":
            return None
        if op == "matches":
            return _matches(str(check.value), value)
        if op == "schema":
            errors = sorted(
                schema_validator(self.schemas[index]).iter_errors(value), key=lambda e: e.path
            )
            if not errors:
                return None
            first = errors[0]
            at = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.path)
            return (f"does not match the schema: {first.message} (at value{at})", (), None)
        condition = _condition(check)
        try:
            passed = evaluate(condition, self.context)
        except ConditionError as exc:
            return (f"cannot be compared: {exc.detail}", (), None)
        if op == "ne":
            passed = not passed
        if passed:
            return None
        if op == "eq":
            return (
                f"is {shown(value)}, expected {shown(check.value)}",
                _versus(check.value, value),
                value if _tomlable(value) else None,
            )
        if op == "in":
            return (f"is {shown(value)}, expected one of {shown(check.values)}", (), None)
        return (f"is {shown(value)}, expected {op} {shown(check.value)}", (), None)

    def proof(self, path: str) -> tuple[MobEvent, ...]:
        """The events that show where a path's value came from: the step's last completion
        (or its last event), the run's start for params."""
        reference = parse_reference(path)
        if isinstance(reference, StepRef | LoopRef):
            step = reference.step_id
            done = self.record.of_step(step, "step_completed", "step_target_completed")
            return tuple((done or self.record.of_step(step))[-1:])
        return tuple(self.record.of_type("flow_started")[:1])


def _condition(check: OutputAssertion) -> Condition:
    if check.op == "in":
        return InCondition(op="in", path=check.path, values=list(check.values or []))
    if check.op == "gt":
        return GtCondition(op="gt", path=check.path, value=check.value)
    if check.op == "lt":
        return LtCondition(op="lt", path=check.path, value=check.value)
    return EqCondition(op="eq", path=check.path, value=check.value)  # eq, and ne negated


def _matches(pattern: str, value: Any) -> tuple[str, tuple[str, ...], Any] | None:
    if not isinstance(value, str):
        return (f"is {shown(value)}, not text to match /{pattern}/", (), None)
    try:
        found = regex.search(pattern, value, timeout=MATCH_SECONDS)
    except TimeoutError:
        return (f"took longer than {MATCH_SECONDS:g}s to match /{pattern}/", (), None)
    if found is None:
        return (f"is {shown(value)}, which does not match /{pattern}/", (), None)
    return None


def _first_missing(wanted: list[str], actual: list[str], *, glob: bool = False) -> int | None:
    """The index of the first item of ``wanted`` not found in order in ``actual``."""
    position = 0
    for index, item in enumerate(wanted):
        while position < len(actual) and not (
            fnmatch.fnmatchcase(actual[position], item) if glob else actual[position] == item
        ):
            position += 1
        if position == len(actual):
            return index
        position += 1
    return None


def _tomlable(value: Any) -> bool:
    """TOML holds no null and no non-finite float: such a value cannot be written back."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return False
    if isinstance(value, dict):
        return all(_tomlable(v) for v in value.values())
    if isinstance(value, list):
        return all(_tomlable(v) for v in value)
    return True
