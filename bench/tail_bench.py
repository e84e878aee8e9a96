"""Benchmark: `mobctl events tail --follow` in one process, appends in another.

Figures (each against a baseline measured in the same run, on the same appends):
  1. latency from an append (the moment this process calls `append`) to the event's line on the
     follower's stdout: p50, p95 and max over N events appended at random moments (target p95
     under 250 ms with the default settings);
  2. CPU used by an idle follower over ~10 s, from /proc/<pid>/schedstat (or utime + stime of
     /proc/<pid>/stat) before and after (target under 2% of one core).
The baseline is a bare follower: a loop that stats the log at the same interval and prints the
new complete lines, with no parsing, verification or formatting.

Usage: python bench/tail_bench.py [--events N] [--idle SECONDS] [--prefill N]
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mobctl.api.events import FOLLOW_POLL_INTERVAL
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import EventKind, NewMobEvent

MOB = "bench"
BARE = """
import os, sys, time
path, interval = sys.argv[1], float(sys.argv[2])
position, seen = os.path.getsize(path), None
while True:
    info = os.stat(path)
    if (info.st_ino, info.st_size, info.st_mtime_ns) != seen:
        seen = (info.st_ino, info.st_size, info.st_mtime_ns)
        with open(path, "rb") as handle:
            handle.seek(position)
            data = handle.read()
        end = data.rfind(b"\\n") + 1
        if end:
            sys.stdout.buffer.write(data[:end])
            sys.stdout.flush()
            position += end
    time.sleep(interval)
"""


class Follower:
    """A child process whose stdout lines are timestamped by a reader thread."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[tuple[float, bytes]] = queue.Queue()
        self.latencies: list[float] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.perf_counter(), line))

    def expect(self, marker: bytes, since: float) -> None:
        arrived, line = self.lines.get(timeout=30)
        assert marker in line, (self.name, marker, line)
        self.latencies.append(arrived - since)

    def cpu_seconds(self) -> float:
        """CPU time so far: /proc/<pid>/schedstat (nanoseconds) where the kernel has it, else
        utime + stime from /proc/<pid>/stat (clock ticks, 10 ms: too coarse for an idle loop)."""
        schedstat = Path(f"/proc/{self.process.pid}/schedstat")
        if schedstat.exists():
            return int(schedstat.read_text().split()[0]) / 1e9
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--prefill", type=int, default=0, help="events in the log beforehand")
    args = parser.parse_args()
    mobctl = shutil.which("mobctl")
    command = [mobctl] if mobctl else [sys.executable, "-m", "mobctl"]
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        location = Path(tmp) / "store"
        log = DirectoryStore(location).events(MOB)
        for start in range(0, args.prefill, 1000):
            count = min(1000, args.prefill - start)
            log.append_batch([NewMobEvent(mob_id=MOB, kind=EventKind(type="old"))] * count)
        log.append(NewMobEvent(mob_id=MOB, kind=EventKind(type="ready")))
        ours = Follower(
            "mobctl",
            [
                *command,
                "events",
                "tail",
                MOB,
                "-f",
                "--json",
                "--limit",
                "1",
                "--store",
                str(location),
            ],
        )
        bare = Follower(
            "bare", [sys.executable, "-c", BARE, str(log.log), str(FOLLOW_POLL_INTERVAL)]
        )
        ours.lines.get(timeout=30)  # the history line: mobctl is following now
        time.sleep(1)  # the bare loop has started too
        events = [
            NewMobEvent(mob_id=MOB, kind=EventKind(type="step_completed", seq=i))
            for i in range(args.events)
        ]
        for i, item in enumerate(events):
            time.sleep(rng.uniform(0, 0.25))  # appends at random moments of the poll cycle
            began = time.perf_counter()
            log.append(item)
            marker = f'"seq":{i}}}'.encode()
            ours.expect(marker, began)
            bare.expect(marker, began)

        busy = {f.name: f.cpu_seconds() for f in (ours, bare)}  # including start-up
        start = {f.name: f.cpu_seconds() for f in (ours, bare)}
        wall = time.perf_counter()
        time.sleep(args.idle)
        wall = time.perf_counter() - wall
        idle = {f.name: (f.cpu_seconds() - start[f.name]) / wall for f in (ours, bare)}
        for follower in (ours, bare):
            follower.stop()

    def ms(value: float) -> str:
        return f"{value * 1000:.0f} ms"

    p95, bare_p95 = percentile(ours.latencies, 0.95), percentile(bare.latencies, 0.95)
    print(
        f"poll interval {FOLLOW_POLL_INTERVAL * 1000:.0f} ms (mobctl's default), {args.events} events "
        f"appended to a log of {args.prefill + 1:,}"
    )
    print(
        f"1. append -> printed line: mobctl p50 {ms(statistics.median(ours.latencies))}, p95 {ms(p95)}, max {ms(max(ours.latencies))}; "
        f"bare loop p50 {ms(statistics.median(bare.latencies))}, p95 {ms(bare_p95)}; p95 ratio {p95 / bare_p95:.2f}x (target p95 < 250 ms)"
    )
    print(
        f"2. idle follower CPU over {wall:.1f} s: mobctl {idle['mobctl']:.3%} of one core, bare loop {idle['bare']:.3%}, "
        f"ratio {idle['mobctl'] / idle['bare']:.1f}x (target < 2%); for comparison, start-up plus the {args.events} events took mobctl {busy['mobctl']:.2f} s of CPU, the bare loop {busy['bare']:.2f} s"
    )


if __name__ == "__main__":
    main()
