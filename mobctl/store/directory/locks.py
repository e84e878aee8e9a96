"""Sidecar locks (store contract §8.3): OS file locks on ``locks/...``, never on data files.

The kernel releases a lock when its holder dies. Beside each lock, a ``.holder`` file names
the process holding it (empty while nobody does), so a blocked process can say who it waits
for. The holder file is kept open and rewritten in place: creating and deleting it on every
acquisition cost more than the lock itself.

A lock is a non-blocking ``flock`` on a descriptor this thread keeps open, retried every
10 ms while another process holds it, until the timeout (with the "waiting for" notice after a
second). Threads and forked children use descriptors of their own, so they exclude each other.
The lock file and its holder are opened once per thread, through
:class:`~mobctl.store.directory.files.StoreFiles` (never through a link), and locked and
rewritten by descriptor: a lock library that opens the lock file again by its path
(``filelock`` resolves the directories on the way) could be led out of the store by a link.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError

from mobctl.clock import timestamp
from mobctl.errors import StoreLockTimeout, WriteFailed
from mobctl.host import command_line, me
from mobctl.store.directory.files import StoreFiles
from mobctl.store.models import Timestamp

WAIT_NOTICE_AFTER = 1.0
DEFAULT_TIMEOUT = 10.0
POLL_INTERVAL = 0.01

WaitCallback = Callable[[str], None]


class Locks:
    def __init__(
        self,
        files: StoreFiles,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_wait: WaitCallback | None = None,
    ) -> None:
        self.files = files
        self.root = files.root / "locks"
        self.timeout = timeout
        self.on_wait = on_wait
        self._local = threading.local()
        # every descriptor any thread opened, closed when this object goes (a long-lived
        # process, like the test suite, opens many stores)
        self._opened: list[int] = []
        weakref.finalize(self, _close_all, self._opened)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.lock"

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold lock ``name`` (e.g. ``mobs/review/events``) for the ``with`` body."""
        path = self.path(name)
        fd = self._descriptor(name, path)
        self._acquire(fd, name, path)
        try:
            holder = self._descriptor(f"{name}.holder", holder_path(path), in_place=True)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise
        try:
            record = self._holder_record()
            record["since"] = timestamp()
            data = json.dumps(record).encode()
            os.ftruncate(holder, 0)
            os.pwrite(holder, data, 0)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(holder, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _holder_record(self) -> dict[str, object]:
        """Who this process is (computed once per process)."""
        pid, host, started = me()
        cached: dict[str, object] | None = getattr(self, "_holder", None)
        if cached is None or cached["pid"] != pid:
            cached = {"pid": pid, "host": host, "process_start": started, "since": ""}
            cached["command"] = command_line()
            self._holder = cached
        return dict(cached)

    def _descriptor(self, name: str, path: Path, *, in_place: bool = False) -> int:
        """This thread's open descriptor of the lock file (reopened after a fork)."""
        cache: dict[str, tuple[int, int]] = self._local.__dict__.setdefault("fds", {})
        found = cache.get(name)
        pid = os.getpid()
        if found is not None and found[0] == pid:
            return found[1]
        self.files.ensure_directory(path.parent)
        try:
            fd = self.files.open(path, os.O_RDWR | os.O_CREAT, 0o644, in_place=in_place)
        except OSError as exc:  # a read-only store, or another user's
            raise WriteFailed(f"cannot open the lock {path}: {exc.strerror or exc}") from exc
        cache[name] = (pid, fd)
        self._opened.append(fd)
        return fd

    def _acquire(self, fd: int, name: str, path: Path) -> None:
        start = time.monotonic()
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            elapsed = time.monotonic() - start
            if self.on_wait is not None and not waited and elapsed >= WAIT_NOTICE_AFTER:
                waited = True
                self.on_wait(f"waiting for {name} lock held by {self.describe_holder(path)}")
            if elapsed >= self.timeout:
                raise StoreLockTimeout(
                    f"timed out after {self.timeout:g}s waiting for the {name} lock, held by "
                    f"{self.describe_holder(path)}",
                    hint="wait for that command to finish, or raise --lock-timeout",
                )
            time.sleep(POLL_INTERVAL)

    def read_holder(self, lock_path: Path) -> Holder | None:
        """Who holds the lock at ``lock_path``, or None: free (an empty holder file), missing,
        being rewritten, or not a holder record (never quoted: the store is untrusted)."""
        try:
            return Holder.model_validate_json(self.files.read(holder_path(lock_path)))
        except (OSError, ValidationError):
            return None

    def describe_holder(self, lock_path: Path) -> str:
        holder = self.read_holder(lock_path)
        if holder is None:
            return "an unknown process"
        return f"pid {holder.pid} on {holder.host} since {holder.since} ({holder.command})"


_Printable = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]  # shown to a terminal


class Holder(BaseModel):
    """A ``.holder`` file: the process that holds a lock (written by :meth:`Locks.hold`)."""

    pid: int
    host: _Printable
    process_start: str = ""
    since: Timestamp
    command: _Printable = "?"


def holder_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder")


def _close_all(descriptors: list[int]) -> None:
    for fd in descriptors:
        with contextlib.suppress(OSError):
            os.close(fd)
