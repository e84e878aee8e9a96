"""Parsing what people type: params, durations, times and event queries (the CLI's own:
the library takes values)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from mobctl.api.events import EventQuery
from mobctl.canonical import OutOfRangeNumber, strict_json
from mobctl.clock import TimeOutOfRange, parse_timestamp
from mobctl.clock import now as clock
from mobctl.engine.outputs import MalformedOutput, ensure_storable
from mobctl.errors import UsageError
from mobctl.ids import shown_id


def unstorable_params(params: dict[str, Any]) -> None:
    """``UsageError`` when the store could not write ``params`` (a lone surrogate, from bytes
    that are not UTF-8; nesting too deep), as ``FlowRunner.create`` judges them."""
    try:
        ensure_storable(params)
    except MalformedOutput as exc:
        raise UsageError(
            f"the run's params cannot be stored: {exc}", hint="pass params as UTF-8 text"
        ) from None


def parse_params(
    pairs: list[str], document: str | None, typed: list[str] | None = None
) -> dict[str, Any]:
    """``--params JSON|@file.json``, then ``-P KEY=JSON`` (``typed``: the value is JSON), then
    ``-p KEY=VALUE`` (the value is always a string, as gh's ``-f``); a later one wins a key."""
    params: dict[str, Any] = {}
    if document:
        params.update(_params_document(document))
    for pair in typed or []:
        key, raw = _pair("-P", pair)
        try:
            params[key] = strict_json(raw)
        except OutOfRangeNumber as exc:  # valid JSON, meant as a number: text would surprise
            raise UsageError(
                f"-P {key}: {exc}", hint="to pass it as text, use -p KEY=VALUE"
            ) from exc
        except ValueError as exc:
            raise UsageError(
                f"-P {key}: the value is not JSON: {exc}",
                hint="-P takes JSON (-P n=3, -P 'flags=[\"a\"]'); -p KEY=VALUE passes text",
            ) from exc
    for pair in pairs:
        key, raw = _pair("-p", pair)
        params[key] = raw
    unstorable_params(params)  # before anything is written, even the definition
    return params


def _pair(option: str, pair: str) -> tuple[str, str]:
    key, equals, raw = pair.partition("=")
    if not equals or not key:
        value = "KEY=JSON" if option == "-P" else "KEY=VALUE"
        raise UsageError(f"{option} takes {value}, not {pair!r}")
    return key, raw


PARAMS_FILE_BYTES = 64 * 1024 * 1024  # far beyond any record cap; /dev/zero never ends


def _params_document(document: str) -> dict[str, Any]:
    text = document
    if document.startswith("@"):
        try:
            with Path(document[1:]).open("rb") as file:  # a pipe too: @/dev/stdin
                data = file.read(PARAMS_FILE_BYTES + 1)
            if len(data) > PARAMS_FILE_BYTES:
                raise UsageError(
                    f"params file {document[1:]} is larger than "
                    f"{PARAMS_FILE_BYTES // 1024 // 1024} MiB"
                )
            text = data.decode("utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read params file {document[1:]}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise UsageError(f"params file {document[1:]} is not UTF-8: {exc}") from exc
        except ValueError:  # a NUL in the name: no file can have it
            raise UsageError(f"cannot read params file {document[1:]!r}") from None
    try:
        value = strict_json(text)
    except ValueError as exc:
        raise UsageError(f"--params is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError("--params must be a JSON object")
    return value


_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_SECONDS = re.compile(_NUMBER)
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")
_PARTS = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h|d))+")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_DURATION_MS = 36_500 * 86_400_000  # 100 years: a longer one means "never", and clamps here
DURATION_HINT = "use seconds (30) or a duration such as 500ms, 30s, 1m30s, 2h or 1d"


def _duration_ms(text: str) -> int | None:
    """The milliseconds of ``30`` (seconds), ``30s``, ``1m30s``, ``2h``, ``1d``..., at most
    100 years however large the number (exact: no float to overflow); None when ``text`` is
    not a duration."""
    try:
        if _SECONDS.fullmatch(text):
            total = Decimal(text) * 1000
        elif _PARTS.fullmatch(text):
            parts = _PART.findall(text)
            total = sum((Decimal(n) * _UNIT_MS[unit] for n, unit in parts), Decimal(0))
        else:
            return None
    except ArithmeticError:  # beyond even Decimal's exponent range: huge
        return MAX_DURATION_MS
    return int(min(total, Decimal(MAX_DURATION_MS)))


def parse_duration_ms(text: str, option: str = "duration") -> int:
    """A duration option's milliseconds (see :func:`_duration_ms`); a usage error naming
    ``option`` for anything else."""
    milliseconds = _duration_ms(text.strip())
    if milliseconds is None:
        raise UsageError(f"{option} {shown_id(text)!r} is not a duration", hint=DURATION_HINT)
    return milliseconds


_TYPE_PATTERN = re.compile(r"[a-z0-9_*?\[\]!-]+")


def parse_time(text: str, option: str, *, now: datetime | None = None) -> datetime:
    """RFC 3339 (UTC when it has no offset), or a duration (``30``, ``10m``, ``1d``) before
    now."""
    ago = _duration_ms(text.strip())
    if ago is not None:
        return (now or clock()) - timedelta(milliseconds=ago)
    try:
        return parse_timestamp(text)
    except TimeOutOfRange:
        raise UsageError(
            f"{option} {text!r} is out of range: in UTC it falls before year 1 or after 9999"
        ) from None
    except ValueError:
        raise UsageError(
            f"{option} {shown_id(text)!r} is neither a time nor a duration",
            hint="use RFC 3339 (2026-05-01T12:00:00Z) or a duration before now "
            "(30, 30s, 1m30s, 2h, 1d)",
        ) from None


def event_query(
    *,
    run: str | None = None,
    step: str | None = None,
    types: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    now: datetime | None = None,
) -> EventQuery:
    """The filters of ``events tail``: ``types`` are comma-separated globs over event types."""
    patterns = tuple(p.strip() for value in types or [] for p in value.split(","))
    for pattern in patterns:
        if not _TYPE_PATTERN.fullmatch(pattern):
            shown = "an empty pattern" if not pattern else f"the pattern {pattern!r}"
            raise UsageError(
                f"--type has {shown}; event types are lowercase letters, digits and '_'",
                hint="patterns may use * ? [...], comma-separated: --type 'flow_*,step_failed'",
            )
    start = parse_time(since, "--since", now=now) if since else None
    end = parse_time(until, "--until", now=now) if until else None
    if start is not None and end is not None and start > end:
        raise UsageError(f"--since {since} is after --until {until}: nothing can match")
    return EventQuery(run_id=run, step_id=step, types=patterns, since=start, until=end)
