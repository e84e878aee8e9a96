"""``command:CMD``: runs CMD once per turn (flow-semantics §3; issue contract).

stdin: one JSON object with the turn; the ids are also in ``MOBCTL_*`` environment variables.
stdout is the output; exit 0 completes the turn, any other exit fails it with the last
non-empty stderr line (or ``exit code N``). On stop the whole process group gets SIGTERM, then
SIGKILL after a grace period: no child outlives the turn.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import threading
from pathlib import Path

from mobctl.drivers.base import (
    Canceled,
    Completed,
    DispatchError,
    DriverError,
    Failed,
    Outcome,
    TurnRequest,
)

OUTPUT_CAP = 1 << 20
KILL_GRACE = 2.0
POLL = 0.02


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
        payload = {
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
        }
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
        try:
            return self._wait(process, json.dumps(payload, ensure_ascii=False).encode(), stop)
        finally:
            _kill_group(process)

    def _wait(
        self, process: subprocess.Popen[bytes], stdin: bytes, stop: threading.Event
    ) -> Outcome:
        chunks: dict[str, list[bytes]] = {"out": [], "err": []}
        sizes = {"out": 0, "err": 0}
        overflow = threading.Event()  # stdout outgrew the cap: stop the command now

        def pump(name: str, stream: object) -> None:
            kept = 0
            for block in iter(lambda: stream.read(65536), b""):  # type: ignore[attr-defined]
                sizes[name] += len(block)
                if name == "err":  # its last line is the reason: keep the tail, not the head
                    chunks[name].append(block)
                    kept += len(block)
                    while kept - len(chunks[name][0]) >= self.output_cap:
                        kept -= len(chunks[name].pop(0))
                elif sizes[name] <= self.output_cap:
                    chunks[name].append(block)
                else:
                    overflow.set()

        readers = [
            threading.Thread(target=pump, args=("out", process.stdout), daemon=True),
            threading.Thread(target=pump, args=("err", process.stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.close()
        while process.poll() is None and not overflow.is_set():
            if stop.wait(POLL):
                _kill_group(process)
                return Canceled()
        if not overflow.is_set():
            for reader in readers:
                reader.join(timeout=5)
        if overflow.is_set():
            _kill_group(process)
            return Failed(
                f"output exceeds {self.output_cap} bytes (the store's record cap, "
                "MOBCTL_MAX_RECORD_BYTES); the command was stopped"
            )
        stdout = b"".join(chunks["out"]).decode("utf-8", "replace")
        if process.returncode == 0:
            return Completed(stdout)
        stderr = b"".join(chunks["err"]).decode("utf-8", "replace")
        last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
        return Failed(last or f"exit code {process.returncode}")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period; reap the leader."""
    try:
        group = os.getpgid(process.pid)
    except ProcessLookupError:
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
