"""Failure reasons: bounded and encodable before they are recorded.

A reason is written several times (the target's and the step's events, the failure ledger),
and a driver's reason is whatever its command printed last on stderr, so an unbounded reason
could make a record too large for the store, and a lone surrogate in it (which UTF-8 cannot
encode) would make it one the store cannot write at all.
"""

from __future__ import annotations

REASON_LIMIT = 4096  # bytes of UTF-8, the marker included


def encodable(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def clip_reason(reason: str) -> str:
    """``reason``, :func:`encodable`, if it fits in :data:`REASON_LIMIT` bytes of UTF-8; else
    its head, cut at a character boundary, and a marker with the full size, in that many bytes.
    Clipping twice changes nothing (a step's reason may be its one target's reason)."""
    reason = encodable(reason)
    data = reason.encode("utf-8")
    if len(data) <= REASON_LIMIT:
        return reason
    marker = f"… [clipped, {len(data)} bytes]"
    keep = REASON_LIMIT - len(marker.encode())
    return data[:keep].decode("utf-8", "ignore") + marker  # "ignore": a character cut in two
