"""`--help` reads well and the command line follows one set of conventions (issue 13 items 7
and 10): no short flag means two things, help is reflowed prose with uppercase metavars and no
Python types, and a command line that does not parse is an `error[usage]` like any other."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from mobctl.cli.app import app
from mobctl.cli.help import Command, Group
from tests.conftest import mobctl_process

METAVAR = re.compile(r"[A-Z][A-Z0-9_]*(?:[\[\]|,:=@.]+[A-Z0-9_]*)*\]?(?:\.\.\.)?")


def commands() -> Iterator[tuple[list[str], Any]]:
    """Every command and group of mobctl with its path (``["runs", "list"]``)."""
    root = typer.main.get_command(app)
    pending: list[tuple[list[str], Any]] = [([], root)]
    while pending:
        path, command = pending.pop()
        yield path, command
        if isinstance(command, TyperGroup):
            pending += [([*path, name], sub) for name, sub in command.commands.items()]


COMMANDS = sorted(" ".join(path) for path, _ in commands())


def help_page(path: str, width: int = 80) -> str:
    runner = CliRunner()
    args = [*path.split(), "--help"]
    result = runner.invoke(app, args, terminal_width=width, max_content_width=width)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_is_a_mobctl_command_or_group() -> None:
    for path, command in commands():
        assert isinstance(command, Group if isinstance(command, TyperGroup) else Command), path


def test_no_short_flag_means_two_things() -> None:
    meanings: dict[str, list[set[str]]] = {}
    for path, command in commands():
        for param in command.params:
            if not isinstance(param, TyperOption):
                continue
            names = [*param.opts, *param.secondary_opts]
            longs = {name for name in names if name.startswith("--")}
            for short in (name for name in names if not name.startswith("--")):
                assert longs, f"{short} of `mobctl {' '.join(path)}` has no long form"
                meanings.setdefault(short, []).append(longs)
    for short, uses in meanings.items():
        assert set.intersection(*uses), f"{short} means {uses}"
    assert {short: sorted(set.intersection(*uses)) for short, uses in meanings.items()} == {
        "-V": ["--version"],
        "-f": ["--follow"],
        "-o": ["--output"],
        "-p": ["--param"],
        "-P": ["--param-json"],
        "-L": ["--limit"],
        "-y": ["--yes"],
        "-r": ["--expect-revision"],
        "-j": ["--jobs"],
        "-k": ["--keyword"],
    }


def test_every_value_has_an_uppercase_metavar_and_no_python_type() -> None:
    for path, command in commands():
        for param in command.params:
            if isinstance(param, TyperOption) and param.is_flag:
                continue
            assert isinstance(param, TyperArgument | TyperOption)
            assert METAVAR.fullmatch(str(param.metavar)), (path, param.name, param.metavar)


@pytest.mark.parametrize("path", COMMANDS)
def test_help_page_at_80_columns(path: str) -> None:
    page = help_page(path)
    assert re.search(r"<[a-z]", page) is None, page  # <str>, <bool>, <list[str]>, <int range>
    assert "x>=" not in page and "╭" not in page and "│" not in page
    for line in page.splitlines():
        assert len(line) <= 80, line
    usage = page.splitlines()[0]
    assert usage.startswith(f"Usage: mobctl {path}".rstrip())
    assert not re.search(r"[{}]|\b[a-z_]+\b(?![-.])", usage.split(path, 1)[-1] if path else ""), (
        usage
    )
    if "Commands:" in page:  # each command's summary fits: never cut with "..."
        rows = page.split("Commands:\n", 1)[1].splitlines()
        assert not [row for row in rows if row.endswith("...")], rows


@pytest.mark.parametrize("path", COMMANDS)
def test_help_prose_is_reflowed_not_hard_wrapped(path: str) -> None:
    """On a wide terminal each paragraph of prose is one line: the docstring's line breaks
    never show. Indented blocks (examples) keep their lines."""
    page = help_page(path, width=1000)
    description = re.split(r"\n(?:Arguments|Options|Commands):\n", page)[0]
    for paragraph in description.split("\n\n")[1:]:
        lines = paragraph.splitlines()
        if lines and not lines[0].startswith("    "):
            assert len(lines) == 1, paragraph


def test_a_docstring_example_keeps_its_lines() -> None:
    page = help_page("runs list")
    assert (
        "  Examples:\n\n"
        "    mobctl runs list\n\n"
        "    mobctl runs list code-review --status failed,orphaned\n\n"
        "    mobctl runs list code-review --flow main --limit 0 -o json\n"
    ) in page
    assert "  -o, --output FORMAT       text, json, yaml, wide or name.  [default: text]\n" in page
    assert "  --lock-timeout DURATION   How long to wait for a store lock held by another\n" in page


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ["runs", "list", "--bogus"],
            "error[usage]: no such option: --bogus\n"
            "hint: usage: mobctl runs list [OPTIONS] [MOB] (--help explains)\n",
        ),
        (
            ["events", "tail", "review", "--folow"],
            "error[usage]: no such option: --folow\nhint: did you mean --follow?\n",
        ),
        (
            ["runs", "show", "review"],
            "error[usage]: missing argument 'RUN'\n"
            "hint: usage: mobctl runs show [OPTIONS] MOB RUN (--help explains)\n",
        ),
        (
            ["members", "spawn", "review", "writer", "--count", "x"],
            "error[usage]: invalid value for '--count': Input should be a valid integer, unable "
            "to parse string as an integer\n"
            "hint: usage: mobctl members spawn [OPTIONS] MOB PROFILE (--help explains)\n",
        ),
        (
            ["runs", "lst"],
            "error[usage]: no such command 'lst'\nhint: did you mean 'list'?\n",
        ),
        (
            ["nope"],
            "error[usage]: no such command 'nope'\n"
            "hint: the commands are: validate, schema, graph, convert, register, store, specs, "
            "profiles, run, runs, members, events, supervisor, completion, test\n",
        ),
        (
            ["events", "tail", "review", "--run"],
            "error[usage]: option '--run' requires an argument\n"
            "hint: usage: mobctl events tail [OPTIONS] MOB (--help explains)\n",
        ),
        (
            ["validate", "mob.toml", "-f", "github"],
            "error[usage]: no such option: -f\n"
            "hint: usage: mobctl validate [OPTIONS] PATH... (--help explains)\n",
        ),
        (
            ["runs", "list", "-o", "xml"],
            "error[usage]: -o/--output 'xml' is not an output format of this command\n"
            "hint: use text, json, yaml, wide or name\n",
        ),
        (
            ["runs", "list", "--json", "-o", "yaml"],
            "error[usage]: --json and -o yaml ask for two formats\nhint: give one\n",
        ),
    ],
)
def test_usage_errors_are_error_usage_lines(args: list[str], stderr: str) -> None:
    result = mobctl_process(*args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", stderr)


def test_a_control_character_in_a_bad_option_is_escaped() -> None:
    result = mobctl_process("runs", "list", "--\x1b[2J")
    assert (result.returncode, result.stderr.splitlines()[0]) == (
        2,
        "error[usage]: no such option: --\\u001b[2J",
    )


def test_a_group_without_a_command_shows_its_help() -> None:
    result = mobctl_process("runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("Usage: mobctl runs [OPTIONS] COMMAND [ARGS]...\n")
    assert "  list     List runs, newest first: those of MOB, or of every mob.\n" in result.stderr
