"""The files a definition may read: path skills and named schemas (definition-schema §4.7).

A definition may come from someone else (a pull request), so the files it names are read only
inside its own directory, or inside a root the person running allowed (``--allow-path DIR``),
judged after symlinks. Whatever names a file outside is refused before anything is read.

What is read is what was judged: the resolved path is opened one directory at a time from
``/``, none of them through a link (``openat`` with ``O_NOFOLLOW``), so a directory swapped
for a link meanwhile (in a shared checkout) is refused rather than followed. Only regular
files are read, opened non-blocking (a FIFO would hang every command), and at most
:data:`MAX_FILE_BYTES` of them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 4 * 1024 * 1024  # a definition, a skill, a schema: far beyond any real one
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_UMASK = os.umask(0o022)  # read once, at import (setting it is process-wide)
os.umask(_UMASK)


class PathOutsideDefinition(ValueError):
    """A path of the definition resolves outside its directory and every allowed root."""


@dataclass(frozen=True, slots=True)
class DefinitionFiles:
    """Where the files of a definition may be: its ``directory`` and the ``allowed`` roots."""

    directory: Path
    allowed: tuple[Path, ...] = ()

    def locate(self, name: str) -> Path:
        """The file ``name`` names, with every symlink resolved, if it lies inside a root.

        A relative name resolves against the definition's directory and may land in any root;
        an absolute name counts only inside an allowed root (it names the runner's machine, not
        the definition's folder). Otherwise :class:`PathOutsideDefinition`, and nothing is read.
        A name no file can have (a NUL) is ``FileNotFoundError``.
        """
        if "\0" in name:
            raise FileNotFoundError(errno.ENOENT, "a file name cannot contain a NUL", name)
        written = Path(name)
        try:
            target = Path(os.path.realpath(self.directory / written))  # absolute: as written
        except OSError as exc:  # a link replaced by a file between its lstat and its readlink
            if exc.errno == errno.EINVAL:
                raise _changed(name) from None
            raise
        roots = [Path(os.path.realpath(root)) for root in self.allowed]
        home = Path(os.path.realpath(self.directory))
        if not written.is_absolute():
            roots.append(home)
        if any(target.is_relative_to(root) for root in roots):
            return target
        if target.is_relative_to(home):  # absolute, but inside the definition's directory
            raise PathOutsideDefinition(
                f"path '{name}' is absolute, and an absolute path is read only inside an "
                "--allow-path root (write it relative to the definition's directory)"
            )
        where = "the definition's directory" + (
            " and every --allow-path root" if self.allowed else ""
        )
        raise PathOutsideDefinition(f"path '{name}' resolves to {target}, outside {where}")

    def read_text(self, name: str) -> str:
        """The UTF-8 text of the file ``name`` names, read only where :meth:`locate` allows,
        from the resolved path with no link followed (so what is read is what was checked)."""
        target = self.locate(name)
        try:
            descriptor = _open_unlinked(target)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _changed(name) from None
            raise OSError(exc.errno, exc.strerror, str(target)) from None  # the whole path
        return read_descriptor(descriptor, str(target)).decode("utf-8")


def _changed(name: str) -> PathOutsideDefinition:
    return PathOutsideDefinition(
        f"path '{name}' changed while it was being read (a link appeared or went on its way); "
        "nothing was read"
    )


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file ``path`` (links followed: the user named it), opened
    non-blocking and capped, so a FIFO or a device never hangs a command."""
    return read_descriptor(os.open(path, _FILE), str(path))


def read_unlinked(path: Path) -> bytes:
    """As :func:`read_regular`, but a link as the last part of ``path`` is refused
    (``ELOOP``), never followed: for a file mobctl wrote itself (a cassette)."""
    return read_descriptor(os.open(path, _FILE | os.O_NOFOLLOW), str(path))


def read_descriptor(descriptor: int, shown: str) -> bytes:
    """Read (and close) an open file: a regular file of at most :data:`MAX_FILE_BYTES`;
    anything else is an ``OSError`` naming ``shown``."""
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or directory)", shown)
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES // 1024 // 1024} MiB", shown)
    return data


def _open_unlinked(target: Path) -> int:
    """Open ``target`` (absolute, links resolved) walking down from ``/``: a link on the way
    is ``ELOOP`` (or ``ENOTDIR``), never followed."""
    folder = os.open("/", _DIRECTORY)
    try:
        for part in target.parts[1:-1]:
            inner = os.open(part, _DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(target.name, _FILE | os.O_NOFOLLOW, dir_fd=folder)
    finally:
        os.close(folder)


def replace_file(path: Path, text: str) -> None:
    """Write a user's file (a cassette, a suite ``--update`` rewrites) whole or not at all: a
    temp file beside it, flushed and synced, then renamed over it, so a crash or a full disk
    leaves the old file as it was."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else 0o666 & ~_UMASK
        os.chmod(temp, mode)  # mkstemp's is 0600
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
