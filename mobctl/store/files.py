"""The one module that writes store files durably (store contract §8.2).

Temp file in the same directory, write, flush, fsync, ``os.replace``, fsync the directory; the
temp file is removed on any failure. Nothing else in mobctl writes store files.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from mobctl.errors import WriteFailed

TEMP_SUFFIX = ".tmp"


def temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_directory(directory: Path) -> None:
    """Create a directory (and parents) and make its entry durable."""
    if directory.is_dir():
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fsync_directory(directory.parent)
    except OSError as exc:
        raise WriteFailed(f"cannot create {directory}: {exc.strerror or exc}") from exc


def write_atomic(target: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``target`` with ``data`` all at once; ``mode`` (e.g. 0o600) for secrets."""
    ensure_directory(target.parent)
    temp = temp_name(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(temp, flags, 0o666 if mode is None else mode)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
        fsync_directory(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise WriteFailed(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


# fdatasync flushes the data and the metadata needed to read it back (the new size), which is
# all an append needs; it skips the timestamps that a full fsync also writes.
_datasync = getattr(os, "fdatasync", os.fsync)


def append_durably(target: Path, data: bytes, *, create: bool = True) -> None:
    """One ``os.write`` on an ``O_APPEND`` descriptor, then a data sync (event log, journals).

    ``create=False``: the file must exist (``FileNotFoundError`` otherwise), so that a new file
    is created by ``write_atomic``, whose directory sync makes its name durable."""
    flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if create else 0)
    try:
        fd = os.open(target, flags, 0o666)
        try:
            written = os.write(fd, data)
            if written != len(data):  # pragma: no cover - regular files write whole
                raise OSError(f"short write: {written} of {len(data)} bytes")
            _datasync(fd)
        finally:
            os.close(fd)
    except FileNotFoundError:
        if create:
            raise WriteFailed(f"cannot append to {target}: its directory is missing") from None
        raise
    except OSError as exc:
        raise WriteFailed(f"cannot append to {target}: {exc}") from exc


def truncate_durably(target: Path, size: int) -> None:
    try:
        fd = os.open(target, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise WriteFailed(f"cannot truncate {target}: {exc}") from exc


def stray_temp_files(directory: Path) -> list[Path]:
    """Temp files in ``directory`` left by processes that are gone."""
    found: list[Path] = []
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        if not (path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)):
            continue
        parts = path.name.split(".")
        pid = parts[-3] if len(parts) >= 4 else ""
        if not pid.isdigit() or not pid_alive(int(pid)):
            found.append(path)
    return found


def remove_stray_temp_files(directory: Path) -> list[Path]:
    removed = []
    for path in stray_temp_files(directory):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
