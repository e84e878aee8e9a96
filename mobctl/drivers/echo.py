"""``echo``: the turn's output is its rendered message (dry runs)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mobctl.drivers.base import Completed, Outcome, TurnRequest

if TYPE_CHECKING:
    from mobctl.drivers.registry import DriverConfig


class EchoDriver:
    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        return Completed(request.message_text())


def factory(argument: str, config: DriverConfig) -> EchoDriver:
    if argument:
        from mobctl.drivers.registry import invalid

        raise invalid(f"echo:{argument}")
    return EchoDriver()
