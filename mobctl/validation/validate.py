"""Validate one definition: load (phases 1-2), then the semantic rules (phase 3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mobctl.definition.files import DefinitionFiles
from mobctl.definition.loader import Format, LoadResult, load_bytes, load_file, locate
from mobctl.definition.model import MobDefinition
from mobctl.diagnostics import Diagnostic, Severity
from mobctl.validation.catalog import Catalog
from mobctl.validation.definition_rules import check_definition
from mobctl.validation.file_rules import check_files
from mobctl.validation.flow_rules import check_flows
from mobctl.validation.reference_rules import check_references


@dataclass(frozen=True)
class Report:
    """Everything validation says about one file."""

    path: str
    diagnostics: list[Diagnostic]
    definition: MobDefinition | None
    loaded: LoadResult

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)

    @property
    def valid(self) -> bool:
        return self.errors == 0


def validate_path(
    path: Path,
    catalog: Catalog,
    *,
    strict: bool = False,
    display: str | None = None,
    allowed_roots: tuple[Path, ...] = (),
) -> Report:
    """``allowed_roots``: directories besides the definition's own that its paths may name."""
    return _report(load_file(path, display), catalog, strict, allowed_roots)


def validate_bytes(
    data: bytes,
    fmt: Format,
    display: str,
    base_dir: Path,
    catalog: Catalog,
    *,
    strict: bool = False,
) -> Report:
    return _report(load_bytes(data, fmt, display, base_dir), catalog, strict, ())


def semantic_diagnostics(
    definition: MobDefinition, catalog: Catalog, files: DefinitionFiles
) -> list[Diagnostic]:
    """Phase 3: Meerkat's rules in Meerkat's order, then mobctl's."""
    return (
        check_definition(definition, catalog)
        + check_flows(definition)
        + check_references(definition)
        + check_files(definition, files)
    )


def _report(
    loaded: LoadResult, catalog: Catalog, strict: bool, allowed_roots: tuple[Path, ...]
) -> Report:
    diagnostics = loaded.diagnostics
    if loaded.definition is not None and loaded.document is not None:
        files = DefinitionFiles(loaded.document.base_dir, allowed_roots)
        found = semantic_diagnostics(loaded.definition, catalog, files)
        diagnostics = diagnostics + locate(found, loaded.document)
    if strict:
        diagnostics = [d.as_error() for d in diagnostics]
    return Report(loaded.display, _ordered(diagnostics), loaded.definition, loaded)


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    unique: dict[tuple[str, str | None, str], Diagnostic] = {}
    for diag in diagnostics:
        unique.setdefault((diag.code, diag.location, diag.message), diag)
    return sorted(
        unique.values(),
        key=lambda d: (d.file or "", d.line or 0, d.column or 0, d.code, d.location or ""),
    )
