"""Time as the store records it: RFC 3339 UTC with microseconds (store contract §2.3)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds and ``Z``."""
    moment = (moment or now()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TimeOutOfRange(ValueError):
    """A time with an offset that puts it, in UTC, before year 1 or after year 9999: a
    datetime cannot hold it, so it could be neither compared nor written."""


def parse_timestamp(text: str) -> datetime:
    """Accepts 0-9 fractional digits and any offset (``Z`` included); a time outside what a
    datetime holds in UTC is :class:`TimeOutOfRange`."""
    try:  # the fast path: what mobctl writes (readers check every event's time)
        value = datetime.fromisoformat(text)
    except ValueError:
        head, _, rest = text.partition(".")
        if rest:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            fraction, tail = rest[:digits], rest[digits:]
            text = f"{head}.{(fraction + '000000')[:6]}{tail}"
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.year in (1, 9999):  # an offset may carry it out of range in UTC
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise TimeOutOfRange("out of range in UTC") from None
    return value
