"""The live view of `mobctl run` tells the truth (issue 13 item 13): a running step's elapsed
time ticks between events, and after a cancel or Ctrl-C the last frame shows final statuses.

The rendering is tested with a fake clock and the events of real runs; once more for real,
under a pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from mobctl import api
from mobctl.api.running import Watch
from mobctl.cli.run_view import RunView
from mobctl.definition.loader import load_file
from mobctl.drivers.registry import DriverConfig
from mobctl.store.directory import DirectoryStore
from tests.conftest import SAMPLES

MINIMAL = SAMPLES / "minimal.toml"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def shown(view: RunView) -> list[list[str]]:
    """The table as text, one list of cells per line (header first)."""
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(view.table())
    return [line.split() for line in out.getvalue().splitlines()]


def record(tmp_path: Path, fixtures: str, *, cancel_on_dispatch: bool = False) -> Any:
    """A real run of the minimal sample: its events as the engine emitted them, and its
    outcome."""
    replies = tmp_path / "replies.toml"
    replies.write_text(fixtures)
    events: list[tuple[str, dict[str, Any]]] = []
    cancel = threading.Event()

    def on_event(kind: str, fields: dict[str, Any]) -> None:
        events.append((kind, fields))
        if cancel_on_dispatch and kind == "step_dispatched":
            cancel.set()

    outcome = api.start_run(
        DirectoryStore(tmp_path / "store"),
        str(MINIMAL),
        params={"name": "Ada"},
        drivers=[f"scripted:{replies}"],
        config=DriverConfig(),
        watch=Watch(on_event=on_event, cancel=cancel),
    )
    return events, outcome


def view_of(clock: Clock) -> RunView:
    loaded = load_file(MINIMAL)
    assert loaded.definition is not None
    view = RunView(clock)
    view.start("r", loaded.definition, "main")  # not a terminal: no live display
    return view


def test_the_elapsed_time_of_a_running_step_ticks_without_events(tmp_path: Path) -> None:
    events, outcome = record(tmp_path, '[[reply]]\nstep = "greet"\noutput = "hi"\n')
    assert outcome.status == "completed"
    clock = Clock()
    view = view_of(clock)
    assert shown(view)[1] == ["greet", "pending"]
    kinds = [kind for kind, _ in events]
    dispatched = kinds.index("step_dispatched")
    for kind, fields in events[: dispatched + 1]:
        view(kind, fields)
    assert shown(view)[1] == ["greet", "running", "assistant-1", "1", "0.0s"]
    clock.now += 2.5  # no event: the time still moves
    assert shown(view)[1] == ["greet", "running", "assistant-1", "1", "2.5s"]
    clock.now += 0.5
    for kind, fields in events[dispatched + 1 :]:
        view(kind, fields)
    assert shown(view)[1] == ["greet", "completed", "assistant-1", "1", "3.0s"]
    clock.now += 60  # finished: it stays
    view.finish(outcome.document()["steps"])
    assert shown(view)[1] == ["greet", "completed", "assistant-1", "1", "3.0s"]


def test_after_a_cancel_the_last_frame_shows_the_final_statuses(tmp_path: Path) -> None:
    """It showed `running` (or `pending`): a canceled run writes no step event."""
    events, outcome = record(
        tmp_path,
        '[[reply]]\nstep = "greet"\noutput = "late"\ndelay_ms = 60000\n',
        cancel_on_dispatch=True,
    )
    assert (outcome.status, outcome.document()["steps"]) == ("canceled", {"greet": "canceled"})
    assert "step_completed" not in [kind for kind, _ in events]
    clock = Clock()
    view = view_of(clock)
    for kind, fields in events:
        view(kind, fields)
    clock.now += 1.25
    assert shown(view)[1] == ["greet", "running", "assistant-1", "1", "1.2s"]
    view.finish(outcome.document()["steps"])
    clock.now += 30
    assert shown(view)[1] == ["greet", "canceled", "assistant-1", "1", "1.2s"]


def test_a_step_never_dispatched_ends_with_its_final_status_and_no_time() -> None:
    clock = Clock()
    view = view_of(clock)
    view.finish({"greet": "canceled"})
    assert shown(view)[1] == ["greet", "canceled"]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def test_under_a_terminal_the_time_ticks_and_ctrl_c_leaves_final_statuses(
    tmp_path: Path,
) -> None:
    replies = tmp_path / "slow.toml"
    replies.write_text('[[reply]]\nstep = "greet"\noutput = "late"\ndelay_ms = 120000\n')
    exe = shutil.which("mobctl")
    command = [exe] if exe else [sys.executable, "-m", "mobctl"]
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*command, "run", str(MINIMAL), "-p", "name=Ada", "--driver", f"scripted:{replies}",
         "--store", str(tmp_path / "store")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )  # fmt: skip
    os.close(follower)
    screen = ""
    elapsed: set[str] = set()
    deadline = time.monotonic() + 90  # a bound on a hang, not a timing assertion

    def read() -> bool:
        nonlocal screen
        ready, _, _ = select.select([leader], [], [], 1)
        if not ready:
            return True
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            return False
        screen += ANSI.sub("", chunk.decode("utf-8", "replace"))
        return bool(chunk)

    while len(elapsed) < 3 and time.monotonic() < deadline:
        read()
        elapsed = set(re.findall(r"greet\s+running\s+assistant-1\s+1\s+(\d+\.\ds)", screen))
    assert len(elapsed) >= 3, screen  # three different times, one step, no event between
    process.send_signal(signal.SIGINT)
    while process.poll() is None and time.monotonic() < deadline:
        read()
    while read():  # what it wrote before it exited
        pass
    os.close(leader)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    last_frame = screen[screen.rindex("step") :]
    assert re.search(r"greet\s+canceled\s+assistant-1\s+1\s+\d+\.\ds", last_frame), last_frame
    assert "running" not in last_frame
    assert out.decode().startswith("run ") and " canceled (cancel_requested)" in out.decode()
