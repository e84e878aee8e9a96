"""Identifiers that become file names: the slug rule (definition-schema §2)."""

from __future__ import annotations

import re

SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SLUG_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128"


def is_slug(value: str) -> bool:
    return SLUG.fullmatch(value) is not None and value not in (".", "..")
