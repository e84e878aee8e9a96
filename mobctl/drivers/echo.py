"""``echo``: the turn's output is its rendered message (dry runs)."""

from __future__ import annotations

import threading

from mobctl.drivers.base import Completed, Outcome, TurnRequest


class EchoDriver:
    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        return Completed(request.message_text())
