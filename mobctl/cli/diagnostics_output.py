"""Diagnostics for people (text) and machines (JSON, SARIF 2.1.0, GitHub annotations)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mobctl import __version__
from mobctl.api.definitions import ValidationRun
from mobctl.cli.terminal import printable
from mobctl.diagnostics import CODES, Diagnostic

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(run: ValidationRun, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(as_json(run), indent=2) + "\n")
    elif fmt == "sarif":
        sys.stdout.write(json.dumps(as_sarif(run), indent=2) + "\n")
    elif fmt == "github":
        sys.stdout.write("".join(github_line(d) + "\n" for d in run.diagnostics))
    else:
        _text(run)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary(run: ValidationRun) -> str:
    return (
        f"{_plural(run.errors, 'error')}, {_plural(run.warnings, 'warning')} "
        f"in {_plural(len(run.reports), 'file')}"
    )


def text_line(diag: Diagnostic) -> str:
    """The diagnostic as one line, control characters escaped (a message may quote the file)."""
    where = diag.file or "-"
    if diag.line is not None:
        where += f":{diag.line}:{diag.column}"
    location = f" {diag.location}" if diag.location else ""
    return printable(f"{where}: {diag.severity.value}[{diag.code}]{location}: {diag.message}")


def _text(run: ValidationRun) -> None:
    console = _console(stderr=False)
    sources = {r.path: r.loaded.text.splitlines() for r in run.reports if r.loaded.text}
    _write_text(console, run.diagnostics, sources)
    console.print(summary(run))


def text_to_stderr(diagnostics: list[Diagnostic], source_text: str = "") -> None:
    """Diagnostics as ``validate`` writes them (a hint line each, and on a terminal the source
    line with a caret), on stderr: the warnings of ``register`` and ``run FILE``, and the
    diagnostics of a definition they refuse. ``source_text``: the file as it was read."""
    lines = source_text.splitlines()
    sources = {d.file: lines for d in diagnostics if d.file}
    _write_text(_console(stderr=True), diagnostics, sources)


def _console(*, stderr: bool) -> Any:
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))  # https://no-color.org: set and not empty
    return Console(
        stderr=stderr, soft_wrap=True, highlight=False, color_system=None if plain else "auto"
    )


def _write_text(console: Any, diagnostics: list[Diagnostic], sources: dict[str, list[str]]) -> None:
    from rich.markup import escape

    show_source = console.is_terminal
    for diag in diagnostics:
        colour = "red" if diag.severity == "error" else "yellow"
        line = escape(text_line(diag))
        head = escape(f"{diag.severity.value}[{diag.code}]")
        console.print(line.replace(head, f"[bold {colour}]{head}[/]", 1))
        if show_source and diag.file and diag.line is not None and diag.column is not None:
            source = _source_line(sources, diag.file, diag.line)
            if source is not None:  # escaped as shown, so the caret stays under its column
                prefix = " " * len(printable(source[: diag.column - 1]))
                console.print(f"  {escape(printable(source))}")
                console.print(f"  {prefix}[bold {colour}]^[/]")
        if diag.hint:
            console.print(f"  [dim]hint: {escape(printable(diag.hint))}[/]")


def _source_line(sources: dict[str, list[str]], file: str, line: int) -> str | None:
    """The line as it was read and validated: the file is not read again."""
    lines = sources.get(file, [])
    return lines[line - 1] if 0 < line <= len(lines) else None


def diagnostic_record(diag: Diagnostic) -> dict[str, Any]:
    """A diagnostic as a JSON object (`validate --format json`, `test -o json`)."""
    return {
        "code": diag.code,
        "severity": diag.severity.value,
        "message": diag.message,
        "location": diag.location,
        "file": diag.file,
        "line": diag.line,
        "column": diag.column,
        "end_line": diag.end_line,
        "end_column": diag.end_column,
        "suggestion": diag.suggestion,
        "hint": diag.hint,
    }


def as_json(run: ValidationRun) -> dict[str, Any]:
    return {
        "version": 1,
        "files": [
            {
                "path": report.path,
                "valid": report.valid,
                "diagnostics": [diagnostic_record(d) for d in report.diagnostics],
            }
            for report in run.reports
        ],
        "summary": {"files": len(run.reports), "errors": run.errors, "warnings": run.warnings},
    }


def as_sarif(run: ValidationRun) -> dict[str, Any]:
    diagnostics = run.diagnostics
    codes = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    rules = [
        {
            "id": code,
            "name": "".join(part.title() for part in code.split("_")),
            "shortDescription": {"text": CODES[code][1]},
            "defaultConfiguration": {"level": CODES[code][0].value},
            "helpUri": "https://github.com/mobctl/mobctl#diagnostic-codes",
        }
        for code in codes
    ]
    results = []
    for diag in diagnostics:
        region: dict[str, int] = {"startLine": diag.line or 1, "startColumn": diag.column or 1}
        if diag.end_line is not None and diag.end_column is not None:
            region |= {"endLine": diag.end_line, "endColumn": diag.end_column}
        location: dict[str, Any] = {
            "physicalLocation": {"artifactLocation": _artifact(diag.file or ""), "region": region}
        }
        if diag.location:
            location["logicalLocations"] = [{"fullyQualifiedName": diag.location}]
        results.append(
            {
                "ruleId": diag.code,
                "ruleIndex": index[diag.code],
                "level": diag.severity.value,
                "message": {"text": diag.message},
                "locations": [location],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mobctl",
                        "version": __version__,
                        "informationUri": "https://github.com/mobctl/mobctl",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri().rstrip("/") + "/"}},
                "results": results,
            }
        ],
    }


SRCROOT = "%SRCROOT%"


def _artifact(file: str) -> dict[str, str]:
    """A file as SARIF names it: a URI relative to ``%SRCROOT%`` (the working directory,
    where CI checks the repository out), so code scanning maps it to the repository; a file
    outside it keeps its absolute ``file:`` URI."""
    path = Path(file)
    try:
        relative = (path if not path.is_absolute() else path.relative_to(Path.cwd())).as_posix()
    except ValueError:
        return {"uri": path.as_uri()}
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if ".." in parts:
        return {"uri": path.resolve().as_uri()}
    return {"uri": quote("/".join(parts)), "uriBaseId": SRCROOT}


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub Actions reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``file=``, ``title=``), escaped."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(diag: Diagnostic) -> str:
    """A GitHub Actions workflow command that annotates the file."""
    properties = [f"file={escape_property(printable(diag.file or ''))}"]
    if diag.line is not None:
        properties += [f"line={diag.line}", f"col={diag.column}"]
    properties.append(f"title={escape_property(diag.code)}")
    message = f"{diag.location}: {diag.message}" if diag.location else diag.message
    message = printable(message, keep_newlines=True)
    return f"::{diag.severity.value} {','.join(properties)}::{escape_data(message)}"
