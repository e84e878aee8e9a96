"""``mobctl test --update``: accept a change on purpose. Each failing ``eq`` output assertion
gets the run's actual value as its ``value``, written with tomlkit, so the suite's comments
and layout survive; nothing else in the file changes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Item

from mobctl.definition.files import read_regular, replace_file
from mobctl.errors import UsageError
from mobctl.suites.expectations import Failure
from mobctl.suites.loading import SuiteFile
from mobctl.suites.runner import CaseResult


@dataclass(frozen=True)
class Updated:
    suite: SuiteFile
    case: int
    failure: Failure

    @property
    def where(self) -> tuple[str | int, ...]:
        return ("case", self.case, *self.failure.where)  # ..., "output", i, "value"


def apply_updates(results: list[CaseResult]) -> tuple[list[CaseResult], list[Updated]]:
    """The results with the failures that were written back removed (a case left with none
    passes), and what was written. A suite that changed on disk since it was read is left
    alone (``UsageError``, nothing written)."""
    chosen = [
        Updated(result.case.suite, result.case.index, failure)
        for result in results
        for failure in result.failures
        if failure.update is not None
    ]
    by_suite: dict[str, list[Updated]] = {}
    for update in chosen:
        by_suite.setdefault(update.suite.shown, []).append(update)
    texts = {}
    for updates in by_suite.values():
        suite = updates[0].suite
        document = tomlkit.parse(suite.text)
        for update in updates:
            _, case, *where = update.where
            table: Any = document["case"][case]
            for part in where[:-1]:
                table = table[part]
            table[where[-1]] = toml_value(update.failure.update)
        texts[suite.path] = (suite, document.as_string())
    for path, (suite, _) in texts.items():
        if _current(path) != suite.text:
            raise UsageError(
                f"{suite.shown} changed since mobctl test read it; nothing was updated",
                hint="run mobctl test --update again",
            )
    for path, (_, text) in texts.items():
        replace_file(path, text)
    updated = {id(u.failure) for u in chosen}
    return [_without(result, updated) for result in results], chosen


def _current(path: Path) -> str | None:
    """The suite's text now; None when it is no longer a readable regular file (deleted,
    replaced by a FIFO or a directory meanwhile)."""
    try:
        return read_regular(path).decode("utf-8", "replace").removeprefix("\ufeff")
    except OSError:
        return None


def _without(result: CaseResult, updated: set[int]) -> CaseResult:
    failures = [f for f in result.failures if id(f) not in updated]
    if len(failures) == len(result.failures):
        return result
    passed = not failures and result.error is None and not result.stale
    return dataclasses.replace(result, failures=failures, outcome="passed" if passed else "failed")


def toml_value(value: Any) -> Item:
    """A JSON value as TOML, tables inline (it sits in an ``[[case.expect.output]]`` table)."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        for key, item in value.items():
            table[key] = toml_value(item)
        return table
    if isinstance(value, list):
        array = tomlkit.array()
        for item in value:
            array.append(toml_value(item))
        return array
    if isinstance(value, str):
        return tomlkit.string(value, multiline="\n" in value and "\r" not in value)
    scalar: Item = tomlkit.item(value)
    return scalar
