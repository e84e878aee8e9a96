"""Benchmark: the llm driver in real runs (``api.start_run`` with ``--driver llm``, a
directory store, the real ``anthropic`` SDK) against the fake provider server
(tests/fakes/provider_server.py, in a process of its own), which answers every request after
--latency seconds (default 0.5).

Figures, each against a baseline measured in the same run:
  1. one step fanned out to 100 members (``--max-concurrency 100``): the run's wall time
     against the latency floor (target <= 2x), the median of the warm runs and the first run
     in the process (which pays the one-off imports and the SDK's first client);
  2. a flow of 50 steps one after another: the run against 50 bare ``AsyncAnthropic`` calls in
     a loop to the same server (target <= 1.15x);
  3. peak RSS of this process (the fan-out's 100 turns in flight included).

Each time covers the whole ``start_run`` (profiles, preflight, provisioning, the run, its
writes); the SDK is imported before the first (once per process, about a second).

Usage: python bench/llm_bench.py [--latency 0.5] [--members 100] [--chain 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake server lives in tests/, not in the package

from mobctl import api  # noqa: E402
from mobctl.drivers.registry import DriverConfig  # noqa: E402
from mobctl.store.directory import DirectoryStore  # noqa: E402
from tests.fakes.provider_server import env_for  # noqa: E402

MODEL = "claude-haiku-4-5"
HEAD = f'''[mob]
id = "bench"

[profiles.w]
model = "{MODEL}"
runtime_mode = "turn_driven"
'''


def timed_run(directory: Path, steps: str, url: str, members: int, concurrency: int) -> float:
    """Register the mob, spawn its members, and time one run of its flow."""
    mob = directory / "mob.toml"
    mob.write_text(HEAD + steps)
    store = DirectoryStore(directory / "store")
    api.register(store, mob)
    if members > 1:
        api.spawn(store, "bench", "w", count=members)
    started = time.perf_counter()
    outcome = api.start_run(
        store,
        "bench",
        drivers=["llm"],
        config=DriverConfig(env=env_for(url)),
        max_concurrency=concurrency,
    )
    elapsed = time.perf_counter() - started
    assert outcome.status == "completed", outcome.cause
    return elapsed


def fan_out(url: str, members: int, repeat: int) -> list[float]:
    """The fan-out run ``repeat`` times, each with a store of its own: the first pays the
    process's one-off costs (the engine's imports, the SDK's first client)."""
    step = '[flows.main.steps.s]\nrole = "w"\nmessage = "task"\n'
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as directory:
            times.append(timed_run(Path(directory), step, url, members, members))
    return times


def chain(url: str, steps: int) -> float:
    """An explicit root frame: chains inside frames have no depth limit (definition-schema
    §5.6)."""
    text = "".join(
        f'[flows.main.steps.s{n}]\nrole = "w"\nmessage = "task {n}"\n'
        f'[flows.main.root.nodes.s{n}]\nkind = "step"\nstep_id = "s{n}"\n'
        f'depends_on = [{f"{chr(34)}s{n - 1}{chr(34)}" if n else ""}]\ndepends_on_mode = "all"\n'
        for n in range(steps)
    )
    with tempfile.TemporaryDirectory() as directory:
        return timed_run(Path(directory), text, url, 1, 16)


def bare_chain(url: str, steps: int) -> float:
    import anthropic

    async def calls() -> float:
        client = anthropic.AsyncAnthropic(api_key="bench", base_url=url, max_retries=0)
        started = time.perf_counter()
        for n in range(steps):
            await client.messages.create(
                model=MODEL,
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
    parser.add_argument("--repeat", type=int, default=3, help="fan-out runs (the first is cold)")
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
    import anthropic  # noqa: F401  (the SDK's import, about 1 s once per process, is not timed)

    try:
        fans = fan_out(url, args.members, args.repeat)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ours = chain(url, args.chain)
        bare = bare_chain(url, args.chain)
    finally:
        server.stdin.close()
        server.wait(60)
    cold, warm = fans[0], median(fans[1:] or fans)
    print(
        f"fan-out {args.members} members: {warm:.2f} s (median of the warm runs; the first run "
        f"in the process {cold:.2f} s) against the {args.latency:.2f} s floor = "
        f"{warm / args.latency:.2f}x (first run {cold / args.latency:.2f}x; target <= 2x)"
    )
    print(
        f"chain of {args.chain} steps: run {ours:.2f} s, bare SDK calls {bare:.2f} s = "
        f"{ours / bare:.3f}x (target <= 1.15x)"
    )
    print(f"peak RSS with {args.members} turns in flight: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
