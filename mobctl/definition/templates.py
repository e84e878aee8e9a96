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
    parts: list[Part] = []
    position = 0
    while True:
        opening = text.find("{{", position)
        closing = text.find("}}", position)
        if closing != -1 and (opening == -1 or closing < opening):
            raise _error(text, "unmatched '}}'", closing)
        if opening == -1:
            break
        if position < opening:
            parts.append(text[position:opening])
        end = _placeholder_end(text, opening)
        expression = text[opening + 2 : end].strip()
        if not expression:
            raise _error(text, "empty placeholder", opening + 2)
        parts.append(Placeholder(expression, opening))
        position = end + 2
    if position < len(text):
        parts.append(text[position:])
    return parts


def _placeholder_end(text: str, start: int) -> int:
    """Index of the ``}}`` closing the placeholder opened at ``start``."""
    end = text.find("}}", start + 2)
    nested = text.find("{{", start + 2)
    single = text.find("}", start + 2)
    if nested != -1 and (end == -1 or nested < end) and (single == -1 or nested < single):
        raise _error(text, "nested '{{' inside placeholder", nested)
    if end == -1:
        if single != -1:
            raise _error(text, "single '}' inside placeholder", single)
        raise _error(text, "unmatched '{{'", start)
    if single < end:
        raise _error(text, "single '}' inside placeholder", single)
    return end


def placeholders(parts: list[Part]) -> list[Placeholder]:
    return [part for part in parts if isinstance(part, Placeholder)]
