"""Every store file is opened here, and written durably here (store contract §8.2, §8.7a).

**No link is followed.** The store is untrusted input (it may sit in a checked-out pull
request), so a symbolic link anywhere under the store root must never lead mobctl to a file
outside it. Every access walks down from the root one directory at a time, each opened with
``O_DIRECTORY | O_NOFOLLOW`` relative to the descriptor of the one above (``dir_fd``, i.e.
``openat``); the file itself is opened with ``O_NOFOLLOW`` relative to its directory, and
creating, replacing and removing use the same descriptors (``dir_fd``, ``src_dir_fd``,
``dst_dir_fd``). Nothing is checked first and used later by name, so a link swapped in
meanwhile is refused as well. A link on the way, the store root's own last component
included, is :class:`~mobctl.errors.StoreLink` (``store_corrupt``) naming it. The parents of
the root are the user's choice and are resolved normally.

Files are opened non-blocking and must be regular files (a FIFO would hang a reader); a file
written in place (an append, a truncation, a lock holder) must also be its only hard link, so
that a hard link planted in the store cannot carry a write to a file outside it.

**Durable writes.** A whole file is replaced, never rewritten: temp file in the same
directory, write, flush, fsync, ``os.replace``, fsync the directory; the temp file is removed
on any failure. Appends are one ``os.write`` on an ``O_APPEND`` descriptor and a data sync.
Nothing else in mobctl opens or writes store files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from mobctl.errors import StoreCorrupt, StoreLink, WriteFailed
from mobctl.host import pid_alive

TEMP_SUFFIX = ".tmp"
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
# errors that opening a link (or a non-directory, or a directory) with these flags gives
_REFUSED = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENXIO})

# fdatasync flushes the data and the metadata needed to read it back (the new size), which is
# all an append needs; it skips the timestamps that a full fsync also writes.
_datasync = getattr(os, "fdatasync", os.fsync)


def _skip(fd: int) -> None:
    """No sync (a store opened with ``durable=False``)."""


Kind = Literal["file", "directory", "link", "other"]


@dataclass(frozen=True)
class Entry:
    """A name in a store directory and what it is (never what a link points to)."""

    path: Path
    kind: Kind

    @property
    def name(self) -> str:
        return self.path.name


def temp_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


class StoreFiles:
    """Access to the files under ``root``, none of it through a symbolic link.

    Paths are given whole (``root / "specs" / "review.json"``) and must lie under ``root``.
    A missing file or directory raises ``FileNotFoundError`` as ``open`` would.
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        """``durable=False``: nothing is synced to the disk (a throwaway store, such as a
        ``mobctl test`` case's, that no crash needs to find intact); writes stay atomic."""
        self.root = root
        self.sync: Callable[[int], None] = os.fsync if durable else _skip
        self.datasync: Callable[[int], None] = _datasync if durable else _skip
        self._walks: dict[Path, tuple[str, ...]] = {}  # directory -> its names below the root

    # --- directories ------------------------------------------------------------------------

    @contextlib.contextmanager
    def directory(self, path: Path, *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory ``path``, reached without following a link;
        ``create``: make the missing directories on the way (each entry made durable)."""
        fd = self._open_directory(path, create)
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_directory(self, path: Path, create: bool) -> int:
        names = self._names(path)
        fd = self._open_root(create)
        try:
            for depth, name in enumerate(names):
                try:
                    child = _open_subdirectory(fd, name, create, self.sync)
                except OSError as exc:
                    walked = self.root.joinpath(*names[: depth + 1])
                    raise _refusal(fd, walked, exc, directory=True) from None
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _names(self, directory: Path) -> tuple[str, ...]:
        """The names from the root down to ``directory`` (remembered: every access walks)."""
        names = self._walks.get(directory)
        if names is None:
            names = directory.relative_to(self.root).parts
            if any(name in (".", "..") for name in names):  # ids are slugs; this is a bug
                raise ValueError(f"not a path inside the store: {directory}")
            self._walks[directory] = names
        return names

    def _open_root(self, create: bool) -> int:
        try:
            return os.open(self.root, _DIRECTORY)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            raise _refusal(None, self.root, exc, directory=True) from None
        self.root.mkdir(parents=True, exist_ok=True)  # the root's parents: the user's choice
        _fsync_path(self.root.parent, self.sync)
        try:
            return os.open(self.root, _DIRECTORY)
        except OSError as exc:
            raise _refusal(None, self.root, exc, directory=True) from None

    def ensure_directory(self, path: Path) -> None:
        """Create a directory (and the ones above it) and make its entry durable."""
        with self._writable_directory(path):
            pass

    @contextlib.contextmanager
    def _writable_directory(self, path: Path) -> Iterator[int]:
        try:
            fd = self._open_directory(path, create=True)
        except OSError as exc:
            raise WriteFailed(f"cannot create {path}: {exc.strerror or exc}") from exc
        try:
            yield fd
        finally:
            os.close(fd)

    def entries(self, path: Path) -> list[Entry]:
        """What the directory ``path`` holds, sorted by name; [] when it does not exist.
        Links are listed as links (so that using one is refused, and ``store check`` sees it)."""
        try:
            with self.directory(path) as fd, os.scandir(fd) as found:
                return sorted(
                    (Entry(path / item.name, _kind(item)) for item in found),
                    key=lambda entry: entry.name,
                )
        except FileNotFoundError:
            return []

    def stems(self, path: Path, suffix: str) -> list[str]:
        """The names, without ``suffix``, of the entries of ``path`` that end with it (links
        included: using one is refused, naming it), sorted; hidden (temp) files left out."""
        return [
            entry.name.removesuffix(suffix)
            for entry in self.entries(path)
            if entry.name.endswith(suffix) and not entry.name.startswith(".")
        ]

    def walk(self, path: Path | None = None) -> Iterator[Entry]:
        """Every entry under ``path`` (default: the root), depth first; links are yielded and
        never entered."""
        for entry in self.entries(self.root if path is None else path):
            yield entry
            if entry.kind == "directory":
                yield from self.walk(entry.path)

    # --- reading ----------------------------------------------------------------------------

    def open(self, path: Path, flags: int, mode: int = 0o666, *, in_place: bool = False) -> int:
        """A descriptor of the regular file ``path`` (``flags`` as ``os.open``); ``in_place``:
        it will be written in place, so it must be its only hard link."""
        with self.directory(path.parent) as folder:
            return _open_file(folder, path, flags, mode, in_place=in_place)

    def reader(self, path: Path) -> BinaryIO:
        """``path`` opened for reading in binary mode."""
        return os.fdopen(self.open(path, os.O_RDONLY), "rb")

    def read(self, path: Path) -> bytes:
        with self.reader(path) as handle:
            return handle.read()

    def stat(self, path: Path) -> os.stat_result:
        """The entry's own status; a link is refused."""
        with self.directory(path.parent) as folder:
            info = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            raise StoreLink(str(path))
        return info

    def exists(self, path: Path) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    # --- writing ----------------------------------------------------------------------------

    def write_atomic(self, target: Path, data: bytes, *, mode: int | None = None) -> None:
        """Replace ``target`` with ``data`` all at once; ``mode`` (e.g. 0o600) for secrets."""
        with self._writable_directory(target.parent) as folder:
            _refuse_link(folder, target)
            temp = temp_name(target.name)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            try:
                fd = os.open(temp, flags, 0o666 if mode is None else mode, dir_fd=folder)
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    self.sync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, target.name, src_dir_fd=folder, dst_dir_fd=folder)
                self.sync(folder)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=folder)
                raise WriteFailed(f"cannot write {target}: {exc.strerror or exc}") from exc
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=folder)
                raise

    def append(self, target: Path, data: bytes, *, create: bool = True) -> os.stat_result:
        """One ``os.write`` on an ``O_APPEND`` descriptor, then a data sync (event log,
        journals); the file's status after it.

        ``create=False``: the file must exist (``FileNotFoundError`` otherwise), so that a new
        file is created by ``write_atomic``, whose directory sync makes its name durable."""
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if create else 0)
        try:
            fd = self.open(target, flags, in_place=True)
            try:
                written = os.write(fd, data)
                if written != len(data):  # pragma: no cover - regular files write whole
                    raise OSError(f"short write: {written} of {len(data)} bytes")
                self.datasync(fd)
                return os.fstat(fd)
            finally:
                os.close(fd)
        except FileNotFoundError:
            if create:
                raise WriteFailed(f"cannot append to {target}: its directory is missing") from None
            raise
        except OSError as exc:
            raise WriteFailed(f"cannot append to {target}: {exc}") from exc

    def truncate(self, target: Path, size: int) -> None:
        try:
            fd = self.open(target, os.O_WRONLY, in_place=True)
            try:
                os.ftruncate(fd, size)
                self.sync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise WriteFailed(f"cannot truncate {target}: {exc}") from exc

    def remove(self, target: Path) -> None:
        """Delete the file ``target`` (``FileNotFoundError`` if absent); a link is refused."""
        with self.directory(target.parent) as folder:
            _refuse_link(folder, target)
            os.unlink(target.name, dir_fd=folder)

    # --- temp files -------------------------------------------------------------------------

    def stray_temp_files(self, directory: Path) -> list[Path]:
        """Temp files in ``directory`` left by processes that are gone."""
        found: list[Path] = []
        for entry in self.entries(directory):
            name = entry.name
            if entry.kind != "file" or not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                continue
            parts = name.split(".")
            pid = parts[-3] if len(parts) >= 4 else ""
            # a planted name's '²' is a digit to isdigit() but nothing int() takes
            if not (pid.isascii() and pid.isdigit()) or not pid_alive(int(pid)):
                found.append(entry.path)
        return found

    def remove_stray_temp_files(self, directory: Path) -> list[Path]:
        removed = []
        for path in self.stray_temp_files(directory):
            with contextlib.suppress(FileNotFoundError):
                self.remove(path)
                removed.append(path)
        return removed


