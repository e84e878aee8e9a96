"""Retries of one model call: exponential backoff with jitter on transient failures,
``Retry-After`` honoured, never past the turn's deadline.

The SDKs' own retries are switched off (``max_retries=0``, no ``retry_options``): they know
neither the turn's deadline nor its cancel, and they would wait out a ``Retry-After`` that
the turn cannot afford.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from mobctl.drivers.llm.conversation import ProviderFailure

T = TypeVar("T")

BASE_DELAY = 0.5  # seconds before the first retry (before jitter)
MAX_DELAY = 20.0
MAX_ATTEMPTS = 8
_RANDOM = random.Random()


@dataclass(frozen=True)
class Attempt:
    """A failed call that was retried: for the transcript."""

    status: int | None
    message: str
    waited_ms: int
    retry_after: float | None


def backoff(retry: int) -> float:
    """The wait before retry number ``retry`` (1-based): exponential, with jitter in
    [50%, 100%] so that many turns throttled together do not retry together."""
    delay: float = min(MAX_DELAY, BASE_DELAY * 2 ** (retry - 1))
    return delay * _RANDOM.uniform(0.5, 1.0)


async def with_retries(
    call: Callable[[float], Awaitable[T]],
    *,
    deadline: float,
    call_timeout: float | None,
    attempts: list[Attempt],
) -> T:
    """``call(timeout)`` until it succeeds, fails for good, or the deadline forbids a retry
    (``deadline`` is a ``time.monotonic()`` value). Each failed attempt joins ``attempts``."""
    retry = 0
    while True:
        remaining = deadline - time.monotonic()
        # the turn's stop cancels the call at its deadline; the timeout is only a safety net
        timeout = min(call_timeout, remaining + 5) if call_timeout else remaining + 5
        try:
            return await call(max(timeout, 0.1))
        except ProviderFailure as failure:
            retry += 1
            if not failure.transient or retry >= MAX_ATTEMPTS:
                raise
            wait = failure.retry_after if failure.retry_after is not None else backoff(retry)
            if time.monotonic() + wait >= deadline:
                raise ProviderFailure(
                    f"{failure.message} (a retry after {wait:.1f}s would pass the turn's deadline)",
                    status=failure.status,
                    request_id=failure.request_id,
                ) from failure
            attempts.append(
                Attempt(failure.status, failure.message, round(wait * 1000), failure.retry_after)
            )
            await asyncio.sleep(wait)


def retry_after(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def is_transient(status: int | None) -> bool:
    """429 (rate limited), 408, overloaded (529) and every 5xx; None = no HTTP answer."""
    return status is None or status in (408, 429) or status >= 500


def api_message(body: object, fallback: str) -> str:
    """The provider's own error text from an error body (``{"error": {"message": ...}}``)."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return fallback
