"""The event log's hash chain (store contract §8.4): each record's hash commits to every record
before it, so a record edited, deleted or moved after the fact does not verify."""

from __future__ import annotations

import hashlib

GENESIS = "0" * 64  # the predecessor of a new or cleared log's first record


def line_hash(prev: str, body: bytes) -> str:
    """``sha256(prev + "\\n" + body)``: ``prev`` the predecessor's hash (64 lowercase hex),
    ``body`` the record's canonical JSON without its ``hash`` member."""
    return hashlib.sha256(prev.encode("ascii") + b"\n" + body).hexdigest()
