"""Source positions of keys and values in a TOML or JSON definition.

Python's parsers (``tomllib``, ``json``) return plain values without positions, and no
maintained library maps a TOML key path to its line and column. This module scans text that
the real parser has **already accepted**, so it only has to find where each key and value
starts, not to judge the syntax. The map is built lazily: a definition without diagnostics
never pays for it.

Paths are tuples of keys (``str``) and array indices (``int``), as in the parsed document.
Lines and columns are 1-based; columns count code points (a tab is one column).
"""

from __future__ import annotations

import json
import re
import tomllib
from bisect import bisect_right
from dataclasses import dataclass, field

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")
_JSON_SCALAR = re.compile(r"-?[0-9][0-9.eE+-]*|-?[0-9]|true|false|null|NaN|-?Infinity")


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column, with the end of the token when known."""

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None


@dataclass(slots=True)
class SourceMap:
    """Where each key and value of one document starts (offsets into ``text``)."""

    text: str
    keys: dict[Path, int] = field(default_factory=dict)
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    first: int | None = None
    problems: list[int] = field(default_factory=list)  # JSON: duplicate keys, NaN/Infinity
    _line_starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        i = find("\n")
        while i != -1:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._line_starts = starts

    def at(self, offset: int, end: int | None = None) -> Position:
        line = bisect_right(self._line_starts, offset)
        column = offset - self._line_starts[line - 1] + 1
        if end is None:
            return Position(line, column)
        end_line = bisect_right(self._line_starts, end)
        return Position(line, column, end_line, end - self._line_starts[end_line - 1] + 1)

    def key(self, path: Path) -> Position:
        """The key (or table header) that defines ``path``, else its nearest ancestor's,
        else the document's first key or header (1:1 in an empty document)."""
        for depth in range(len(path), 0, -1):
            offset = self.keys.get(path[:depth])
            if offset is not None:
                return self.at(offset)
        return self.at(self.first or 0)

    def value(self, path: Path) -> Position:
        """The value at ``path``; for a table, its header; for a missing value, an ancestor."""
        span = self.values.get(path)
        if span is not None:
            return self.at(*span)
        return self.key(path)

    def in_string(self, path: Path, decoded: str, index: int) -> Position:
        """Position of ``decoded[index]`` inside the string value at ``path``.

        Exact while the source text before ``index`` reads the same as the decoded text (no
        escape sequence before it); otherwise the start of the string value.
        """
        span = self.values.get(path)
        if span is None:
            return self.key(path)
        start, end = span
        raw = self.text[start:end]
        delimiter = raw[:3] if raw[:3] in ('"""', "'''") else raw[:1]
        content = start + len(delimiter)
        if len(delimiter) == 3:
            if self.text.startswith("\r\n", content):
                content += 2
            elif self.text.startswith("\n", content):
                content += 1
        if self.text[content : content + index] == decoded[:index]:
            return self.at(content + index)
        return self.at(start)


def toml_source_map(text: str) -> SourceMap:
    """Map the positions of an already-parsed TOML document."""
    source = SourceMap(text)
    _TomlScanner(source).scan()
    return source


def json_source_map(text: str) -> SourceMap:
    """Map the positions of an already-parsed JSON document."""
    source = SourceMap(text)
    scanner = _JsonScanner(source)
    scanner.value(scanner.skip(0), ())
    return source


