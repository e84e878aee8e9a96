"""Step-level retry backoff for every driver, turns in flight bounded per run, and the usage of
failed turns counted (``mobctl.engine.backoff``, ``turns``, ``accounting``)."""

from __future__ import annotations

import threading
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mobctl.clock import parse_timestamp
from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import Drivers, Failed, Outcome, TurnRequest, Usage
from mobctl.engine.backoff import FIRST, LONGEST, bounded, retry_delay
from mobctl.engine.runner import FlowRunner
from mobctl.store.directory import DirectoryStore
from tests.engine.test_unstorable_outputs import Answers


def definition(steps: dict[str, Any], retries: int = 0) -> MobDefinition:
    return MobDefinition.model_validate(
        {
            "mob": {"id": "s"},
            "profiles": {"w": {"model": "claude-sonnet-4-6", "runtime_mode": "turn_driven"}},
            "limits": {"max_step_retries": retries},
            "flows": {"main": {"steps": steps}},
        }
    )


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=0, max_value=1))
def test_a_retry_waits_between_half_and_all_of_its_ceiling(failures: int, chance: float) -> None:
    ceiling = min(FIRST * 2.0 ** min(failures - 1, 64), LONGEST)
    delay = retry_delay(failures, chance=lambda: chance)
    assert ceiling / 2 <= delay <= ceiling


def test_a_wait_never_passes_the_deadline() -> None:
    assert bounded(5.0, 1200) == 1.2
    assert bounded(5.0, None) == 5.0
    assert bounded(5.0, -10) == 0.0


def test_each_retry_waits_its_backoff_and_failed_turns_count_their_usage(tmp_path: Path) -> None:
    asked: list[int] = []

    def backoff(failures: int) -> float:
        asked.append(failures)
        return 0.3

    store = DirectoryStore(tmp_path / "store")
    failing = Drivers(Answers(Failed("flaky", usage=Usage(5, 1, 0, 0))))
    steps = {"a": {"role": "w", "message": "a"}}
    runner = FlowRunner(store, definition(steps, 2), "main", {}, failing, retry_backoff=backoff)
    runner.create()
    runner.execute()
    assert asked == [1, 2]  # the third failure is the last: no wait after it
    events = [e for e in store.events("s").replay_all() if e.kind.type == "step_dispatched"]
    times = [parse_timestamp(e.timestamp) for e in events]
    assert [e.kind.attempt for e in events] == [1, 2, 3]  # type: ignore[attr-defined]
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    assert all(gap >= 0.3 for gap in gaps), gaps
    run = store.runs("s").get_run(runner.run_id)
    assert run is not None and run.mobctl is not None
    assert run.mobctl.accounting == {
        "members": {
            "w-1": {
                "role": "w",
                "turns": 3,
                "measured_turns": 3,
                "usage": Usage(15, 3, 0, 0).document(),
            }
        },
        "steps": {"a": {"turns": 3, "measured_turns": 3, "usage": Usage(15, 3, 0, 0).document()}},
    }


class Crowd:
    """A driver that notes the most turns in flight at once (each turn waits, at most a few
    seconds, for a second one to be in flight, so a cap of 2 is reached)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.two = threading.Event()

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if self.in_flight >= 2:
                self.two.set()
        self.two.wait(5)
        time.sleep(0.05)
        with self.lock:
            self.in_flight -= 1
        return Failed("done")


def test_max_concurrency_bounds_the_turns_in_flight(tmp_path: Path) -> None:
    crowd = Crowd()
    steps = {f"s{n}": {"role": "w", "message": "m"} for n in range(6)}
    store = DirectoryStore(tmp_path / "store")
    runner = FlowRunner(store, definition(steps), "main", {}, Drivers(crowd), max_concurrency=2)
    runner.create()
    runner.execute()
    assert crowd.peak == 2
    dispatched = [e for e in store.events("s").replay_all() if e.kind.type == "step_dispatched"]
    assert len(dispatched) == 6
