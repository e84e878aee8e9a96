"""How a command prints its result: ``-o/--output text|json|yaml|wide|name`` (``--json`` is
``-o json``), as kubectl, gh and argo do.

- ``text``: for people. Lists are aligned columns under a header, ids cut to 8 characters
  (as git shows them), times in a compact local form; control characters escaped.
- ``wide``: the same with whole ids and more columns.
- ``json`` / ``yaml``: one document on stdout, whole ids, times in RFC 3339 UTC.
- ``name``: the ids only, one a line, for scripts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import typer

from mobctl.cli.completion import complete_from
from mobctl.cli.terminal import json_text, printable
from mobctl.errors import UsageError

TEXT, JSON, YAML, WIDE, NAME = "text", "json", "yaml", "wide", "name"
SHORT_ID = 8  # characters of an id in a text table, as git shows a commit


@dataclass(frozen=True)
class Outputs:
    """The output formats one kind of command offers, and its ``-o`` option."""

    formats: tuple[str, ...]

    def option(self) -> Any:
        return typer.Option(
            TEXT,
            "-o",
            "--output",
            metavar="FORMAT",
            help=f"{_either(self.formats)}.",
            autocompletion=complete_from(self.formats),
        )

    def choose(self, output: str, as_json: bool = False) -> str:
        """The format asked for (``--json`` is ``-o json``); a usage error for any other."""
        chosen = output.strip().lower()
        if chosen not in self.formats:
            raise UsageError(
                f"-o/--output {printable(output)!r} is not an output format of this command",
                hint=f"use {_either(self.formats)}",
            )
        if as_json and chosen not in (TEXT, JSON):
            raise UsageError(f"--json and -o {chosen} ask for two formats", hint="give one")
        return JSON if as_json else chosen


LISTING = Outputs((TEXT, JSON, YAML, WIDE, NAME))  # lists and shows of things with ids
NAMED = Outputs((TEXT, JSON, YAML, NAME))  # a result about one thing with an id
REPORT = Outputs((TEXT, JSON, YAML))  # a check or a count


def json_option() -> Any:
    return typer.Option(False, "--json", help="Same as -o json.")


def _either(formats: Sequence[str]) -> str:
    return ", ".join(formats[:-1]) + f" or {formats[-1]}"


# --- documents -------------------------------------------------------------------------------


def structured(document: object, fmt: str) -> bool:
    """Print ``document`` when ``fmt`` is json or yaml (True); else print nothing (False)."""
    if fmt == JSON:
        sys.stdout.write(json_text(document) + "\n")
    elif fmt == YAML:
        sys.stdout.write(yaml_text(document))
    else:
        return False
    return True


def machine(fmt: str, document: object, ids: Sequence[str]) -> bool:
    """Print ``document`` (json, yaml) or ``ids`` (name) and say True; False for text and
    wide, which the command prints itself."""
    if structured(document, fmt):
        return True
    if fmt == NAME:
        names(ids)
        return True
    return False


def yaml_text(document: object, *, start: bool = False) -> str:
    """``document`` as YAML (block style, keys in order, ``---`` first with ``start``).

    A string holding a character a terminal would act on is written double-quoted, where YAML
    reads the escape back (``\\u001b``, ``\\u202e``): the document stays the same document."""
    import yaml

    text: str = yaml.dump(
        document,
        Dumper=_dumper(),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=sys.maxsize,  # a long string stays on one line
        explicit_start=start,
    )
    return printable(text, keep_newlines=True)


def _dumper() -> Any:
    import yaml

    from mobctl.cli.terminal import has_control

    class Dumper(yaml.SafeDumper):
        pass

    def string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = '"' if has_control(value) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, string)
    return Dumper


# --- tables ----------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "") -> None:
    """Aligned columns under a header, two spaces apart; every cell escaped, none cut."""
    from rich.cells import cell_len

    lines = [[printable(str(cell)) for cell in row] for row in [header, *rows]]
    widths = [max(cell_len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = [
            cell + " " * (width - cell_len(cell)) for cell, width in zip(line, widths, strict=True)
        ]
        sys.stdout.write((indent + "  ".join(cells)).rstrip() + "\n")


def names(ids: Sequence[str]) -> None:
    """``-o name``: one id a line."""
    sys.stdout.write("".join(printable(name) + "\n" for name in ids))


@dataclass(frozen=True)
class Column:
    """A column of a listing: its header, its cell, and whether only ``wide`` shows it."""

    header: str
    cell: Callable[[Any], object]
    wide_only: bool = False


def listing(
    fmt: str,
    items: Sequence[Any],
    *,
    columns: Sequence[Column],
    document: Callable[[Any], object],
    name: Callable[[Any], str],
    empty: str,
) -> None:
    """A list command's output: a table (``empty`` on stderr when there is nothing), the
    documents, or the ids."""
    if machine(fmt, [document(item) for item in items], [name(item) for item in items]):
        return
    if not items:
        sys.stderr.write(printable(empty) + "\n")
    else:
        shown = [c for c in columns if fmt == WIDE or not c.wide_only]
        table([c.header for c in shown], [[c.cell(item) for c in shown] for item in items])


# --- ids, times, durations -------------------------------------------------------------------


def short(identifier: str, fmt: str = TEXT) -> str:
    """An id as a text table shows it: its first 8 characters (whole in ``wide``)."""
    return identifier if fmt == WIDE else identifier[:SHORT_ID]


def local_time(stamp: str | None, *, clock: bool = False) -> str:
    """An RFC 3339 time as tables show it, in local time: ``2026-05-01 14:00:03`` (with
    ``clock``, only ``14:00:03``); ``-`` for none."""
    if stamp is None:
        return "-"
    from mobctl.clock import parse_timestamp

    try:
        moment: datetime = parse_timestamp(stamp).astimezone()
    except (ValueError, OverflowError):
        return stamp  # not a time: shown as stored (escaped by the table)
    return moment.strftime("%H:%M:%S" if clock else "%Y-%m-%d %H:%M:%S")


def duration(ms: int | None) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``2h07m`` (``-`` for none)."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    if ms < 3_600_000:
        return f"{ms // 60_000}m{ms // 1000 % 60:02d}s"
    return f"{ms // 3_600_000}h{ms // 60_000 % 60:02d}m"
