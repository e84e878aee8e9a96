"""The upstream Meerkat corpus produces exactly what its EXPECTED.md lists."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import CORPUS, cli, needs_corpus

pytestmark = needs_corpus


def _expected_rows() -> list[tuple[str, int, int, set[str], set[str]]]:
    rows: list[tuple[str, int, int, set[str], set[str]]] = []
    if not (CORPUS / "EXPECTED.md").is_file():
        return rows  # the module is skipped
    for line in (CORPUS / "EXPECTED.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].endswith(".toml"):
            continue
        name, code, strict_code, errors, warnings = cells

        def parse(cell: str) -> set[str]:
            return set() if cell == "—" else {part.strip() for part in cell.split(";")}

        rows.append((name, int(code), int(strict_code), parse(errors), parse(warnings)))
    return rows


ROWS = _expected_rows()


def test_expected_table_is_read() -> None:
    assert len(ROWS) == 14


@pytest.mark.parametrize(
    ("name", "code", "strict_code", "errors", "warnings"), ROWS, ids=[r[0] for r in ROWS]
)
def test_corpus_file(
    name: str, code: int, strict_code: int, errors: set[str], warnings: set[str]
) -> None:
    result = cli("validate", CORPUS / name, "--format", "json")
    assert result.exit_code == code, result.stdout + result.stderr
    diagnostics = json.loads(result.stdout)["files"][0]["diagnostics"]

    def rows(severity: str) -> set[str]:
        return {
            f"{d['code']} {d['location']} {d['line']}:{d['column']}"
            for d in diagnostics
            if d["severity"] == severity
        }

    assert rows("error") == errors
    assert rows("warning") == warnings
    strict = cli("validate", CORPUS / name, "--strict")
    assert strict.exit_code == strict_code


def test_corpus_directory_at_once() -> None:
    result = cli("validate", CORPUS, "--format", "json")
    document = json.loads(result.stdout)
    assert document["summary"]["files"] == 14
    assert result.exit_code == 1
    assert re.search(r"\d+ errors?", cli("validate", CORPUS).stdout)
