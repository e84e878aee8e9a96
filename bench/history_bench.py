"""Benchmark: do commands cost the same however much history a mob has?

Builds two stores, one mob each, with 100 and with 5,000 finished runs (two steps each, the
echo driver, through the library), then times real `mobctl` processes on both:

  run          a new run of the same mob (a registered mob id)
  runs list    the mob's newest runs (20 by default, as `gh run list`)
  runs list    without a mob: the newest runs of every mob
  runs show    one run, named by a unique id prefix
  members list the active members
  events tail  `events tail --run RUN` of one run

Each figure is the median of --repeat timings; the report gives each command's time at both
sizes and the ratio (target <= 1.3x from 100 to 5,000 runs).

Usage: python bench/history_bench.py [--small 100] [--large 5000] [--repeat 5] [--keep DIR]
  --keep DIR keeps (and reuses) the generated stores under DIR.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from mobctl.definition.model import MobDefinition
from mobctl.drivers.base import Drivers
from mobctl.drivers.echo import EchoDriver
from mobctl.engine.runner import FlowRunner
from mobctl.store.directory import DirectoryStore

DEFINITION = """[mob]
id = "hist"

[profiles.w]
model = "claude-sonnet-4-6"

[flows.main.steps.draft]
role = "w"
message = "draft {{ params.topic }}"

[flows.main.steps.review]
role = "w"
message = "review {{ steps.draft }}"
depends_on = ["draft"]
"""


def build(root: Path, runs: int) -> Path:
    """A store whose mob has ``runs`` finished runs (reused when it is already there)."""
    store = root / f"store-{runs}"
    done = store / ".bench-complete"
    if done.exists():
        return store
    mob = root / "hist.toml"
    mob.write_text(DEFINITION)
    mobctl("register", str(mob), "--store", str(store))
    opened = DirectoryStore(store)
    definition: MobDefinition = _registered(opened)
    started = time.perf_counter()
    for index in range(runs):
        runner = FlowRunner(
            opened, definition, "main", {"topic": f"t{index}"}, Drivers(EchoDriver())
        )
        runner.create()
        assert runner.execute().run.status == "completed"
    print(f"   built {runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    done.touch()
    return store


def _registered(store: DirectoryStore) -> MobDefinition:
    from mobctl import api

    return api.registered_definition(store, "hist")  # type: ignore[arg-type]


def mobctl(*args: str) -> float:
    """Seconds one real `mobctl` process takes (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mobctl", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mobctl {' '.join(args)} failed: {done.stderr}")
    return elapsed


def a_run_id(store: Path) -> str:
    runs = sorted((store / "mobs" / "hist" / "runs").glob("*.json"))
    return runs[len(runs) // 2].stem


def commands(store: Path) -> dict[str, list[str]]:
    run_id = a_run_id(store)
    at = ["--store", str(store)]
    return {
        "run": ["run", "hist", "-p", "topic=x", *at],
        "runs list": ["runs", "list", "hist", *at],
        "runs list (all)": ["runs", "list", *at],
        "runs show PREFIX": ["runs", "show", "hist", run_id[:12], *at],
        "members list": ["members", "list", "hist", *at],
        "events tail --run": ["events", "tail", "hist", "--run", run_id, *at],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        small, large = build(root, args.small), build(root, args.large)
        log = large / "mobs" / "hist" / "events.jsonl"
        print(f"history: {args.small} vs {args.large} runs ({log.stat().st_size / 1e6:.1f} MB log)")
        timings: dict[str, tuple[list[float], list[float]]] = {}
        for _ in range(args.repeat):  # interleaved, so that load on a shared machine hits both
            for size, store in ((0, small), (1, large)):
                for name, argv in commands(store).items():
                    timings.setdefault(name, ([], []))[size].append(mobctl(*argv))
        for name, (at_small, at_large) in timings.items():
            low, high = median(at_small), median(at_large)
            print(
                f"   {name:<18} {low * 1000:7.0f} ms at {args.small:>5}  "
                f"{high * 1000:7.0f} ms at {args.large:>5}  {high / low:5.2f}x (target <= 1.3x)"
            )


if __name__ == "__main__":
    main()
