"""Message templates: ``{{ path }}`` placeholders (flow-semantics §9).

No filters, defaults or escapes. Parsing is pure and shared by validation (syntax and
references at load time) and the engine (rendering at run time).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Placeholder:
    expression: str  # trimmed
    start: int  # index of the opening "{{" in the template


@dataclass(frozen=True, slots=True)
class TemplateSyntaxError(Exception):
    kind: str
    index: int  # code point index into the template
    line: int
    column: int
    byte: int

    def __str__(self) -> str:
        return (
            f"invalid template syntax at line {self.line}, column {self.column} "
            f"(byte {self.byte}): {self.kind}"
        )


Part = str | Placeholder


def _error(text: str, kind: str, index: int) -> TemplateSyntaxError:
    before = text[:index]
    line = before.count("\n") + 1
    column = index - (before.rfind("\n") + 1) + 1
    return TemplateSyntaxError(kind, index, line, column, len(before.encode("utf-8")))


def parse_template(text: str) -> list[Part]:
    """Literal text and placeholders, in order; raises :class:`TemplateSyntaxError`."""
    if "{" not in text and "}" not in text:
        return [text] if text else []
    parts: list[Part] = []
    literal_start = 0
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("{{", i):
            close = _placeholder_end(text, i)
            if literal_start < i:
                parts.append(text[literal_start:i])
            expression = text[i + 2 : close].strip()
            if not expression:
                raise _error(text, "empty placeholder", i + 2)
            parts.append(Placeholder(expression, i))
            i = literal_start = close + 2
        elif text.startswith("}}", i):
            raise _error(text, "unmatched '}}'", i)
        else:
            i += 1
    if literal_start < n:
        parts.append(text[literal_start:])
    return parts


def _placeholder_end(text: str, start: int) -> int:
    j = start + 2
    n = len(text)
    while j < n:
        if text.startswith("}}", j):
            return j
        if text.startswith("{{", j):
            raise _error(text, "nested '{{' inside placeholder", j)
        if text[j] == "}":
            raise _error(text, "single '}' inside placeholder", j)
        j += 1
    raise _error(text, "unmatched '{{'", start)


def placeholders(parts: list[Part]) -> list[Placeholder]:
    return [part for part in parts if isinstance(part, Placeholder)]
