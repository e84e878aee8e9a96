"""``command:CMD``: runs CMD once per turn (flow-semantics §3; issue contract).

stdin: one JSON object with the turn, a versioned contract (``"protocol": 1``, documented in the
README): the ids, the message, the params, the output format, the member's resolved
``profile``, its ``system_prompt`` and the step's ``expected_schema``; the ids are also in
``MOBCTL_*`` environment variables. stdout is the output; exit 0 completes the turn, any
other exit fails it with the last non-empty stderr line (or ``exit code N``). The turn's
transcript keeps the payload, the exit status and the end of stderr. On stop the whole
process group gets SIGTERM, then SIGKILL after a grace period: no child outlives the turn.

One loop writes the turn to stdin (non-blocking) and reads stdout and stderr, and looks at
``stop`` between its short waits, so nothing the command does with its pipes can hold a turn
past its deadline or a cancel: not a command that never reads its stdin (a turn larger than a
pipe holds), nor a process it left behind, in another session, that keeps stdout open after
the command exited (the turn then ends :data:`EXIT_DRAIN` seconds after that exit).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobctl.drivers.base import (
    Canceled,
    Completed,
    DispatchError,
    DriverError,
    Failed,
    Outcome,
    TurnRequest,
)

PROTOCOL = 1  # the stdin payload's version: a field removed or changed in meaning bumps it
OUTPUT_CAP = 1 << 20
STDERR_KEPT = 4096  # characters of stderr (its end) a turn's transcript keeps
KILL_GRACE = 2.0
POLL = 0.02
EXIT_DRAIN = 2.0  # seconds stdout may stay open once the command exited
CHUNK = 65536

if TYPE_CHECKING:
    from mobctl.drivers.registry import DriverConfig


class CommandDriver:
    def __init__(self, command: str, *, output_cap: int = OUTPUT_CAP) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise DriverError(f"cannot parse command {command!r}: {exc}") from exc
        if not self.argv:
            raise DriverError("the command driver needs a command: command:CMD")
        self.output_cap = output_cap

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        payload = payload_of(request)
        env = os.environ | {
            "MOBCTL_MOB_ID": request.mob_id,
            "MOBCTL_RUN_ID": request.run_id,
            "MOBCTL_FLOW_ID": request.flow_id,
            "MOBCTL_STEP_ID": request.step_id or "",
            "MOBCTL_MEMBER": request.member.identity,
            "MOBCTL_ROLE": request.member.role,
            "MOBCTL_ATTEMPT": str(request.attempt),
            "MOBCTL_ITERATION": str(request.iteration),
        }
        try:
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            raise DispatchError(f"cannot start {self.argv[0]!r}: {exc.strerror or exc}") from exc
        err = _Stream(self.output_cap, tail=True)  # its last line is the reason
        try:
            turn = json.dumps(payload, ensure_ascii=False).encode()
            outcome = self._exchange(process, turn, stop, err)
            status = process.poll()  # None: it was stopped
        finally:
            _kill_group(process)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        transcript = {"stdin": payload, "exit_status": status, "stderr": err.text()[-STDERR_KEPT:]}
        return dataclasses.replace(outcome, transcript=transcript)

    def _exchange(
        self, process: subprocess.Popen[bytes], turn: bytes, stop: threading.Event, err: _Stream
    ) -> Outcome:
        """Write the turn, read stdout and stderr (``err``: its end is kept) until it exits."""
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        stdin = process.stdin.fileno()
        os.set_blocking(stdin, False)
        pending = memoryview(turn)
        out = _Stream(self.output_cap, tail=False)
        exited: float | None = None
        with selectors.DefaultSelector() as selector:
            selector.register(stdin, selectors.EVENT_WRITE)
            selector.register(process.stdout.fileno(), selectors.EVENT_READ, out)
            selector.register(process.stderr.fileno(), selectors.EVENT_READ, err)
            while selector.get_map():
                if stop.is_set():
                    return Canceled()
                if exited is None and process.poll() is not None:
                    exited = time.monotonic()
                if exited is not None and time.monotonic() - exited > EXIT_DRAIN:
                    break  # a process left behind holds a pipe: the turn is over anyway
                for key, _ in selector.select(POLL):
                    if key.fd != stdin:
                        block = os.read(key.fd, CHUNK)
                        if block:
                            key.data.add(block)
                        else:
                            selector.unregister(key.fd)
                        continue
                    try:
                        pending = pending[os.write(stdin, pending[:CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except OSError:  # it closed its stdin: what it did not read is its call
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(stdin)
                        process.stdin.close()
                if out.overflowed:
                    return Failed(
                        f"output exceeds {self.output_cap} bytes (the store's record cap, "
                        "MOBCTL_MAX_RECORD_BYTES); the command was stopped"
                    )
        while process.poll() is None:  # it closed its output but runs on
            if stop.wait(POLL):
                return Canceled()
        if process.returncode == 0:
            return Completed(out.text())
        last = next(
            (line.strip() for line in reversed(err.text().splitlines()) if line.strip()), ""
        )
        return Failed(last or f"exit code {process.returncode}")


def payload_of(request: TurnRequest) -> dict[str, Any]:
    """The turn as the command reads it on stdin (protocol :data:`PROTOCOL`)."""
    profile = request.profile
    return {
        "protocol": PROTOCOL,
        "mob_id": request.mob_id,
        "run_id": request.run_id,
        "flow_id": request.flow_id,
        "step_id": request.step_id,
        "member": request.member.identity,
        "role": request.member.role,
        "attempt": request.attempt,
        "iteration": request.iteration,
        "message": request.message,
        "params": request.params,
        "output_format": request.output_format,
        "profile": profile.document() if profile is not None else None,
        "system_prompt": profile.system_prompt if profile is not None else "",
        "expected_schema": request.expected_schema,
    }


@dataclass
class _Stream:
    """What a command wrote on one pipe: the first ``cap`` bytes, or with ``tail`` the last."""

    cap: int
    tail: bool
    chunks: list[bytes] = field(default_factory=list)
    kept: int = 0
    overflowed: bool = False

    def add(self, block: bytes) -> None:
        if not self.tail and self.kept + len(block) > self.cap:
            self.overflowed = True
            return
        self.chunks.append(block)
        self.kept += len(block)
        while self.tail and self.kept - len(self.chunks[0]) >= self.cap:
            self.kept -= len(self.chunks.pop(0))

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period; reap the leader."""
    # the leader started its own session, so its pid is the group's id; never asked of the
    # pid (os.getpgid): once the leader is reaped that pid may be another process's
    group = process.pid
    if not _group_alive(group) and process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = KILL_GRACE
    while deadline > 0 and _group_alive(group):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=POLL)
        deadline -= POLL
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _group_alive(group: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for a reaper do not)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            return True
    return False


def factory(argument: str, config: DriverConfig) -> CommandDriver:
    """``command:CMD``, its stdout capped at the store's record cap."""
    if not argument:
        from mobctl.drivers.registry import invalid

        raise invalid("command:")
    driver = CommandDriver(argument, output_cap=config.output_cap)
    _require_program(driver.argv[0], config.env.get("PATH") if "PATH" in config.env else None)
    return driver


def _require_program(program: str, path: str | None) -> None:
    """The program a ``command:`` spec names exists and may be executed (a path, or a name
    on ``path``, the ``PATH`` the driver was given): a typo is a usage error before the run
    exists, not a failed turn in every step."""
    hint = "name an executable file (./agent.sh, /usr/bin/agent) or a program on PATH"
    if os.sep not in program and "/" not in program:
        if shutil.which(program, path=path) is None:
            raise DriverError(f"command '{program}' is not found on PATH", hint=hint)
        return
    if not os.path.isfile(program):
        raise DriverError(f"command '{program}' is not found", hint=hint)
    if not os.access(program, os.X_OK):
        raise DriverError(
            f"command '{program}' is not executable", hint=f"chmod +x {shlex.quote(program)}"
        )
