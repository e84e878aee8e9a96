"""Exit codes and the typed error tree.

Every error a user can cause is a :class:`MobctlError` subclass with a stable snake_case
``code`` and an ``exit_code``. Only the CLI boundary turns them into output.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes: a public contract (see README)."""

    OK = 0
    INVALID = 1
    USAGE = 2
    RUN_FAILED = 3
    RUN_CANCELED = 4
    RUN_TIMED_OUT = 5
    STORE_UNAVAILABLE = 6
    INTERNAL = 70
    INTERRUPTED = 130


class MobctlError(Exception):
    """Base of every error mobctl reports to a user."""

    code: str = "error"
    exit_code: ExitCode = ExitCode.INVALID

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(MobctlError):
    """The command line asks for something impossible (exit 2)."""

    code = "usage"
    exit_code = ExitCode.USAGE


class PathNotFoundError(UsageError):
    code = "path_not_found"


class CatalogError(UsageError):
    """The model catalogue given with ``--catalog`` cannot be used."""

    code = "invalid_catalog"


class DefinitionError(MobctlError):
    """A definition cannot be used for the requested action (exit 1)."""

    code = "invalid_definition"


class UnknownFlowError(MobctlError):
    code = "unknown_flow"
