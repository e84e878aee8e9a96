"""Commands over definition files alone: validate, schema, graph, convert."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Literal

import typer

from mobctl.cli.common import allow_path_option
from mobctl.cli.completion import complete_flow, complete_from
from mobctl.cli.help import App
from mobctl.cli.terminal import printable, say
from mobctl.errors import ExitCode, UsageError

commands = App()  # gathered by mobctl.cli.app


class DiagnosticFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


CONVERSIONS: dict[str, Literal["json", "toml"]] = {"json": "json", "toml": "toml"}


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"


@commands.command()
def validate(
    paths: list[str] = typer.Argument(
        ..., metavar="PATH...", help="Definition files, directories or globs."
    ),
    output_format: DiagnosticFormat = typer.Option(
        DiagnosticFormat.text,
        "-o",
        "--output",
        "--format",
        metavar="FORMAT",
        help="text, json, sarif or github.",
    ),
    strict: bool = typer.Option(False, "--strict", help="Treat every warning as an error."),
    catalog: Path | None = typer.Option(
        None, "--catalog", metavar="FILE", help="Model catalogue JSON replacing the bundled one."
    ),
    allow_path: list[Path] = allow_path_option(),
    definitions_only: bool = typer.Option(
        False,
        "--definitions-only",
        help="Skip files named that are not definitions (fixtures, test suites), as under a "
        "directory: for a pre-commit hook, which names every *.toml.",
    ),
) -> None:
    """Validate mob definitions (TOML or Meerkat JSON).

    Each diagnostic is located (file:line:column) and has a stable code.

    Exit 0 when no file has an error (warnings allowed), 1 when any has (or any warning
    under --strict), 2 on usage errors such as a path that does not exist. Path skills and
    schema files must lie inside the definition's directory unless --allow-path trusts
    another one.

    Examples:

      mobctl validate sample-mobs/minimal.toml

      mobctl validate sample-mobs/*.toml -o github --strict

      mobctl validate 'sample-mobs/**/*.toml' -o sarif > mobctl.sarif   # exit 1

      mobctl validate sample-mobs/code-review.toml --allow-path sample-mobs/skills
    """
    from mobctl import api
    from mobctl.cli import diagnostics_output

    run = api.validate(
        paths,
        strict=strict,
        catalog=catalog,
        allow_paths=allow_path,
        definitions_only=definitions_only,
    )
    for link in run.skipped_links:
        say(
            f"warning: skipped '{link}': a symbolic link found under a directory or by a glob "
            "is never followed (name it to validate it)",
            err=True,
        )
    diagnostics_output.render(run, output_format.value)
    raise typer.Exit(int(ExitCode.INVALID if run.errors else ExitCode.OK))


@commands.command()
def schema() -> None:
    """Print the JSON Schema of the definition format.

    Editors use it to complete and check mob files.

    Example (Taplo / Even Better TOML): save it and put this first line in a mob file:

      mobctl schema > mob.schema.json

      #:schema ./mob.schema.json
    """
    from mobctl import api

    sys.stdout.write(json.dumps(api.definition_schema(), indent=2) + "\n")


@commands.command()
def graph(
    file: Path = typer.Argument(..., metavar="FILE", help="A definition file."),
    flow: str | None = typer.Option(
        None,
        "--flow",
        metavar="FLOW",
        help="Flow to draw (default: main, else the only flow).",
        autocompletion=complete_flow,
    ),
    output_format: GraphFormat = typer.Option(
        GraphFormat.mermaid,
        "-o",
        "--output",
        "--format",
        metavar="FORMAT",
        help="mermaid or dot.",
    ),
) -> None:
    """Draw a flow as a Mermaid or Graphviz graph.

    Steps, dependencies (dashed for depends_on_mode = any), branch groups and loops as
    subgraphs, conditions as edge labels.

    Examples:

      mobctl graph sample-mobs/code-review.toml --flow main

      mobctl graph sample-mobs/code-review.toml -o dot | dot -Tsvg > main.svg
    """
    from mobctl import api

    sys.stdout.write(printable(api.graph(file, flow, output_format.value), keep_newlines=True))


@commands.command()
def convert(
    file: Path = typer.Argument(..., metavar="FILE", help="A definition file (.toml or .json)."),
    to: str | None = typer.Option(
        None,
        "-o",
        "--output",
        "--to",
        metavar="FORMAT",
        help="json (Meerkat's form) or toml (default: the other format than FILE's).",
        autocompletion=complete_from(("json", "toml")),
    ),
    out_file: Path | None = typer.Option(
        None, "--out-file", metavar="PATH", help="Write to PATH instead of stdout."
    ),
) -> None:
    """Convert a definition between TOML and Meerkat's JSON form.

    Both directions are lossless.

    Examples:

      mobctl convert sample-mobs/minimal.toml -o json --out-file definition.json

      mobctl convert definition.json -o toml
    """
    from mobctl import api
    from mobctl.definition.loader import detect_format

    chosen = to or ("toml" if detect_format(file) == "json" else "json")
    target = CONVERSIONS.get(chosen)
    if target is None:
        raise UsageError(
            f"-o/--output {printable(chosen)!r} is not json or toml",
            hint="-o picks the format; --out-file PATH writes to a file",
        )
    text = api.convert(file, target)
    if out_file is None:  # the same document: JSON and TOML strings read escapes back
        sys.stdout.write(printable(text, keep_newlines=True))
    else:
        write_output(out_file, text)
        say(f"wrote {out_file}", err=True)


def write_output(path: Path, text: str) -> None:
    """Write a command's output file; a bad path is a usage error, not a crash."""
    from mobctl.errors import OutputError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
