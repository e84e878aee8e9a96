"""Identifiers that become file names: the slug rule (definition-schema §2) and run ids."""

from __future__ import annotations

import re

from mobctl.errors import UnsafeIdError

SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SLUG_RULE = (
    "ASCII letters, digits, '.', '_' and '-', at most 128, starting with a letter or digit, "
    "not ending with '.', not a Windows device name such as CON or com1"
)
# device names Windows reserves whatever the extension (a store may sit on a shared drive)
_DEVICE = re.compile(r"(?i)(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?")
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SHOWN_CHARS = 64  # of an id echoed in an error message


def is_slug(value: str) -> bool:
    return (
        SLUG.fullmatch(value) is not None
        and not value.endswith(".")
        and _DEVICE.fullmatch(value) is None
    )


def require_slug(value: str, what: str) -> str:
    """``value`` if it may name a file; otherwise :class:`UnsafeIdError` (nothing touched)."""
    if not is_slug(value):
        raise UnsafeIdError(
            f"{what} {shown_id(value)!r} cannot be used as a file name",
            hint=f"use {SLUG_RULE}",
        )
    return value


def shown_id(value: str) -> str:
    """An id as an error message echoes it: a hostile one can be any length, so at most
    :data:`SHOWN_CHARS` characters, then "…"."""
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"


def is_run_id(value: str) -> bool:
    return RUN_ID.fullmatch(value) is not None
