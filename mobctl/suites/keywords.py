"""``-k EXPR``: which cases run, by name, as pytest's ``-k`` chooses tests.

``EXPR`` is words joined with ``and``, ``or``, ``not`` and parentheses; a word (or a
``"quoted phrase"``) matches a case whose name contains it, ignoring case.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mobctl.errors import UsageError

Matcher = Callable[[str], bool]
_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|([^\s()"]+))')
_OPERATORS = frozenset({"and", "or", "not"})
MAX_DEPTH = 100  # of nested "not" and parentheses: deeper is a usage error, not a RecursionError


def keyword_matcher(expression: str) -> Matcher:
    """The test of a case name that ``expression`` means; a malformed one is a usage error."""
    tokens = _tokens(expression)
    parser = _Parser(tokens, expression)
    matcher = parser.expression()
    if parser.position != len(tokens):
        raise parser.error(f"unexpected {tokens[parser.position][1]!r}")
    return matcher


def _tokens(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    rest = expression.rstrip()
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if match is None:  # an unclosed quote
            raise UsageError(f"-k {expression!r}: a quoted phrase is not closed")
        position = match.end()
        if match[1] or match[2]:
            tokens.append(("paren", match[1] or match[2]))
        elif match[3] is not None:
            tokens.append(("word", match[3]))
        elif match[4] in _OPERATORS:
            tokens.append(("operator", match[4]))
        else:
            tokens.append(("word", match[4]))
    return tokens


class _Parser:
    """expression := term ("or" term)*; term := factor ("and" factor)*;
    factor := "not" factor | "(" expression ")" | word"""

    def __init__(self, tokens: list[tuple[str, str]], source: str) -> None:
        self.tokens = tokens
        self.source = source
        self.position = 0
        self.depth = 0

    def error(self, problem: str) -> UsageError:
        return UsageError(
            f"-k {self.source!r}: {problem}",
            hint='use words with and, or, not and parentheses: -k "quorum and not retry"',
        )

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str) -> bool:
        if self.peek() is not None and self.peek() in (("operator", value), ("paren", value)):
            self.position += 1
            return True
        return False

    def expression(self) -> Matcher:
        terms = [self.term()]
        while self.take("or"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else lambda name: any(t(name) for t in terms)

    def term(self) -> Matcher:
        factors = [self.factor()]
        while self.take("and"):
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else lambda name: all(f(name) for f in factors)

    def factor(self) -> Matcher:
        nested = self.peek() in (("operator", "not"), ("paren", "("))
        if nested and self.depth == MAX_DEPTH:
            raise self.error(f"it nests 'not' and parentheses more than {MAX_DEPTH} deep")
        self.depth += nested
        try:
            return self._factor()
        finally:
            self.depth -= nested

    def _factor(self) -> Matcher:
        if self.take("not"):
            inner = self.factor()
            return lambda name: not inner(name)
        if self.take("("):
            inner = self.expression()
            if not self.take(")"):
                raise self.error("a parenthesis is not closed")
            return inner
        token = self.peek()
        if token is None:
            raise self.error("it ends where a word is expected")
        if token[0] != "word":
            raise self.error(f"unexpected {token[1]!r}")
        self.position += 1
        word = token[1].casefold()
        return lambda name: word in name.casefold()
