"""Small helpers for rule tests: validate a TOML string and list its diagnostics."""

from __future__ import annotations

from pathlib import Path

from mobctl.validation.catalog import bundled_catalog
from mobctl.validation.validate import validate_bytes

HEAD = """[mob]
id = "t"

[profiles.worker]
model = "claude-sonnet-4-6"
"""


def diagnose(
    text: str, *, fmt: str = "toml", base_dir: Path | None = None, strict: bool = False
) -> list[str]:
    """``code location line:col`` for every diagnostic, in output order."""
    report = validate_bytes(
        text.encode(),
        fmt,
        "t." + fmt,
        base_dir or Path("/nonexistent"),
        bundled_catalog(),
        strict=strict,  # type: ignore[arg-type]
    )
    return [f"{d.code} {d.location} {d.line}:{d.column}" for d in report.diagnostics]


def messages(text: str, *, fmt: str = "toml", base_dir: Path | None = None) -> list[str]:
    report = validate_bytes(
        text.encode(),
        fmt,
        "t." + fmt,
        base_dir or Path("/nonexistent"),
        bundled_catalog(),  # type: ignore[arg-type]
    )
    return [d.message for d in report.diagnostics]


def codes(text: str, **kwargs: object) -> list[str]:
    return [row.split()[0] for row in diagnose(text, **kwargs)]  # type: ignore[arg-type]
