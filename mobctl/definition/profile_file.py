"""A realm profile file (``mobctl profiles create|update NAME FILE``): one inline profile table
in TOML or JSON, checked as ``validate`` checks a definition's profiles, with every problem
located in the file."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from mobctl.definition.loader import (
    Document,
    Format,
    _nesting_problem,
    _non_finite,
    _parse,
    _syntax,
    _translate,
    _without,
    locate,
)
from mobctl.definition.model import InlineProfile
from mobctl.diagnostics import Diagnostic, Severity


def load_profile(
    text: str, fmt: Format, display: str
) -> tuple[InlineProfile | None, list[Diagnostic]]:
    """The profile (None when it has an error) and every diagnostic, located as ``validate``
    locates them; unknown keys of open tables are warnings, left out of the profile."""
    parsed = _parse(text, fmt, display)
    if isinstance(parsed, Diagnostic):
        return None, [parsed]
    too_deep = _nesting_problem(parsed)
    if too_deep is not None:
        return None, [_syntax(fmt, too_deep, (1, 1), display)]
    document = Document(display, fmt, text, parsed, Path("."))
    non_finite = _non_finite(parsed)
    if non_finite:
        return None, locate(non_finite, document)
    raw, diagnostics = parsed, list[Diagnostic]()
    for _ in range(2):  # the second pass without the unknown keys that are only warnings
        try:
            return InlineProfile.model_validate(raw), _ordered(locate(diagnostics, document))
        except ValidationError as exc:
            found = [_translate(err, raw, InlineProfile) for err in exc.errors()]
            diagnostics += found
            if any(d.severity is Severity.ERROR for d in found):
                break
            raw = _without(raw, [d.path for d in found])
    return None, _ordered(locate(diagnostics, document))


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.line or 0, d.column or 0, d.code))
