"""``--record DIR``: any driver, its answers saved as cassettes (see ``drivers.cassettes``)."""

from __future__ import annotations

import threading

from mobctl.drivers.base import Driver, Outcome, TurnProfile, TurnRequest, close, preflight
from mobctl.drivers.cassettes import Recorder


class RecordingDriver:
    """Answers as ``inner`` does, and records each completed or failed turn in ``recorder``,
    which writes the cassettes when the run ends (:meth:`close`)."""

    def __init__(self, inner: Driver, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        outcome = self.inner.run(request, stop)
        self.recorder.add(request, outcome)
        return outcome

    def preflight(self, profiles: list[TurnProfile]) -> list[str]:
        return preflight(self.inner, profiles)

    def close(self) -> None:
        try:
            close(self.inner)
        finally:
            self.recorder.flush()
