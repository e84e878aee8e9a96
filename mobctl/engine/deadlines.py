"""Turn deadlines: one watcher thread fires each turn's timeout (a ``threading.Timer`` per turn
would start a thread per turn, which costs more than an echo turn itself)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._keys = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, seconds: float, fire: Callable[[], None]) -> int:
        """Call ``fire`` (on the watcher thread) in ``seconds`` unless canceled first."""
        with self._changed:
            key = next(self._keys)
            heapq.heappush(self._heap, (time.monotonic() + seconds, key, fire))
            self._live.add(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="deadlines", daemon=True)
                self._thread.start()
            self._changed.notify()
            return key

    def cancel(self, key: int) -> None:
        with self._changed:
            self._live.discard(key)
            while self._heap and self._heap[0][1] not in self._live:
                heapq.heappop(self._heap)  # drop canceled entries that come first

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _watch(self) -> None:
        while True:
            with self._changed:
                while not self._closed and not self._heap:
                    self._changed.wait()
                if self._closed:
                    return
                when, key, fire = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._changed.wait(delay)
                    continue
                heapq.heappop(self._heap)
                if key not in self._live:
                    continue
                self._live.discard(key)
            fire()
