"""Benchmark: the llm driver against the fake provider server (tests/fakes/provider_server.py),
which answers every request after --latency seconds (default 0.5), through the real
``anthropic`` SDK.

Figures, each against a baseline measured in the same run:
  1. one turn fanned out to 100 members at once: wall time against the latency floor
     (target <= 2x);
  2. a chain of 50 turns one after another: the driver against 50 bare ``AsyncAnthropic``
     calls in a loop to the same server (target <= 1.15x);
  3. peak RSS of this process with 100 turns in flight.

The turns go straight to ``LlmDriver.run``; once the engine passes profiles to drivers, the
fan-out and chain belong in a flow run (the engine's own overhead is engine_bench.py's).

Usage: python bench/llm_bench.py [--latency 0.5] [--members 100] [--chain 50]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake server lives in tests/, not in the package

from mobctl.drivers.base import Completed, Member, TurnProfile, TurnRequest  # noqa: E402
from mobctl.drivers.llm.driver import LlmDriver  # noqa: E402
from tests.fakes.provider_server import env_for  # noqa: E402

PROFILE = TurnProfile(name="w", model="claude-haiku-4-5", provider="anthropic")


def turn(n: int) -> TurnRequest:
    return TurnRequest(
        kind="step",
        mob_id="bench",
        run_id="r",
        flow_id="main",
        step_id="s",
        member=Member(f"w-{n}", 0, "w"),
        message=f"task {n}",
        timeout_ms=120_000,
        profile=PROFILE,
    )


def fan_out(driver: LlmDriver, members: int) -> float:
    outcomes: list[object] = []
    threads = [
        threading.Thread(target=lambda n=n: outcomes.append(driver.run(turn(n), threading.Event())))
        for n in range(members)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert len(outcomes) == members
    assert all(isinstance(o, Completed) for o in outcomes)
    return elapsed


def chain(driver: LlmDriver, steps: int) -> float:
    started = time.perf_counter()
    for n in range(steps):
        assert isinstance(driver.run(turn(n), threading.Event()), Completed)
    return time.perf_counter() - started


def bare_chain(url: str, steps: int) -> float:
    import anthropic

    async def calls() -> float:
        client = anthropic.AsyncAnthropic(api_key="bench", base_url=url, max_retries=0)
        started = time.perf_counter()
        for n in range(steps):
            await client.messages.create(
                model=PROFILE.model,
                max_tokens=8192,
                messages=[{"role": "user", "content": f"task {n}"}],
            )
        elapsed = time.perf_counter() - started
        await client.close()
        return elapsed

    return asyncio.run(calls())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--chain", type=int, default=50)
    args = parser.parse_args()
    # the server runs in a process of its own: it must not share this one's GIL
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.provider_server", str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    url = server.stdout.readline().strip()
    driver = LlmDriver(env=env_for(url))
    try:
        driver.preflight([PROFILE])  # as a run does: the SDK is imported before any turn
        fan = fan_out(driver, args.members)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ours = chain(driver, args.chain)
        bare = bare_chain(url, args.chain)
    finally:
        driver.close()
        server.stdin.close()
        server.wait(60)
    print(
        f"fan-out {args.members} members: {fan:.2f} s against the {args.latency:.2f} s floor = "
        f"{fan / args.latency:.2f}x (target <= 2x)"
    )
    print(
        f"chain of {args.chain}: driver {ours:.2f} s, bare SDK calls {bare:.2f} s = "
        f"{ours / bare:.3f}x (target <= 1.15x)"
    )
    print(f"peak RSS with {args.members} turns in flight: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
