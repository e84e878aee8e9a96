"""Time as the store records it: RFC 3339 UTC with microseconds (store contract §2.3)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds and ``Z``."""
    moment = (moment or now()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Accepts 0-9 fractional digits and any offset (``Z`` included)."""
    try:  # the fast path: what mobctl writes (readers check every event's time)
        value = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    head, _, rest = text.partition(".")
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, tail = rest[:digits], rest[digits:]
        text = f"{head}.{(fraction + '000000')[:6]}{tail}"
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
