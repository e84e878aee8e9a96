"""Failure reasons: bounded before they are recorded.

A reason is written several times (the target's and the step's events, the failure ledger),
and a driver's reason is whatever its command printed last on stderr, so an unbounded reason
could make a record too large for the store.
"""

from __future__ import annotations

REASON_LIMIT = 4096  # bytes of UTF-8, the marker included


def clip_reason(reason: str) -> str:
    """``reason`` if it fits in :data:`REASON_LIMIT` bytes of UTF-8; else its head, cut at a
    character boundary, and a marker with the full size, in that many bytes. Clipping twice
    changes nothing (a step's reason may be its one target's reason)."""
    data = reason.encode("utf-8", "surrogatepass")
    if len(data) <= REASON_LIMIT:
        return reason
    marker = f"… [clipped, {len(data)} bytes]"
    keep = REASON_LIMIT - len(marker.encode())
    return data[:keep].decode("utf-8", "ignore") + marker  # "ignore": a character cut in two