def _kind(item: os.DirEntry[str]) -> Kind:
    if item.is_symlink():
        return "link"
    if item.is_dir(follow_symlinks=False):
        return "directory"
    return "file" if item.is_file(follow_symlinks=False) else "other"


def _open_subdirectory(parent: int, name: str, create: bool, sync: Callable[[int], None]) -> int:
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile
        os.mkdir(name, 0o777, dir_fd=parent)
        sync(parent)
    return os.open(name, _DIRECTORY, dir_fd=parent)


def _open_file(folder: int, path: Path, flags: int, mode: int, *, in_place: bool) -> int:
    try:
        fd = os.open(path.name, flags | os.O_NOFOLLOW | os.O_NONBLOCK, mode, dir_fd=folder)
    except OSError as exc:
        raise _refusal(folder, path, exc, directory=False) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoreCorrupt(f"{path} is not a regular file")
        if in_place and info.st_nlink > 1:
            raise StoreCorrupt(
                f"{path} has {info.st_nlink} hard links; mobctl writes a store file in place "
                "only when the store holds its only link",
                hint="replace it with a copy of itself",
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refusal(folder: int | None, path: Path, exc: OSError, *, directory: bool) -> Exception:
    """What to raise for ``exc`` from opening ``path``: a link or the wrong kind of file is
    the store's fault (``store_corrupt``); anything else stays the ``OSError`` it is."""
    if exc.errno not in _REFUSED:
        return exc
    try:
        if folder is None:
            info = os.lstat(path)
        else:
            info = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return exc
    if stat.S_ISLNK(info.st_mode):
        return StoreLink(str(path))
    if directory and not stat.S_ISDIR(info.st_mode):
        return StoreCorrupt(f"{path} is not a directory")
    if not directory and not stat.S_ISREG(info.st_mode):
        return StoreCorrupt(f"{path} is not a regular file")
    return exc


def _refuse_link(folder: int, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.stat(path.name, dir_fd=folder, follow_symlinks=False).st_mode):
            raise StoreLink(str(path))


def _fsync_path(directory: Path, sync: Callable[[int], None]) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sync(fd)
    finally:
        os.close(fd)
