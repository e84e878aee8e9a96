"""The files a definition may read: path skills and named schemas (definition-schema §4.7).

A definition may come from someone else (a pull request), so the files it names are read only
inside its own directory, or inside a root the person running allowed (``--allow-path DIR``),
judged after symlinks. Whatever names a file outside is refused before anything is read.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path


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
        target = Path(os.path.realpath(self.directory / written))  # absolute: as written
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
        """The UTF-8 text of the file ``name`` names, read only where :meth:`locate` allows
        (from the resolved path, so what is read is what was checked)."""
        return self.locate(name).read_text("utf-8")
