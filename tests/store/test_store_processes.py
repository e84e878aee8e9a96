"""Store acceptance items 30-32 with real processes: concurrent appends, CAS races, SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from mobctl.store.directory import DirectoryStore
from mobctl.store.directory.check import check_store
from mobctl.store.models import FlowRunState, MobRun
from tests.conftest import REPO

MOB = "load"


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.worker", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def acks(output: str) -> list[list[str]]:
    return [line.split()[1:] for line in output.splitlines() if line.startswith("ack ")]


def make_run(store: DirectoryStore) -> str:
    run_id = str(uuid.uuid4())
    store.runs(MOB).create_run(
        MobRun(
            run_id=run_id,
            mob_id=MOB,
            flow_id="main",
            created_at="2026-01-01T00:00:00.000000Z",
            status="running",
            flow_state=FlowRunState(phase="Running", round=0),
        )
    )
    return run_id


@pytest.mark.slow
def test_30_concurrent_appends_from_four_processes(tmp_path: Path) -> None:
    location = tmp_path / "store"
    writers = [spawn("append", str(location), f"w{i}", "500") for i in range(4)]
    outputs = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        outputs.append(out)
    events = DirectoryStore(location).events(MOB).replay_all()
    assert [e.cursor for e in events] == list(range(1, 2001))
    by_writer: dict[str, list[int]] = defaultdict(list)
    for item in events:
        by_writer[item.kind.field("writer")].append(item.kind.field("seq"))
    for name, seqs in by_writer.items():
        assert seqs == list(range(500)), name  # each writer's events once, in its own order
    acknowledged = {(a[1], int(a[2])) for out in outputs for a in acks(out) if a[0] == "event"}
    assert len(acknowledged) == 2000
    assert DirectoryStore(location).events(MOB).verify() == []


@pytest.mark.slow
def test_31_cas_races_have_exactly_one_winner_per_round(tmp_path: Path) -> None:
    location = tmp_path / "store"
    run_id = make_run(DirectoryStore(location))
    rounds = 60
    racers = [spawn("race", str(location), run_id, f"r{i}", str(rounds)) for i in range(8)]
    winners: dict[int, list[str]] = defaultdict(list)
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err
        for ack in acks(out):
            if ack[0] == "round":
                winners[int(ack[1])].append(ack[2])
    assert sorted(winners) == list(range(1, rounds + 1))
    assert all(len(names) == 1 for names in winners.values()), winners
    run = DirectoryStore(location).runs(MOB).get_run(run_id)
    assert run is not None
    extra = run.flow_state.model_extra or {}
    assert extra["round"] == rounds
    assert extra["winner"] == winners[rounds][0]


def test_32_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """A writer SIGKILLed at a random moment of appends, batches, snapshot changes and spec
    puts, 200 times; after each kill the store reopens with everything acknowledged in it,
    batches whole, and `store check --repair` leaves it consistent.

    The writers are forked by a zygote that imported mobctl once, so the time goes into
    writing, not into starting Python; and a store takes 25 kills, then a fresh one begins,
    so checking after each kill does not grow with all the writing before it."""
    kills = int(os.environ.get("MOBCTL_CRASH_KILLS", "200"))
    rng = random.Random(32)
    for first in range(0, kills, KILLS_PER_STORE):
        _kill_repeatedly(
            tmp_path / f"store-{first}", range(first, min(kills, first + KILLS_PER_STORE)), rng
        )


KILLS_PER_STORE = 25


def _kill_repeatedly(location: Path, attempts: range, rng: random.Random) -> None:
    run_id = make_run(DirectoryStore(location))
    acknowledged: set[tuple[str, int]] = set()
    last_round = last_spec = 0
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.store.worker", "zygote", str(location), run_id],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    try:
        for attempt in attempts:
            name = f"k{attempt}"
            zygote.stdin.write(name + "\n")
            zygote.stdin.flush()
            started = zygote.stdout.readline().split()
            assert started[:2] == ["pid", name], started
            time.sleep(rng.uniform(0, 0.03))
            os.kill(int(started[2]), signal.SIGKILL)
            assert zygote.stdout.readline().split() == ["reaped", name]
            for ack in acks((location.parent / f"acks-{name}").read_text()):
                if ack[0] == "event":
                    acknowledged.add((ack[1], int(ack[2])))
                elif ack[0] == "round":
                    last_round = max(last_round, int(ack[1]))
                elif ack[0] == "spec":
                    last_spec = max(last_spec, int(ack[1]))
            _assert_intact(location, run_id, acknowledged, last_round, last_spec, attempt)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
    assert DirectoryStore(location).events(MOB).verify() == []


def _assert_intact(
    location: Path,
    run_id: str,
    acknowledged: set[tuple[str, int]],
    last_round: int,
    last_spec: int,
    attempt: int,
) -> None:
    """What a reopened store must show after a kill: every acknowledged write, whole batches,
    and nothing `store check --repair` cannot make consistent."""
    reopened = DirectoryStore(location)
    events = reopened.events(MOB).replay_all()  # opens, never raises, whole batches only
    cursors = [e.cursor for e in events]
    assert cursors == sorted(set(cursors))
    present = {(e.kind.field("writer"), e.kind.field("seq")) for e in events}
    assert acknowledged <= present
    run = reopened.runs(MOB).get_run(run_id)
    assert run is not None
    assert int((run.flow_state.model_extra or {}).get("round", 0)) >= last_round
    spec = reopened.specs.get_spec(MOB)
    assert (spec.revision if spec else 0) >= last_spec
    batches: dict[tuple[str, int, int], int] = defaultdict(int)  # (writer, first, size)
    for item in events:
        if item.kind.field("of") is not None:
            key = (item.kind.field("writer"), item.kind.field("first"), item.kind.field("of"))
            batches[key] += 1
    for (writer, first, size), seen in batches.items():
        assert seen == size, f"batch {writer}/{first}: {seen} of {size} visible"
    report = check_store(reopened, repair=True)  # repairs first, then checks everything
    assert report.ok, (attempt, report.actions, report.problems)
    assert not list(location.rglob("*.tmp"))
