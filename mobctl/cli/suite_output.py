"""``mobctl test`` reports: the human report (one line per case; for a failed case each failed
expectation at its ``file:line:col`` with diff-style detail and the events that prove it),
``-o json``, ``--format github`` annotations, and the closing ``N passed, N failed`` line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mobctl.cli.diagnostics_output import (
    diagnostic_record,
    escape_data,
    escape_property,
    text_line,
)
from mobctl.cli.event_output import summary
from mobctl.cli.terminal import printable
from mobctl.diagnostics import dotted

if TYPE_CHECKING:
    from mobctl.suites.expectations import Failure
    from mobctl.suites.runner import CaseResult
    from mobctl.suites.update import Updated

LABELS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def case_id(result: CaseResult) -> str:
    return f"{result.case.suite.shown}::{result.case.name}"


def _at(result: CaseResult, failure: Failure) -> tuple[int, int]:
    position = result.case.suite.position((*result.case.where, *failure.where))
    return position.line, position.column


def case_lines(result: CaseResult) -> list[str]:
    """The human report of one case."""
    head = f"{LABELS[result.outcome]} {case_id(result)}"
    if result.outcome == "skipped":
        return [printable(f"{head} ({result.case.case.skip})")]
    lines = [printable(head)]
    suite, case = result.case.suite, result.case
    if result.error is not None:
        where = f"{suite.shown}:{case.line}"
        lines.append(printable(f"  {where}: error[{result.error.code}]: {result.error.message}"))
        if result.error.hint:
            lines.append(printable(f"    hint: {result.error.hint}"))
        lines += [f"    {text_line(d)}" for d in result.diagnostics]
    for failure in result.failures:
        line, column = _at(result, failure)
        lines.append(
            printable(
                f"  {suite.shown}:{line}:{column}: {dotted(failure.where)}: {failure.message}"
            )
        )
        lines += [printable(f"    {detail}") for detail in failure.detail]
        lines += [f"    event {summary(event)}" for event in failure.evidence]
    for stale in result.stale:
        lines.append(f"  {suite.shown}:{case.line}: stale cassette:")
        lines += [f"    {printable(text)}" for text in stale.splitlines()]
    return lines


def github_lines(result: CaseResult) -> list[str]:
    """``::error`` workflow commands for a failed case: one per failed expectation, at its
    line in the suite (a case that could not run: at the case)."""
    suite, case = result.case.suite, result.case
    title = escape_property(printable(f"mobctl test: {case.name}"))
    file = escape_property(printable(suite.shown))
    found: list[tuple[int, int, str]] = []
    for failure in result.failures:
        line, column = _at(result, failure)
        found.append((line, column, f"{dotted(failure.where)}: {failure.message}"))
    if result.error is not None:
        found.append((case.line, 1, f"error[{result.error.code}]: {result.error.message}"))
    found += [(case.line, 1, f"stale cassette: {stale}") for stale in result.stale]
    return [
        f"::error file={file},line={line},col={column},title={title}::"
        + escape_data(printable(message, keep_newlines=True))
        for line, column, message in found
    ]


def updated_line(update: Updated) -> str:
    position = update.suite.position(update.where)
    return printable(
        f"updated {update.suite.shown}:{position.line}:{position.column}: "
        f"{dotted(update.where[2:])}"
    )


def counts(results: list[CaseResult]) -> dict[str, int]:
    return {k: sum(r.outcome == k for r in results) for k in ("passed", "failed", "skipped")}


def closing_line(results: list[CaseResult]) -> str:
    """``N passed, N failed`` and, when some were, ``, N skipped``."""
    n = counts(results)
    return f"{n['passed']} passed, {n['failed']} failed" + (
        f", {n['skipped']} skipped" if n["skipped"] else ""
    )


def document(results: list[CaseResult], updates: list[Updated]) -> dict[str, Any]:
    """``-o json``: one document."""
    return {
        "version": 1,
        "cases": [_case(result) for result in results],
        "updated": [
            {"suite": u.suite.shown, "location": dotted(u.where), "value": u.failure.update}
            for u in updates
        ],
        "summary": counts(results),
    }


def _case(result: CaseResult) -> dict[str, Any]:
    error = result.error
    return {
        "suite": result.case.suite.shown,
        "name": result.case.name,
        "line": result.case.line,
        "outcome": result.outcome,
        "skip_reason": result.case.case.skip,
        "duration_ms": round(result.duration_ms, 3),
        "run_id": result.run.run_id if result.run else None,
        "status": result.run.status if result.run else None,
        "cause": result.cause,
        "failures": [_failure(result, f) for f in result.failures],
        "error": None
        if error is None
        else {"code": error.code, "message": error.message, "hint": error.hint},
        "diagnostics": [diagnostic_record(d) for d in result.diagnostics],
        "stale": result.stale,
    }


def _failure(result: CaseResult, failure: Failure) -> dict[str, Any]:
    line, column = _at(result, failure)
    return {
        "expectation": dotted(failure.where),
        "line": line,
        "column": column,
        "message": failure.message,
        "expected": failure.expected,
        "actual": failure.actual,
        "detail": list(failure.detail),
        "evidence": [e.model_dump(mode="json") for e in failure.evidence],
    }
