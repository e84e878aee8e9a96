"""Benchmark: long `repeat_until` loops (durable directory store, 10 KB outputs).

Figure, against a baseline measured in the same run: the cost of one iteration at iteration
300 against the cost at iteration 10 (target <= 1.3x). An iteration's cost is the time from
the start of its turn to the start of the next iteration's turn: its output recorded, the body
frame sealed, `until` evaluated, the next body frame started and dispatched. Each figure is the
median over the 20 iterations around it (robust to the journal's occasional fold into the base
snapshot, whose cost is amortised: the mean over the whole run is printed too), then the median
over the rounds.

Usage: python bench/loop_bench.py [--iterations 320] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path
from statistics import mean, median

from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import Completed, Drivers, Outcome, TurnRequest
from mobctl.engine import members
from mobctl.engine.runner import FlowRunner
from mobctl.store.directory import DirectoryStore

PAD = "x" * 10_000
WINDOW = 20


def loop(iterations: int) -> MobDefinition:
    step = {
        "role": "w",
        "message": "x",
        "output_format": "json",
        "dispatch_mode": "one_to_one",
        "collection_policy": {"type": "any"},
    }
    body = {
        "nodes": {"n": {"kind": "step", "step_id": "s", "depends_on": [], "depends_on_mode": "all"}}
    }
    node = {
        "kind": "repeat_until",
        "loop_id": "l",
        "depends_on": [],
        "depends_on_mode": "all",
        "max_iterations": iterations,
        "until": {"op": "eq", "path": "steps.s.done", "value": True},
        "body": body,
    }
    return MobDefinition.model_validate(
        {
            "mob": {"id": "bench"},
            "profiles": {"w": {"model": "claude-sonnet-4-6", "runtime_mode": "turn_driven"}},
            "flows": {"main": {"steps": {"s": step}, "root": {"nodes": {"l": node}}}},
        }
    )


class Clocked:
    """A driver that notes when each iteration's turn starts and answers 10 KB of JSON."""

    def __init__(self, iterations: int) -> None:
        self.last = iterations - 1
        self.started: dict[int, float] = {}

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        self.started[request.iteration] = time.perf_counter()
        done = request.iteration == self.last
        return Completed(json.dumps({"done": done, "pad": PAD}))


def run_loop(iterations: int) -> list[float]:
    """Milliseconds per iteration, by iteration (the last has no successor)."""
    definition = loop(iterations)
    driver = Clocked(iterations)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        store = DirectoryStore(Path(tmp) / "store")
        members.spawn(store, definition, "w")
        runner = FlowRunner(store, definition, "main", {}, Drivers(driver))
        runner.create()
        result = runner.execute()
        if result.run.status != "completed":
            event = result.run.mobctl.terminal_event if result.run.mobctl else None
            reason = (event or {}).get("reason", result.cause)
            raise SystemExit(f"the loop did not complete ({result.run.status}): {reason}")
    times = [driver.started[k] for k in range(iterations)]
    return [(b - a) * 1000 for a, b in pairwise(times)]


def around(costs: list[float], iteration: int) -> float:
    start = max(iteration - WINDOW // 2, 0)
    return median(costs[start : start + WINDOW])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=320, help="per run (>= 310)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    args = parser.parse_args()
    early, late, whole = [], [], []
    for _ in range(args.repeat):
        costs = run_loop(args.iterations)
        early.append(around(costs, 10))
        late.append(around(costs, 300))
        whole.append(mean(costs))
    at_10, at_300 = median(early), median(late)
    print(
        f"loop with 10 KB outputs: {at_10:.2f} ms/iteration at iteration 10, {at_300:.2f} "
        f"ms/iteration at iteration 300: {at_300 / at_10:.2f}x (target <= 1.3x; median of "
        f"{WINDOW} iterations, {args.repeat} rounds)"
    )
    print(f"   mean over all {args.iterations} iterations, folds included: {median(whole):.2f} ms")


if __name__ == "__main__":
    main()
