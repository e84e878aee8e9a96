"""Events for people (one stable line each, coloured on a terminal) and scripts (JSONL).

A line is ``TIME CURSOR TYPE key=value...``: the time in UTC to the millisecond, the cursor,
the event type, then ``run`` (its first 8 characters), ``step``, ``member`` and the kind's
other fields in the kind's order, each value on one line and cut at 60 characters (``-o wide``:
the whole run id and whole values). Bulky or redundant fields (a whole definition, fence
tokens) are left out; ``-o json`` (JSONL) and ``-o yaml`` (one document per event) have
everything, and ``-o name`` prints the cursors.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from mobctl.cli.output import JSON, NAME, TEXT, WIDE, YAML, short, yaml_text
from mobctl.cli.terminal import json_text, printable
from mobctl.store.models import MobEvent

WIDTH = 60  # a value longer than this is cut, ending in "..."
_HIDDEN = frozenset({"type", "run_id", "step_id", "target", "agent_identity"})
_BULKY = frozenset({"definition", "fence_token", "agent_runtime_id"})
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/@+-")


def json_line(event: MobEvent) -> str:
    """The event as stored, without the log's integrity fields (``hash``, ``batch``)."""
    return json_text(event.model_dump(mode="json"), compact=True)


def _pairs(event: MobEvent, *, run: bool = True, wide: bool = False) -> list[tuple[str, Any]]:
    fields = event.kind.model_extra or {}
    pairs: list[tuple[str, Any]] = []
    if run and isinstance(fields.get("run_id"), str):
        pairs.append(("run", fields["run_id"] if wide else short(fields["run_id"])))
    if fields.get("step_id") is not None:
        pairs.append(("step", fields["step_id"]))
    member = _member(fields)
    if member is not None:
        pairs.append(("member", member))
    return pairs + [(k, v) for k, v in fields.items() if k not in _HIDDEN and k not in _BULKY]


def summary(event: MobEvent) -> str:
    """``CURSOR TYPE key=value...`` without the time and the run (a report about one run
    cites its events so), control characters escaped."""
    pairs = "".join(f" {key}={_value(value, False)}" for key, value in _pairs(event, run=False))
    return printable(f"{event.cursor} {event.kind.type}{pairs}")


def parts(event: MobEvent, *, wide: bool = False) -> list[tuple[str, str]]:
    """The line as (text, style) pieces, control characters escaped; joined, the plain line."""
    kind = event.kind
    pairs = _pairs(event, wide=wide)
    pieces = [
        (_time(event.timestamp), "dim"),
        (f" {event.cursor:>6} ", "dim"),
        (f"{kind.type:<22}" if pairs else kind.type, _style(kind.type)),
    ]
    for key, value in pairs:
        pieces.append((f" {key}=", "dim"))
        pieces.append((_value(value, wide), "bold" if key in ("reason", "cause") else ""))
    return [(printable(text), style) for text, style in pieces]


def plain_line(event: MobEvent, *, wide: bool = False) -> str:
    return "".join(text for text, _ in parts(event, wide=wide))


def _time(stamp: str) -> str:
    """``2026-05-01T12:00:03.123Z`` from the stored microsecond timestamp (others as they are)."""
    if len(stamp) == 27 and stamp.endswith("Z") and stamp[19] == ".":
        return stamp[:23] + "Z"
    return stamp


def _member(fields: dict[str, Any]) -> Any:
    target = fields.get("target")
    if isinstance(target, dict) and "identity" in target:
        return target["identity"]
    return fields.get("agent_identity")


def _value(value: Any, wide: bool) -> str:
    if isinstance(value, str) and value and set(value) <= _BARE:
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if wide or len(text) <= WIDTH else text[: WIDTH - 3] + "..."


def _style(kind: str) -> str:
    if kind.endswith(("_failed", "_violation", "_canceled")):
        return "red"
    if kind.endswith("_completed"):
        return "green"
    if kind.endswith("_skipped"):
        return "yellow"
    if kind.startswith(("member", "mob")):
        return "magenta"
    return "cyan"


class EventPrinter:
    """Prints events to stdout as they come, flushed, in the format asked for; colour only on
    a terminal (not NO_COLOR)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.console: Any = None
        if fmt in (TEXT, WIDE) and sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
            from rich.console import Console

            self.console = Console(highlight=False, soft_wrap=True)

    def __call__(self, event: MobEvent) -> None:
        wide = self.fmt == WIDE
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text.assemble(*parts(event, wide=wide)))
            return
        if self.fmt == JSON:
            text = json_line(event) + "\n"
        elif self.fmt == YAML:
            text = yaml_text(event.model_dump(mode="json"), start=True)
        elif self.fmt == NAME:
            text = f"{event.cursor}\n"
        else:
            text = plain_line(event, wide=wide) + "\n"
        sys.stdout.write(text)
        sys.stdout.flush()
