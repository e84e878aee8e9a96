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
    BROKEN_PIPE = 141  # the reader of the output went away (`| head`), as SIGPIPE would end it


class MobctlError(Exception):
    """Base of every error mobctl reports to a user."""

    code: str = "error"
    exit_code: ExitCode = ExitCode.INVALID

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class CustodyLost(MobctlError):
    """Another process took a running run over (``runs cancel`` after the grace period, or
    ``runs recover``): this process stops its turns and writes nothing more (exit 4)."""

    code = "custody_lost"
    exit_code = ExitCode.RUN_CANCELED

    def __init__(self, mob_id: str, run_id: str) -> None:
        super().__init__(
            f"run {run_id} was taken over by another process; this process stopped it without "
            "writing anything more",
            hint=f"see `mobctl runs show {mob_id} {run_id}`",
        )


class UsageError(MobctlError):
    """The command line asks for something impossible (exit 2)."""

    code = "usage"
    exit_code = ExitCode.USAGE


class ConfirmationRequired(UsageError):
    """A destructive command was neither confirmed on a terminal nor given ``--yes``."""

    code = "confirmation_required"


class PathNotFoundError(UsageError):
    code = "path_not_found"


class OutputError(UsageError):
    """An output file named on the command line cannot be written."""

    code = "output_not_writable"


class MissingCredentials(UsageError):
    """A driver needs a credential or a server URL that the environment does not hold."""

    code = "missing_credentials"


class CatalogError(UsageError):
    """The model catalogue given with ``--catalog`` cannot be used."""

    code = "invalid_catalog"


class DefinitionError(MobctlError):
    """A definition cannot be used for the requested action (exit 1)."""

    code = "invalid_definition"


class NoDefinitionsError(MobctlError):
    """``validate DIR`` found no definition under DIR: a gate that checks nothing fails."""

    code = "no_definitions"


class UnknownFlowError(MobctlError):
    code = "unknown_flow"


class AmbiguousRunIdError(MobctlError):
    """A run id prefix matches several runs; the message lists them."""

    code = "ambiguous_run_id"


class RunNotResumable(MobctlError):
    """``runs resume`` on a run that is finished, still owned, or cannot be taken up."""

    code = "run_not_resumable"


class DriverRequired(UsageError):
    """``runs resume`` without ``--driver`` of a run started with a ``command:`` driver: a
    program named only in the run's snapshot (which anyone who can write the store can edit)
    is never run; the command line must name it again."""

    code = "driver_required"


class RunOrphaned(MobctlError):
    """A run someone waits for (``runs wait``, ``events tail -f --run``) is orphaned: its owner
    is gone, so it will never end by itself (exit 3, as a run that did not complete)."""

    code = "run_orphaned"
    exit_code = ExitCode.RUN_FAILED

    def __init__(self, mob_id: str, run_id: str, reason: str) -> None:
        super().__init__(
            f"run {run_id} is orphaned ({reason}): it will not end by itself",
            hint=f"`mobctl runs resume {mob_id} {run_id}` continues it; "
            f"`mobctl runs recover {mob_id} --cancel` ends it",
        )


class UnsafeIdError(MobctlError):
    """An id that would become a file name breaks the slug rule; nothing was touched."""

    code = "unsafe_id"


# --- the store (store contract §2.4) --------------------------------------------------------


class StoreError(MobctlError):
    """Base of every store failure."""

    code = "store_error"
    exit_code = ExitCode.STORE_UNAVAILABLE


class WriteFailed(StoreError):
    code = "store_write_failed"


class StoreLockTimeout(WriteFailed):
    code = "store_lock_timeout"


class TerminalEventPending(WriteFailed):
    """The run is terminal but its terminal event could not be appended yet (repair adds it)."""

    code = "terminal_event_pending"


class RecordTooLarge(WriteFailed):
    code = "record_too_large"
    exit_code = ExitCode.INVALID


class ReadFailed(StoreError):
    code = "store_read_failed"


class StoreCorrupt(ReadFailed):
    code = "store_corrupt"


class StoreLink(StoreCorrupt):
    """A symbolic link where the store keeps a file or a directory: never followed (store
    contract §8.7a). ``path`` is the link itself, which may be a directory on the way."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} is a symbolic link; mobctl never follows a link in the store",
            hint="replace the link with the file or directory itself "
            "(`mobctl store check` lists every link in the store)",
        )
        self.path = path


class StoreFormatTooNew(ReadFailed):
    code = "store_format_too_new"


class InsecureSecretFile(ReadFailed):
    code = "insecure_secret_file"


class NotFound(StoreError):
    code = "not_found"
    exit_code = ExitCode.INVALID


class StaleCursor(NotFound):
    code = "stale_cursor"

    def __init__(self, after: int, latest: int, *, following: bool = False) -> None:
        if following:  # the log went back under a follower: nobody passed a cursor
            super().__init__(
                f"the event log went back from cursor {after} to {latest} while it was followed "
                "(deleted or replaced)",
                hint="`mobctl events verify MOB` checks the log",
            )
        else:
            super().__init__(
                f"cursor {after} is beyond the end of the log (latest cursor is {latest})",
                hint=f"use --after-cursor {latest} or lower",
            )
        self.after = after
        self.latest = latest


class CasConflict(StoreError):
    code = "cas_conflict"
    exit_code = ExitCode.INVALID


class SpecRevisionConflict(CasConflict):
    code = "spec_revision_conflict"

    def __init__(self, mob_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"mob '{mob_id}' is at revision {actual}, not {expected}",
            hint=f"re-read it and pass --expect-revision {actual}",
        )
        self.mob_id = mob_id
        self.expected = expected
        self.actual = actual


class FrameAtomicPersistenceUnavailable(StoreError):
    code = "frame_atomic_persistence_unavailable"
    exit_code = ExitCode.INTERNAL

    def __init__(self, operation: str) -> None:
        super().__init__(f"this store cannot persist {operation} atomically")
        self.operation = operation


class SerializationError(StoreError):
    code = "store_serialization"
    exit_code = ExitCode.INTERNAL


class InternalStoreError(StoreError):
    """An integrity violation: duplicate create, conflicting replay, invalid record."""

    code = "store_internal"
    exit_code = ExitCode.INTERNAL


# --- supervisor authority (store contract §7.2, §8.8) ---------------------------------------


class PassphraseRequired(ReadFailed):
    """A supervisor secret is encrypted at rest and no passphrase was given."""

    code = "passphrase_required"


class WrongPassphrase(ReadFailed):
    """An encrypted supervisor secret does not decrypt with the passphrase given."""

    code = "wrong_passphrase"


class SupervisorExistsError(MobctlError):
    """``supervisor init`` on a mob that already has a supervisor authority."""

    code = "supervisor_exists"


class SupervisorEpochExhausted(MobctlError):
    """The authority is at epoch 2^64 - 1: a rotation would wrap, so none is possible."""

    code = "supervisor_epoch_exhausted"
