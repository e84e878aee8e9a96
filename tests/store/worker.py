"""A child process that hammers a directory store (for the concurrency and crash tests).

    python -m tests.store.worker append STORE NAME COUNT      # singles and batches
    python -m tests.store.worker race STORE RUN_ID NAME ROUNDS
    python -m tests.store.worker chaos STORE RUN_ID NAME      # until killed
    python -m tests.store.worker zygote STORE RUN_ID          # forks a chaos child per line

Every write is reported on stdout (flushed) only after it returned: ``ack <what> <id>``.

The zygote imports everything once, then for each ``NAME`` read on stdin forks a child that
runs ``chaos`` with its acks going to ``STORE/../acks-NAME``, and prints ``pid NAME PID``
once the child is writing; it prints ``reaped NAME`` when the child is gone. A kill then
costs a fork, not a Python start-up, so a test can afford many of them.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import TextIO

from mobctl.store.changes import RunExpectation, RunMutation
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import EventKind, FlowRunState, NewMobEvent

MOB = "load"


_OUT: TextIO = sys.stdout  # where acks go (a zygote's child: its own file)


def ack(*parts: object) -> None:
    _OUT.write("ack " + " ".join(map(str, parts)) + "\n")
    _OUT.flush()


def event(name: str, seq: int) -> NewMobEvent:
    return NewMobEvent(mob_id=MOB, kind=EventKind(type="load", writer=name, seq=seq))


def append(store: DirectoryStore, name: str, count: int) -> None:
    log = store.events(MOB)
    seq = 0
    rng = random.Random(name)
    while seq < count:
        size = min(rng.choice([1, 1, 1, 3, 7]), count - seq)
        if size == 1:
            log.append(event(name, seq))
        else:
            log.append_batch([event(name, seq + i) for i in range(size)])
        for i in range(size):
            ack("event", name, seq + i)
        seq += size


def race(store: DirectoryStore, run_id: str, name: str, rounds: int) -> None:
    """Each round: read the counter, try to CAS it to counter + 1 claiming the round."""
    runs = store.runs(MOB)
    won = 0
    while True:
        run = runs.get_run(run_id)
        assert run is not None
        current = run.flow_state.model_extra or {}
        value = int(current.get("round", 0))
        if value >= rounds:
            break
        nxt = FlowRunState(phase="Running", round=value + 1, winner=name)
        if runs.cas_flow_state(run_id, run.flow_state, nxt):
            won += 1
            ack("round", value + 1, name)
    ack("done", name, won)


def chaos(store: DirectoryStore, run_id: str, name: str) -> None:
    """Appends, batches, snapshot CAS and spec puts, forever (the test SIGKILLs us)."""
    log = store.events(MOB)
    runs = store.runs(MOB)
    rng = random.Random()
    seq = 0
    while True:
        action = rng.random()
        if action < 0.4:
            log.append(event(name, seq))
            ack("event", name, seq)
            seq += 1
        elif action < 0.7:
            size = rng.randint(2, 6)
            batch = [event(name, seq + i) for i in range(size)]
            for part in batch:  # lets the test see that a batch is visible whole or not at all
                part.kind.__pydantic_extra__ = {
                    **(part.kind.model_extra or {}),
                    "first": seq,
                    "of": size,
                }
            log.append_batch(batch)
            for i in range(size):
                ack("event", name, seq + i)
            seq += size
        elif action < 0.9:
            run = runs.get_run(run_id)
            assert run is not None
            value = int((run.flow_state.model_extra or {}).get("round", 0))
            nxt = FlowRunState(phase="Running", round=value + 1, pad="x" * rng.randint(0, 4000))
            if runs.mutate_run(
                run_id,
                RunExpectation(flow_state=run.flow_state),
                RunMutation(flow_state=nxt, outputs=[]),
            ):
                ack("round", value + 1)
        else:
            revision = store.specs.put_spec(MOB, {"id": MOB, "n": seq}, None)
            ack("spec", revision)


def zygote(location: Path, run_id: str) -> None:
    global _OUT
    for line in sys.stdin:
        name = line.strip()
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a fresh store handle, acks to its own file, never returns
            os.close(ready_read)
            _OUT = open(location.parent / f"acks-{name}", "w", buffering=1)  # noqa: SIM115
            os.write(ready_write, b"x")
            try:
                chaos(DirectoryStore(location, lock_timeout=60), run_id, name)
            finally:
                os._exit(1)
        os.close(ready_write)
        os.read(ready_read, 1)  # the child is past its start
        os.close(ready_read)
        print(f"pid {name} {pid}", flush=True)
        os.waitpid(pid, 0)
        print(f"reaped {name}", flush=True)


def main() -> None:
    mode, location = sys.argv[1], Path(sys.argv[2])
    store = DirectoryStore(location, lock_timeout=60)
    if mode == "append":
        append(store, sys.argv[3], int(sys.argv[4]))
    elif mode == "race":
        race(store, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "chaos":
        ack("ready")
        chaos(store, sys.argv[3], sys.argv[4])
    elif mode == "zygote":
        zygote(location, sys.argv[3])
    else:  # pragma: no cover
        raise SystemExit(f"unknown mode {mode}")
    time.sleep(0)


if __name__ == "__main__":
    main()
