"""Benchmark: the directory store against raw baselines measured in the same run.

Figures (each with its baseline and ratio):
  1. durable single-event append vs a raw `os.write` + `os.fsync` loop (target >= 50%);
  2. `append_batch` of 100 events vs single appends, in events/s (target >= 20x);
  3. durable CAS on a run snapshot vs raw lock + temp write + fsync + replace (target >= 50%);
  4. `poll` over a 100k-event log (events/s), and reading the last 100 events of a 10k and a
     100k log (must not grow with the log: tail reads seek);
  5. the same single-append workload on SQLite (WAL, synchronous=FULL), as a peer reference.

Usage: python bench/store_bench.py [--appends N] [--big N]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mobctl.store.directory import DirectoryStore
from mobctl.store.models import EventKind, FlowRunState, MobRun, NewMobEvent

MOB = "bench"
PAYLOAD = {"run_id": "4f0c1f8e-2d7b-4c1a-9a51-0c6f8e2d7b4c", "step_id": "draft"}


def rate(count: int, action: Callable[[int], object], repeats: int = 3) -> float:
    """Operations per second (median of ``repeats`` timed loops of ``count``)."""
    results = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(count):
            action(i)
        results.append(count / (time.perf_counter() - start))
    return statistics.median(results)


def event(i: int) -> NewMobEvent:
    return NewMobEvent(mob_id=MOB, kind=EventKind(type="step_completed", seq=i, **PAYLOAD))


def raw_append_rate(directory: Path, count: int) -> float:
    line = (json.dumps({"cursor": 1, "kind": PAYLOAD}) + "\n").encode()
    fd = os.open(directory / "raw.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:

        def write(_: int) -> None:
            os.write(fd, line)
            os.fsync(fd)

        return rate(count, write)
    finally:
        os.close(fd)


def raw_cas_rate(directory: Path, count: int) -> float:
    target = directory / "raw.json"
    lock_path = directory / "raw.lock"
    document = json.dumps({"n": 0, "pad": "x" * 2000}).encode()

    def cas(_: int) -> None:
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            temp = directory / f".raw.{os.getpid()}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, document)
            os.fsync(fd)
            os.close(fd)
            os.replace(temp, target)
            dfd = os.open(directory, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
            fcntl.flock(lock, fcntl.LOCK_UN)

    return rate(count, cas)


def sqlite_append_rate(directory: Path, count: int) -> float:
    db = sqlite3.connect(directory / "peer.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (cursor INTEGER PRIMARY KEY, timestamp TEXT, kind TEXT)")
    kind = json.dumps(PAYLOAD)

    def insert(i: int) -> None:
        db.execute("INSERT INTO events (timestamp, kind) VALUES (?, ?)", ("t", kind))

    try:
        return rate(count, insert)
    finally:
        db.close()


def fill(store: DirectoryStore, total: int) -> None:
    log = store.events(MOB)
    for start in range(0, total, 1000):
        log.append_batch([event(i) for i in range(start, min(start + 1000, total))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        base = Path(tmp)
        store = DirectoryStore(base / "store")
        log = store.events(MOB)
        log.append(event(0))  # create store.json and the log outside the timing

        raw = raw_append_rate(base, args.appends)
        # inputs are built before timing: the figures are the store's own cost
        singles = [event(i) for i in range(args.appends)]
        single = rate(args.appends, lambda i: log.append(singles[i]))
        print(
            f"1. durable append: {single:,.0f} events/s; raw write+fsync {raw:,.0f}/s; ratio {single / raw:.0%} (target >= 50%)"
        )

        hundred = [event(j) for j in range(100)]
        batch_rate = rate(max(args.appends // 10, 10), lambda i: log.append_batch(hundred)) * 100
        print(
            f"2. append_batch(100): {batch_rate:,.0f} events/s; {batch_rate / single:.1f}x single appends (target >= 20x)"
        )

        runs = store.runs(MOB)
        run_id = str(uuid.uuid4())
        runs.create_run(
            MobRun(
                run_id=run_id,
                mob_id=MOB,
                flow_id="main",
                created_at="2026-01-01T00:00:00.000000Z",
                status="running",
                flow_state=FlowRunState(phase="Running", n=0, pad="x" * 2000),
            )
        )
        counter = {"n": 0}

        def cas(_: int) -> None:
            n = counter["n"]
            won = runs.cas_flow_state(
                run_id,
                FlowRunState(phase="Running", n=n, pad="x" * 2000),
                FlowRunState(phase="Running", n=n + 1, pad="x" * 2000),
            )
            assert won
            counter["n"] = n + 1

        raw_cas = raw_cas_rate(base, args.appends)
        ours = rate(args.appends, cas)
        print(
            f"3. durable snapshot CAS: {ours:,.0f}/s; raw lock+temp+fsync+replace {raw_cas:,.0f}/s; ratio {ours / raw_cas:.0%} (target >= 50%)"
        )

        small = DirectoryStore(base / "small")
        fill(small, args.big // 10)
        big = DirectoryStore(base / "big")
        fill(big, args.big)
        big_log = big.events(MOB)
        start = time.perf_counter()
        read = 0
        cursor = 0
        while True:
            page = big_log.poll(cursor, 10_000)
            if not page:
                break
            read += len(page)
            cursor = page[-1].cursor
        elapsed = time.perf_counter() - start
        print(f"4. poll over {args.big:,} events: {read / elapsed:,.0f} events/s")

        def tail_time(s: DirectoryStore) -> float:
            samples = []
            for _ in range(20):
                begin = time.perf_counter()
                assert len(s.events(MOB).tail(100)) == 100
                samples.append(time.perf_counter() - begin)
            return statistics.median(samples)

        def poll_last_time(s: DirectoryStore, total: int) -> float:
            samples = []
            for _ in range(20):
                begin = time.perf_counter()
                assert len(s.events(MOB).poll(total - 100, 100)) == 100
                samples.append(time.perf_counter() - begin)
            return statistics.median(samples)

        t_small, t_big = tail_time(small), tail_time(big)
        p_small, p_big = poll_last_time(small, args.big // 10), poll_last_time(big, args.big)
        print(
            f"   last 100 events via tail(): {t_small * 1000:.2f} ms at {args.big // 10:,} events, {t_big * 1000:.2f} ms at {args.big:,} ({t_big / t_small:.2f}x)"
        )
        print(
            f"   last 100 events via poll(): {p_small * 1000:.2f} ms at {args.big // 10:,} events, {p_big * 1000:.2f} ms at {args.big:,} ({p_big / p_small:.2f}x)"
        )

        peer = sqlite_append_rate(base, args.appends)
        print(
            f"5. SQLite WAL synchronous=FULL single insert: {peer:,.0f}/s; mobctl append is {single / peer:.0%} of it"
        )


if __name__ == "__main__":
    main()
