"""`mobctl events tail --follow` as a real process, fed by other real processes.

It must print every event in order, once, including across a torn tail that the next writer
repairs and a prune that replaces the log; it holds no lock while it waits; Ctrl-C ends it
with exit 130, as it ends every command; with --run it ends by itself after that run's
terminal event, with the run's code; a reader that goes away (`| head`) ends it at its next
poll.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mobctl.clock import timestamp
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import EventKind, NewMobEvent
from tests.conftest import REPO, SAMPLES, mobctl_process

MOB = "load"  # the mob tests.store.worker writes to


def start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mobctl", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


class Lines:
    """A process's stdout, line by line, read on a thread (so a test can wait with a timeout)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout

        def pump() -> None:
            for line in stream:
                self.queue.put(line)
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, count: int, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{len(self.seen)} of {count} lines arrived") from None
            if line is None:
                raise AssertionError(f"the follower ended after {len(self.seen)} lines")
            self.seen.append(line)
        return self.seen

    def rest(self, timeout: float = 10) -> list[str]:
        while (line := self.queue.get(timeout=timeout)) is not None:
            self.seen.append(line)
        return self.seen


def writer(location: Path, name: str, count: int) -> None:
    """tests.store.worker: ``count`` events as singles and batches, from another process."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.store.worker", "append", str(location), name, str(count)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_follow_sees_every_event_of_other_processes_across_torn_tails_and_prune(
    tmp_path: Path,
) -> None:
    location = tmp_path / "store"
    log = DirectoryStore(location).events(MOB)
    old = timestamp(datetime.now(UTC) - timedelta(hours=2))
    log.append(NewMobEvent(mob_id=MOB, kind=EventKind(type="member_spawned"), timestamp=old))
    for seq in range(3):
        kind = EventKind(type="load", writer="old", seq=seq)
        log.append(NewMobEvent(mob_id=MOB, kind=kind, timestamp=old))
    follower = start("events", "tail", MOB, "--follow", "--json", "--store", location)
    lines = Lines(follower)
    lines.until(4)  # the history: it is following now

    writer(location, "a", 150)
    path = location / "mobs" / MOB / "events.jsonl"
    with path.open("ab") as handle:  # a writer died mid-line
        handle.write(b'{"cursor":154,"timestamp":"2026-')
    time.sleep(0.5)  # the follower looks at the torn tail (and must not print it)
    writer(location, "b", 100)  # its first append quarantines the torn tail
    pruned = mobctl_process(
        "events", "prune", MOB, "--older-than", "1h", "--yes", "--lock-timeout", "5",
        "--store", location,
    )  # fmt: skip
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("deleted 3 events")  # the log file was replaced
    writer(location, "c", 100)

    printed = [json.loads(line) for line in lines.until(4 + 350)]
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=30) == 130  # Ctrl-C ends a follower as any command
    assert lines.rest() == lines.seen[: 4 + 350]  # nothing more was printed
    assert [e["cursor"] for e in printed] == list(range(1, 355))  # in order, none twice
    by_writer: dict[str, list[int]] = defaultdict(list)
    for item in printed[4:]:
        by_writer[item["kind"]["writer"]].append(item["kind"]["seq"])
    assert by_writer == {"a": list(range(150)), "b": list(range(100)), "c": list(range(100))}
    assert list((path.parent / "quarantine").iterdir())  # the torn tail was repaired
    assert follower.stderr is not None
    assert follower.stderr.read() == "error[interrupted]: interrupted\n"


def test_a_waiting_follower_holds_no_lock(tmp_path: Path) -> None:
    location = tmp_path / "store"
    store = DirectoryStore(location, lock_timeout=0.5)
    store.events(MOB).append(NewMobEvent(mob_id=MOB, kind=EventKind(type="x")))
    follower = start("events", "tail", MOB, "-f", "--store", location)
    Lines(follower).until(1)
    fds = Path(f"/proc/{follower.pid}/fd")
    if fds.is_dir():
        opened = [str(fd.readlink()) for fd in fds.iterdir() if fd.is_symlink()]
        # no lock file (it may be reading the log at this very moment: that is no lock)
        assert not [name for name in opened if str(location / "locks") in name], opened
    with store.locks.hold(store.events(MOB).lock_name):  # free: within the 0.5 s timeout
        pass
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=30) == 130


def test_item16_a_follower_whose_reader_went_away_ends_at_its_next_poll(tmp_path: Path) -> None:
    """`events tail --follow | head -1`: the follower noticed the closed pipe only when the
    next event came (maybe never); it ends at its next poll, as a write to the pipe would end
    it (exit 141, nothing on stderr)."""
    location = tmp_path / "store"
    store = DirectoryStore(location)
    store.events(MOB).append(NewMobEvent(mob_id=MOB, kind=EventKind(type="x")))
    follower = start("events", "tail", MOB, "--follow", "--store", location)
    assert follower.stdout is not None and follower.stderr is not None
    assert " x" in follower.stdout.readline()  # the history: it is following now
    follower.stdout.close()  # the reader goes away; no event comes after
    assert follower.wait(timeout=60) == 141
    assert follower.stderr.read() == ""


def test_follow_run_exits_after_the_runs_terminal_event(tmp_path: Path) -> None:
    location = tmp_path / "store"
    fixtures = tmp_path / "slow.toml"
    fixtures.write_text('[[reply]]\nstep = "greet"\ndelay_ms = 1500\noutput = "Hello!"\n')
    run = start(
        "run", SAMPLES / "minimal.toml", "-p", "name=Ada", "--driver", f"scripted:{fixtures}",
        "--store", location,
    )  # fmt: skip
    assert run.stderr is not None
    assert run.stderr.readline() == "registered hello revision 1\n"
    run_id = run.stderr.readline().split()[1]  # "run <id> (hello/main)", printed at the start
    follower = start(
        "events", "tail", "hello", "-f", "--run", run_id, "--json", "--store", location
    )
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert [k["type"] for k in kinds] == [
        "flow_started",
        "step_dispatched",
        "step_target_completed",
        "step_completed",
        "flow_completed",
    ]
    assert {k["run_id"] for k in kinds} == {run_id}
    assert run.wait(timeout=60) == 0
    assert run.returncode == 0


def test_follow_run_ends_after_a_failed_run_too(tmp_path: Path) -> None:
    location = tmp_path / "store"
    fixtures = tmp_path / "fail.toml"
    fixtures.write_text('[[reply]]\nstep = "greet"\ndelay_ms = 1000\nfail = "no"\n')
    run = start(
        "run", SAMPLES / "minimal.toml", "-p", "name=Ada", "--driver", f"scripted:{fixtures}",
        "--store", location,
    )  # fmt: skip
    assert run.stderr is not None
    assert run.stderr.readline() == "registered hello revision 1\n"
    run_id = run.stderr.readline().split()[1]
    follower = start(
        "events", "tail", "hello", "-f", "--run", run_id, "--type", "flow_*", "--store", location
    )
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 3, err  # the run's code, as `mobctl run` exits for it
    assert [line.split()[2] for line in out.splitlines()] == ["flow_started", "flow_failed"]
    assert run.wait(timeout=60) == 3


def test_a_closed_pipe_ends_a_follower_quietly(tmp_path: Path) -> None:
    location = tmp_path / "store"
    log = DirectoryStore(location).events(MOB)
    log.append(NewMobEvent(mob_id=MOB, kind=EventKind(type="x")))
    follower = start("events", "tail", MOB, "-f", "--store", location)
    assert follower.stdout is not None
    assert " x" in follower.stdout.readline()
    follower.stdout.close()  # like `| head -n 1` exiting
    log.append(NewMobEvent(mob_id=MOB, kind=EventKind(type="y")))  # its next write fails
    assert follower.wait(timeout=30) == 141  # as `tail -f | head -1` ends (SIGPIPE)
    assert follower.stderr is not None and follower.stderr.read() == ""


def test_a_log_deleted_under_a_follower_is_not_blamed_on_a_cursor(tmp_path: Path) -> None:
    location = tmp_path / "store"
    store = DirectoryStore(location)
    for _ in range(3):
        store.events(MOB).append(NewMobEvent(mob_id=MOB, kind=EventKind(type="x")))
    follower = start("events", "tail", MOB, "-f", "--store", location)
    Lines(follower).until(3)
    (location / "mobs" / MOB / "events.jsonl").unlink()
    _, err = follower.communicate(timeout=60)
    assert follower.returncode == 1
    assert err == (
        "error[stale_cursor]: the event log went back from cursor 3 to 0 while it was followed "
        "(deleted or replaced)\nhint: `mobctl events verify MOB` checks the log\n"
    )  # it said "use --after-cursor 0 or lower", an option nobody passed
