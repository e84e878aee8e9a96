"""What reaches a terminal: text from the store, a definition or an agent is escaped first.

A failure reason is whatever an agent printed on stderr, and a store or a definition may come
from someone else, so none of it is written raw: a control character in it could retitle the
window, clear the screen or forge output (``ESC]0;...BEL``, ``ESC[2J``). :func:`printable`
escapes them the way JSON does (``\\u001b``, ``\\n``), as ``events tail`` always has.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from typing import Any

# C0, DEL and C1 controls; the Unicode line and paragraph separators; the bidirectional
# overrides and isolates ("Trojan Source"); lone surrogates (undecodable bytes in argv or a
# "\udcff" escape in JSON), which no terminal shows and no UTF-8 stream can write
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_CONTROL_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    return _SHORT.get(char) or f"\\u{ord(char):04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character escaped (``\\u001b``, ``\\n``, ``\\t``).

    ``keep_newlines`` keeps the line breaks of a block whose lines are its structure (a JSON
    or TOML document, a multi-line message). Inside JSON strings the escapes are JSON's own,
    so a JSON document stays the same JSON."""
    return (_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL).sub(_escape, text)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character that :func:`printable` escapes."""
    return _CONTROL.search(text) is not None


def say(text: str, *, err: bool = False) -> None:
    """Write one line for people (stdout, or stderr with ``err``), control characters escaped."""
    (sys.stderr if err else sys.stdout).write(printable(text) + "\n")


def json_text(value: Any, *, compact: bool = False) -> str:
    """``value`` as JSON for stdout (indented, or one line with ``compact``): non-ASCII kept
    when stdout writes UTF-8, else escaped, so the document stays valid JSON whatever the
    locale; control characters escaped as JSON escapes them."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        utf8 = False
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 2}
    return printable(json.dumps(value, ensure_ascii=not utf8, **layout), keep_newlines=True)
