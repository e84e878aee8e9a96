"""Benchmark: the flow engine (echo driver, durable directory store).

Figures, each against a baseline measured in the same run:
  1. a 1000-step linear flow: ms per step, against LangGraph with its SQLite checkpointer
     running the same 1000-node linear graph (../shared/bench/langgraph_linear.py, run with the
     Python of a separate virtual environment: --langgraph-python, default $LANGGRAPH_PYTHON);
  2. scaling: ms per step at 1000 steps against ms per step at 100 steps (target <= 1.3x);
  3. one step fanned out to 50 members against a chain of 50 single-member steps.

Usage: python bench/engine_bench.py [--steps 1000] [--repeat 3] [--langgraph-python PATH]

LangGraph goes in a virtual environment of its own (it is not a dependency of mobctl):
  python3 -m venv /tmp/lgvenv && /tmp/lgvenv/bin/pip install langgraph langgraph-checkpoint-sqlite
  python bench/engine_bench.py --langgraph-python /tmp/lgvenv/bin/python
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from statistics import median

from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import Drivers
from mobctl.drivers.echo import EchoDriver
from mobctl.engine import members
from mobctl.engine.runner import FlowRunner
from mobctl.store.directory import DirectoryStore

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def linear(n: int) -> MobDefinition:
    """An explicit root frame: chains inside frames have no depth limit (definition-schema §5.6)."""
    steps = {f"s{i}": {"role": "w", "message": f"step {i}"} for i in range(n)}
    nodes = {
        f"s{i}": {
            "kind": "step",
            "step_id": f"s{i}",
            "depends_on": [f"s{i - 1}"] if i else [],
            "depends_on_mode": "all",
        }
        for i in range(n)
    }
    return MobDefinition.model_validate(
        {
            "mob": {"id": "bench"},
            "profiles": {"w": {"model": "claude-sonnet-4-6", "runtime_mode": "turn_driven"}},
            "flows": {"main": {"steps": steps, "root": {"nodes": nodes}}},
        }
    )


def fan(n_members: int, sequential: bool) -> MobDefinition:
    if sequential:  # a chain: each step waits for the one before
        steps = {
            f"s{i}": {
                "role": "w",
                "message": "x",
                "dispatch_mode": "one_to_one",
                **({"depends_on": [f"s{i - 1}"]} if i else {}),
            }
            for i in range(n_members)
        }
    else:
        steps = {"all": {"role": "w", "message": "x"}}
    return MobDefinition.model_validate(
        {
            "mob": {"id": "bench"},
            "profiles": {"w": {"model": "claude-sonnet-4-6", "runtime_mode": "turn_driven"}},
            "flows": {"main": {"steps": steps}},
        }
    )


def run_flow(definition: MobDefinition, members_count: int = 1) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        store = DirectoryStore(Path(tmp) / "store")
        for _ in range(members_count):
            members.spawn(store, definition, "w")
        runner = FlowRunner(store, definition, "main", {}, Drivers(EchoDriver()))
        runner.create()
        start = time.perf_counter()
        result = runner.execute()
        elapsed = time.perf_counter() - start
        assert result.run.status == "completed", result
        return elapsed, len(definition.flows["main"].steps)


def langgraph(python: str, steps: int) -> float:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        out = subprocess.run(
            [python, str(SHARED / "bench" / "langgraph_linear.py"), str(steps), f"{tmp}/lg.sqlite"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return float(out.split("ms_per_step=")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--langgraph-python", default=os.environ.get("LANGGRAPH_PYTHON"))
    args = parser.parse_args()
    big, small, lg, fan_ms, seq_ms = [], [], [], [], []
    for _ in range(args.repeat):  # interleaved, so that load on a shared machine hits both
        big_s, big_n = run_flow(linear(args.steps))
        small_s, small_n = run_flow(linear(args.steps // 10))
        big.append(big_s * 1000 / big_n)
        small.append(small_s * 1000 / small_n)
        if args.langgraph_python:
            lg.append(langgraph(args.langgraph_python, args.steps))
        fan_ms.append(run_flow(fan(50, sequential=False), members_count=50)[0] * 1000)
        seq_ms.append(run_flow(fan(50, sequential=True), members_count=50)[0] * 1000)
    per_big, per_small = median(big), median(small)
    print(
        f"1. mobctl linear flow: {per_big:.2f} ms/step at {args.steps} steps (median of {args.repeat})"
    )
    if lg:
        print(
            f"   LangGraph + SqliteSaver: {median(lg):.2f} ms/step; "
            f"mobctl/LangGraph = {per_big / median(lg):.2f} (target <= 0.8)"
        )
    else:
        print("   LangGraph: skipped (pass --langgraph-python or set LANGGRAPH_PYTHON)")
    print(
        f"2. scaling: {per_small:.2f} ms/step at {args.steps // 10} steps; "
        f"{per_big / per_small:.2f}x at {args.steps} (target <= 1.3x)"
    )
    print(
        f"3. one step fanned out to 50 members: {median(fan_ms):.0f} ms; a chain of 50 "
        f"single-member steps: {median(seq_ms):.0f} ms ({median(seq_ms) / median(fan_ms):.1f}x)"
    )


if __name__ == "__main__":
    main()
