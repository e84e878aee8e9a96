"""``python -m mobctl.drivers.llm.launcher PARENT_PID COMMAND [ARG...]``: runs COMMAND so that
it cannot outlive mobctl, even when mobctl is SIGKILLed.

The launcher asks Linux to SIGTERM it when its parent dies (``PR_SET_PDEATHSIG``; the caller
starts it in a new session, so it leads its own process group), forks COMMAND into that
group and waits for it. On SIGTERM it SIGKILLs the whole group: COMMAND and everything
COMMAND started (an MCP server run through ``npx`` or ``uvx`` is several processes, which a
death signal on COMMAND alone would not reach). When COMMAND exits, whatever it left behind
in the group is killed too, and the launcher exits with COMMAND's status. Where ``prctl``
and ``/proc`` do not exist (not Linux), it only waits: closing the server's stdin still
stops a well-behaved MCP server.

Kept import-light: it starts once per MCP server and per shell command.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl here
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)


def _kill_group(signum: int, frame: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _kill_the_rest() -> None:
    """SIGKILL every other process of this process group (what COMMAND left running)."""
    me, group = os.getpid(), os.getpgrp()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == group:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.stderr.write("usage: python -m mobctl.drivers.llm.launcher PARENT_PID COMMAND...\n")
        return 2
    _die_with_parent(int(argv[0]))
    signal.signal(signal.SIGTERM, _kill_group)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execvp(argv[1], argv[1:])
        except OSError as exc:
            sys.stderr.write(f"cannot start {argv[1]!r}: {exc.strerror or exc}\n")
        os._exit(127)
    _, status = os.waitpid(child, 0)
    _kill_the_rest()
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
