"""Facts about this host and its processes: who this process is, and whether another (a lock
holder, a run's owner) still lives."""

from __future__ import annotations

import os
import socket
import sys
from functools import cache
from pathlib import Path
from typing import Literal


@cache
def host() -> str:
    return socket.gethostname()


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@cache
def _pid_namespace() -> str:
    """This process's PID namespace (the inode of /proc/self/ns/pid), "" when unknown."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _where() -> str:
    """Where a pid number means something: this boot of the kernel, this PID namespace."""
    return f"{_boot_id()}:{_pid_namespace()}"


def process_start(pid: int) -> str:
    """An opaque id of a process incarnation as this process sees it (boot id, PID namespace,
    start time), "" when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{_where()}:{fields[19]}" if len(fields) > 19 else ""


def command_line() -> str:
    return " ".join(["mobctl", *sys.argv[1:]])[:200]


Liveness = Literal["gone", "alive", "unknown"]


def liveness(pid: int, holder_host: str, started: str) -> Liveness:
    """Whether a process is provably ``gone`` (this host, and the pid is not running or runs
    another incarnation), provably ``alive`` (this host, and that incarnation runs), or
    ``unknown`` (another host: only its heartbeat can tell).

    Two containers that share a host name (a pod, ``--uts=host``) are two PID namespaces: a
    pid recorded in the other one names nobody here, so that is another host too, as is a
    record from another boot of a machine of the same name."""
    if holder_host != host():
        return "unknown"
    if started.count(":") >= 2 and not started.startswith(_where() + ":"):
        return "unknown"
    if not pid_alive(pid):
        return "gone"
    if started and process_start(pid) not in ("", started):
        return "gone"
    return "alive"


def is_dead(pid: int, holder_host: str, started: str) -> bool:
    return liveness(pid, holder_host, started) == "gone"


_ME: dict[int, tuple[int, str, str]] = {}


def me() -> tuple[int, str, str]:
    """(pid, host, process start) of this process (cached; a forked child computes its own)."""
    pid = os.getpid()
    found = _ME.get(pid)
    if found is None:
        found = _ME[pid] = (pid, host(), process_start(pid))
    return found


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no pid is that large
        return False
    except PermissionError:
        return True
    return True
