"""The one error boundary: every exception of a command becomes a message and a documented
exit code, and a closed output pipe ends mobctl quietly. A usage error found while parsing the
command line (an unknown option, a missing argument, a bad value) is reported the same way:
``error[usage]: ...`` and a ``hint:``, exit 2."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import traceback
from collections.abc import Iterator
from typing import Any, NoReturn

import typer
from typer._click.exceptions import NoArgsIsHelpError, NoSuchOption
from typer._click.exceptions import UsageError as ParseError
from typer.core import TyperGroup

from mobctl import __version__
from mobctl.cli.help import Group
from mobctl.cli.terminal import printable
from mobctl.errors import ExitCode, MobctlError


def report_error(code: str, message: str, hint: str | None = None) -> None:
    """The one way errors reach a user: ``error[<code>]: <message>`` and ``hint:`` on stderr.

    A message may quote ids, paths and reasons from the store or an agent: its control
    characters are escaped, and a line break it holds starts an indented line, so nothing in it
    can pass for a line of mobctl's own."""
    sys.stderr.write(f"error[{code}]: {_lines(message)}\n")
    if hint:
        sys.stderr.write(f"hint: {_lines(hint)}\n")


def _lines(text: str) -> str:
    return printable(text, keep_newlines=True).replace("\n", "\n  ")


@contextlib.contextmanager
def _reader_may_go() -> Iterator[None]:
    """A closed stdout or stderr (``mobctl ... | head -1``) ends mobctl quietly, as it ends
    a Unix tool: no message, the status of a process ended by SIGPIPE (141)."""
    try:
        try:
            yield
        finally:
            sys.stdout.flush()  # here, where a closed pipe is still handled, not at exit
    except BrokenPipeError:
        _reader_gone()
    except SystemExit as exc:  # rich (help pages) exits 1 on a broken pipe: same status here
        if isinstance(exc.__context__, BrokenPipeError):
            _reader_gone()
        raise


def stdout_abandoned() -> bool:
    """Whether stdout is a pipe whose reader has gone (``| head`` took what it wanted), asked
    without writing: for a command that waits for output to come, to notice while it waits.
    False when stdout is not a file descriptor (in-process tests)."""
    try:
        watch = select.poll()
        watch.register(sys.stdout.fileno(), 0)  # only the conditions poll always reports
        ready = watch.poll(0)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in ready)


def _reader_gone() -> NoReturn:
    # what is still buffered goes to /dev/null, so the interpreter's last flush cannot fail
    # again (the "Note on SIGPIPE" of Python's signal module)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # not a file (in-process tests)
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    raise typer.Exit(int(ExitCode.BROKEN_PIPE))


def _usage_error(exc: ParseError) -> NoReturn:
    """A command line that does not parse: ``error[usage]`` with what it may have meant, or
    the command's usage line, as the hint; exit 2."""
    message, _, meant = exc.format_message().rstrip(".").partition(". Did you mean ")
    ctx, hint = exc.ctx, None
    if isinstance(exc, NoSuchOption):  # the option as typed: report_error escapes it
        message = f"No such option: {exc.option_name}"
        meant = " or ".join(sorted(exc.possibilities or [])) + "?" if exc.possibilities else ""
    if meant:
        hint = f"did you mean {meant}"
    elif ctx is not None and isinstance(ctx.command, TyperGroup):
        hint = f"the commands are: {', '.join(ctx.command.list_commands(ctx))}"
    elif ctx is not None:
        hint = f"usage: {ctx.get_usage().removeprefix('Usage: ')} (--help explains)"
    report_error("usage", message[:1].lower() + message[1:], hint)
    raise typer.Exit(int(ExitCode.USAGE))


class Boundary(Group):
    """Turns every exception of a command into a message and a documented exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _reader_may_go():  # `mobctl --help | head -1`
            try:
                return super().make_context(*args, **kwargs)
            except NoArgsIsHelpError:
                raise
            except ParseError as exc:
                _usage_error(exc)

    def invoke(self, ctx: Any) -> Any:
        with _reader_may_go():
            return self._invoke(ctx)

    def _invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except ParseError as exc:
            _usage_error(exc)
        except (typer.TyperException, typer.Exit, typer.Abort, BrokenPipeError):
            raise
        except MobctlError as exc:
            report_error(exc.code, exc.message, exc.hint)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            report_error("interrupted", "interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:
            if os.environ.get("MOBCTL_DEBUG") == "1":
                traceback.print_exc()
            # the type and where, never the text: it may quote anything (a value read from the
            # store, a secret); the traceback, with the text, is for MOBCTL_DEBUG=1
            report_error(
                "internal",
                f"this is a bug in mobctl {__version__}: {type(exc).__name__}{_where(exc)}",
                "re-run with MOBCTL_DEBUG=1 for the traceback and report it",
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None


def _where(exc: BaseException) -> str:
    """The innermost function of mobctl's own that ``exc`` passed through, as
    ``" in <module>.<function>"`` ("" if none did)."""
    where = ""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        module = frame.f_globals.get("__name__", "")
        if module.partition(".")[0] == "mobctl":
            where = f" in {module}.{frame.f_code.co_qualname}"
    return where
