"""Sidecar locks (store contract §8.3): OS file locks on ``locks/...``, never on data files.

The kernel releases a lock when its holder dies. Beside each lock, a ``.holder`` file names
the process holding it (empty while nobody does), so a blocked process can say who it waits
for. The holder file is kept open and rewritten in place: creating and deleting it on every
acquisition cost more than the lock itself.

Uncontended, a lock is one non-blocking ``flock`` on a descriptor this thread keeps open (a
durable append is dominated by its fsync; filelock's bookkeeping would add a third to it).
Contended, ``filelock`` does the waiting, with the timeout and the "waiting for" notice. Both
paths take the same ``flock`` on the same file, so they exclude each other (threads and forked
children use descriptors of their own).
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

from filelock import FileLock, Timeout

from mobctl.errors import StoreLockTimeout, WriteFailed
from mobctl.store.canonical import parse_json, timestamp
from mobctl.store.files import ensure_directory
from mobctl.store.process import command_line, me

WAIT_NOTICE_AFTER = 1.0
DEFAULT_TIMEOUT = 10.0

WaitCallback = Callable[[str], None]


class Locks:
    def __init__(
        self, root: Path, *, timeout: float = DEFAULT_TIMEOUT, on_wait: WaitCallback | None = None
    ) -> None:
        self.root = root / "locks"
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
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock: FileLock | None = None
        except BlockingIOError:
            lock = FileLock(str(path), preserve_lock_file=True)
            self._acquire(lock, name, path)
        holder = self._descriptor(f"{name}.holder", Path(f"{path}.holder"))
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
            if lock is None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                lock.release()

    def _holder_record(self) -> dict[str, object]:
        """Who this process is (computed once per process)."""
        pid, host, started = me()
        cached: dict[str, object] | None = getattr(self, "_holder", None)
        if cached is None or cached["pid"] != pid:
            cached = {"pid": pid, "host": host, "process_start": started, "since": ""}
            cached["command"] = command_line()
            self._holder = cached
        return dict(cached)

    def _descriptor(self, name: str, path: Path) -> int:
        """This thread's open descriptor of the lock file (reopened after a fork)."""
        cache: dict[str, tuple[int, int]] = self._local.__dict__.setdefault("fds", {})
        found = cache.get(name)
        pid = os.getpid()
        if found is not None and found[0] == pid:
            return found[1]
        ensure_directory(path.parent)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only store, or another user's
            raise WriteFailed(f"cannot open the lock {path}: {exc.strerror or exc}") from exc
        cache[name] = (pid, fd)
        self._opened.append(fd)
        return fd

    def _acquire(self, lock: FileLock, name: str, path: Path) -> None:
        deadline = time.monotonic() + self.timeout
        first = min(WAIT_NOTICE_AFTER, self.timeout)
        try:
            lock.acquire(timeout=first, poll_interval=0.01)
            return
        except Timeout:
            pass
        if self.on_wait is not None:
            self.on_wait(f"waiting for {name} lock held by {describe_holder(path)}")
        try:
            lock.acquire(timeout=max(deadline - time.monotonic(), 0), poll_interval=0.02)
        except Timeout:
            raise StoreLockTimeout(
                f"timed out after {self.timeout:g}s waiting for the {name} lock, held by "
                f"{describe_holder(path)}",
                hint="wait for that command to finish, or raise --lock-timeout",
            ) from None


def _close_all(descriptors: list[int]) -> None:
    for fd in descriptors:
        with contextlib.suppress(OSError):
            os.close(fd)


def read_holder(lock_path: Path) -> dict[str, object] | None:
    try:
        value = parse_json(lock_path.with_name(lock_path.name + ".holder").read_text())
    except (OSError, ValueError):
        return None  # empty (nobody holds the lock), missing, or being rewritten
    return value if isinstance(value, dict) else None


def describe_holder(lock_path: Path) -> str:
    holder = read_holder(lock_path)
    if holder is None:
        return "an unknown process"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} "
        f"({holder.get('command', '?')})"
    )


def holder_pid(lock_path: Path) -> int | None:
    holder = read_holder(lock_path)
    pid = holder.get("pid") if holder else None
    return pid if isinstance(pid, int) else None