class _TomlScanner:
    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.text = source.text
        self.n = len(self.text)
        self.table: Path = ()
        self.arrays: dict[Path, int] = {}  # array-of-tables path -> index of its last element

    def scan(self) -> None:
        i = self.skip(0, newlines=True)
        while i < self.n:
            if self.source.first is None:
                self.source.first = i
            i = self.header(i) if self.text[i] == "[" else self.pair(i, self.table)
            i = self.skip(i, newlines=True)

    def skip(self, i: int, *, newlines: bool = False) -> int:
        text, n = self.text, self.n
        while i < n:
            c = text[i]
            if c in " \t\r" or (newlines and c == "\n"):
                i += 1
            elif c == "#":
                end = text.find("\n", i)
                i = n if end == -1 else end
            else:
                break
        return i

    def keys(self, i: int) -> tuple[list[tuple[str, int]], int]:
        """A dotted key: its segments with their offsets, and the offset after it."""
        segments: list[tuple[str, int]] = []
        while True:
            i = self.skip(i)
            start = i
            if self.text[i] in "\"'":
                end = self.string_end(i)
                name = tomllib.loads(f"k = {self.text[i:end]}")["k"]
                i = end
            else:
                match = _BARE_KEY.match(self.text, i)
                if match is None:  # pragma: no cover - the parser accepted the text
                    raise ValueError(f"unexpected character at offset {i}")
                name, i = match.group(), match.end()
            segments.append((name, start))
            i = self.skip(i)
            if i < self.n and self.text[i] == ".":
                i += 1
                continue
            return segments, i

    def resolve(self, names: list[str]) -> Path:
        """Header path with the current index of every array of tables on the way."""
        path: Path = ()
        for name in names:
            path = (*path, name)
            if path in self.arrays:
                path = (*path, self.arrays[path])
        return path

    def header(self, i: int) -> int:
        start = i
        is_array = self.text.startswith("[[", i)
        segments, i = self.keys(i + (2 if is_array else 1))
        names = [name for name, _ in segments]
        parent = self.resolve(names[:-1])
        path: Path = (*parent, names[-1])
        for depth in range(1, len(parent) + 1):
            self.source.keys.setdefault(parent[:depth], start)
        if is_array:
            index = self.arrays.get(path, -1) + 1
            self.arrays[path] = index
            self.source.keys.setdefault(path, start)
            path = (*path, index)
        self.source.keys[path] = start
        self.table = path
        return i + (2 if is_array else 1)

    def pair(self, i: int, table: Path) -> int:
        segments, i = self.keys(i)
        path = table
        for name, offset in segments[:-1]:
            path = (*path, name)
            self.source.keys.setdefault(path, offset)
        name, offset = segments[-1]
        path = (*path, name)
        self.source.keys[path] = offset
        i = self.skip(i)  # at "="
        return self.value(self.skip(i + 1), path)

    def value(self, i: int, path: Path) -> int:
        c = self.text[i]
        if c == "[":
            end = self.array(i, path)
        elif c == "{":
            end = self.inline_table(i, path)
        elif c in "\"'":
            end = self.string_end(i)
        else:
            match = _SCALAR_END.search(self.text, i)
            end = self.n if match is None else match.start()
            while end > i and self.text[end - 1] in " \t\r":
                end -= 1
        self.source.values[path] = (i, end)
        return end

    def array(self, i: int, path: Path) -> int:
        i = self.skip(i + 1, newlines=True)
        index = 0
        while self.text[i] != "]":
            i = self.skip(self.value(i, (*path, index)), newlines=True)
            index += 1
            if self.text[i] == ",":
                i = self.skip(i + 1, newlines=True)
        return i + 1

    def inline_table(self, i: int, path: Path) -> int:
        i = self.skip(i + 1, newlines=True)
        while self.text[i] != "}":
            i = self.skip(self.pair(i, path), newlines=True)
            if self.text[i] == ",":
                i = self.skip(i + 1, newlines=True)
        return i + 1

    def string_end(self, i: int) -> int:
        text = self.text
        for delimiter in ('"""', "'''"):
            if text.startswith(delimiter, i):
                j = self._basic_end(i + 3, True) if delimiter == '"""' else text.index("'''", i + 3)
                end = j + 3
                extra = 0
                while extra < 2 and end < len(text) and text[end] == delimiter[0]:
                    end += 1
                    extra += 1
                return end
        if text[i] == "'":
            return text.index("'", i + 1) + 1
        return self._basic_end(i + 1, False) + 1

    def _basic_end(self, j: int, multiline: bool) -> int:
        """Offset of the closing quote(s) of a basic string whose content starts at ``j``."""
        text = self.text
        while True:
            c = text[j]
            if c == "\\":
                j += 2
            elif c == '"' and (not multiline or text.startswith('"""', j)):
                return j
            else:
                j += 1


class _JsonScanner:
    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.text = source.text

    def skip(self, i: int) -> int:
        text, n = self.text, len(self.text)
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    def value(self, i: int, path: Path) -> int:
        c = self.text[i]
        if c == "{":
            end = self.object(i, path)
        elif c == "[":
            end = self.array(i, path)
        elif c == '"':
            end = self.string_end(i)
        else:
            match = _JSON_SCALAR.match(self.text, i)
            end = i + 1 if match is None else match.end()
            if self.text[i:end].lstrip("-") in ("NaN", "Infinity"):
                self.source.problems.append(i)
        self.source.values[path] = (i, end)
        return end

    def object(self, i: int, path: Path) -> int:
        i = self.skip(i + 1)
        while self.text[i] != "}":
            end = self.string_end(i)
            name = json.loads(self.text[i:end])
            child = (*path, name)
            if child in self.source.keys:
                self.source.problems.append(i)
            if not path and self.source.first is None:
                self.source.first = i
            self.source.keys[child] = i
            i = self.skip(end)  # at ":"
            i = self.skip(self.value(self.skip(i + 1), child))
            if self.text[i] == ",":
                i = self.skip(i + 1)
        return i + 1

    def array(self, i: int, path: Path) -> int:
        i = self.skip(i + 1)
        index = 0
        while self.text[i] != "]":
            i = self.skip(self.value(i, (*path, index)))
            index += 1
            if self.text[i] == ",":
                i = self.skip(i + 1)
        return i + 1

    def string_end(self, i: int) -> int:
        j = i + 1
        text = self.text
        while text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j + 1
