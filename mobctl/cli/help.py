"""How every mobctl command explains itself: ``--help`` as plain text that reads well at any
width, with the same conventions everywhere.

- Prose is reflowed to the terminal (at most 80 columns), so a docstring's line breaks never
  show; an indented block (the examples) is kept exactly as written.
- Every value is named by an uppercase metavar (``MOB``, ``FILE``, ``DURATION``): a parameter
  declared without one gets its name in capitals. Flags take none, and no Python type or
  number range is shown as a placeholder.
- Defaults, environment variables and required options are noted after the help text.

:class:`App` is the Typer every command module uses, so that its commands and groups are
:class:`Command` and :class:`Group`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer._click.exceptions import UsageError as ParseError
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

Function = TypeVar("Function", bound=Callable[..., Any])
_KEEP = "\b"  # click: a paragraph that starts with this line is not rewrapped


class App(typer.Typer):
    """A Typer whose commands and groups explain themselves the mobctl way."""

    def __init__(self, **settings: Any) -> None:
        settings.setdefault("cls", Group)
        settings.setdefault("add_completion", False)
        super().__init__(rich_markup_mode=None, **settings)

    def command(self, *args: Any, **settings: Any) -> Callable[[Function], Function]:
        settings.setdefault("cls", Command)
        return super().command(*args, **settings)


def help_text(text: str) -> str:
    """``text`` (a docstring) as click writes help: paragraphs reflowed, and each indented
    block marked to be kept as written."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        f"{_KEEP}\n{paragraph}" if paragraph.startswith(" ") else paragraph
        for paragraph in paragraphs
    )


def name_values(params: list[Any]) -> None:
    """Give each parameter that takes a value and has no metavar its name in capitals (used by
    help, usage lines and error messages alike)."""
    for param in params:
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        if isinstance(param, TyperOption):
            longest = max(param.opts, key=len).lstrip("-")
            param.metavar = longest.replace("-", "_").upper()
        else:
            param.metavar = str(param.name).upper()


def _record(param: Any) -> tuple[str, str] | None:
    """A parameter's line in the help: its names and metavar, its help and notes."""
    if param.hidden:
        return None
    if isinstance(param, TyperArgument):
        names = str(param.metavar)
    else:
        names = ", ".join(sorted(param.opts, key=lambda opt: opt.startswith("--")))
        if not param.is_flag:
            names += f" {param.metavar}"
    notes = []
    default = param.default
    if isinstance(default, list | tuple):
        default = None
    if param.show_default and default not in (None, False, "") and not callable(default):
        notes.append(f"default: {getattr(default, 'value', default)}")
    if isinstance(param, TyperOption) and param.envvar and param.show_envvar:
        notes.append(f"env var: {param.envvar}")
    if param.required and isinstance(param, TyperOption):
        notes.append("required")
    text = param.help or ""
    if notes:
        text += f"  [{'; '.join(notes)}]"
    return names, text.strip()


def _usage_pieces(command: Any, ctx: typer.Context) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            piece = str(param.metavar)
            piece += "..." if param.nargs != 1 and not piece.endswith("...") else ""
            pieces.append(piece if param.required else f"[{piece}]")
    return pieces


def _format_params(command: Any, ctx: typer.Context, formatter: Any) -> None:
    records = [(param, _record(param)) for param in command.get_params(ctx)]
    arguments = [r for param, r in records if r and isinstance(param, TyperArgument)]
    options = [r for param, r in records if r and not isinstance(param, TyperArgument)]
    for title, rows in (("Arguments", arguments), ("Options", options)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)


def _format_help_text(command: Any, formatter: Any) -> None:
    if command.help:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(help_text(command.help))


class Command(TyperCommand):
    """A mobctl command: see the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_values(self.params)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.resilient_parsing and args and args[-1].startswith("-"):
            # completing this option's value: parse the words before it, or click stops at
            # the missing value and the arguments given so far (the mob) go unseen
            args = args[:-1]
        try:
            return list(super().parse_args(ctx, args))
        except ParseError as exc:  # some say which command they are about, some do not
            exc.ctx = exc.ctx or ctx
            raise

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        _format_help_text(self, formatter)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_params(self, ctx, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage_pieces(self, ctx)


class Group(TyperGroup):
    """A group of mobctl commands: see the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_values(self.params)

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        _format_help_text(self, formatter)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_params(self, ctx, formatter)
        self.format_commands(ctx, formatter)
