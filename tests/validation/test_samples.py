"""Every bundled sample validates cleanly; every invalid sample yields exactly what it declares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, cli

VALID = sorted(SAMPLES.glob("*.toml"))
INVALID = sorted(p for p in (SAMPLES / "invalid").iterdir() if p.suffix in (".toml", ".json"))


def _declared(path: Path) -> set[str]:
    source = path.with_name(path.name + ".expect") if path.suffix == ".json" else path
    return {
        line.removeprefix("# expect:").strip()
        for line in source.read_text().splitlines()
        if line.startswith("# expect:")
    }


def test_there_are_enough_samples() -> None:
    assert len(VALID) >= 6


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_sample_is_clean_even_strict(path: Path) -> None:
    result = cli("validate", path, "--strict")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip() == "0 errors, 0 warnings in 1 file"


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_sample_yields_declared_diagnostics(path: Path) -> None:
    declared = _declared(path)
    assert declared, f"{path.name} declares no expected diagnostics"
    result = cli("validate", path, "--format", "json")
    diagnostics = json.loads(result.stdout)["files"][0]["diagnostics"]
    produced = {
        f"{d['code']} {d['location'] or '-'} {d['line']}:{d['column']}" for d in diagnostics
    }
    assert produced == declared
    strict = cli("validate", path, "--strict")
    assert strict.exit_code == 1


def test_every_diagnostic_code_has_an_invalid_sample() -> None:
    from mobctl.diagnostics import CODES

    covered = {line.split()[0] for path in INVALID for line in _declared(path)}
    assert set(CODES) <= covered, sorted(set(CODES) - covered)
    names = {p.name.split(".")[0] for p in INVALID}
    assert set(CODES) <= names
