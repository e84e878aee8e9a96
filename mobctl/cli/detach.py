"""``mobctl run --detach``: the run is started by a background process that owns it.

The parent re-executes mobctl (``python -m mobctl run ... --report-to FD``) in a new session,
with stdin and stdout on ``/dev/null``: no terminal signal (Ctrl-C, hang-up) reaches it and it
outlives the parent. Its environment is the parent's, so credentials reach it only that way
(never on its command line, which holds exactly what the person typed). Until the child has
created the run, its stderr is relayed (the definition's warnings, an error and its exit
code); then it sends ``{"run_id", "mob_id", "flow_id", "pid"}`` on the report pipe, turns its
own stderr to ``/dev/null`` and runs the flow, while the parent prints the run id and exits 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from mobctl.errors import UsageError

DEVICE_DIRECTORIES = ("/dev/", "/proc/")


def refuse_stdin(params: str | None) -> None:
    """A detached run has no stdin: ``--params @FILE`` must be a regular file it can read
    again (not ``/dev/stdin``, a pipe, a terminal or another process-relative name)."""
    if not params or not params.startswith("@"):
        return
    name = params[1:]
    path = Path(name)
    with contextlib.suppress(OSError, ValueError):
        shown = {str(path.absolute()), str(path.resolve())}
        if (
            name == "-"
            or any(p.startswith(DEVICE_DIRECTORIES) for p in shown)
            or (path.exists() and not path.is_file())
        ):
            raise UsageError(
                f"--detach cannot read --params from {name!r}: a detached run has no stdin",
                hint="write the params to a file and pass --params @FILE, or use -p/-P",
            )


def start(arguments: list[str], positional: list[str]) -> dict[str, Any]:
    """Start ``mobctl <arguments> -- <positional>`` detached (after ``--``, a file named
    ``-m.toml`` is a file) and return its report once the run exists; if it ends before
    that (an invalid definition, a usage error), exit with its code, its messages already
    relayed."""
    report_read, report_write = os.pipe()
    command = [sys.executable, "-m", "mobctl", *arguments, "--report-to", str(report_write)]
    command += ["--", *positional]
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(report_write,),
            start_new_session=True,  # no terminal signal reaches it; it outlives this process
        )
    finally:
        os.close(report_write)
    assert child.stderr is not None
    report = _relay_until_reported(report_read, child.stderr.fileno())
    child.stderr.close()
    if report is None:  # it ended before the run existed: its code is the command's
        raise typer.Exit(child.wait())
    return report


def _relay_until_reported(report_fd: int, stderr_fd: int) -> dict[str, Any] | None:
    received = b""
    with selectors.DefaultSelector() as selector, os.fdopen(report_fd, "rb", 0) as report:
        selector.register(report, selectors.EVENT_READ)
        selector.register(stderr_fd, selectors.EVENT_READ)
        open_streams = 2
        while open_streams:
            for key, _ in selector.select():
                chunk = os.read(key.fd, 65536)
                if key.fd == stderr_fd:
                    if chunk:  # already escaped by the child, as it would have shown it
                        sys.stderr.buffer.write(chunk)
                        sys.stderr.flush()
                        continue
                elif chunk:
                    received += chunk
                    continue
                selector.unregister(key.fileobj)
                open_streams -= 1
            if received.endswith(b"\n"):
                return dict(json.loads(received))
    return None


def report(fd: int, run_id: str, mob_id: str, flow_id: str) -> None:
    """In the detached child, once the run exists: stderr goes to ``/dev/null`` (nobody
    reads it any more), then the report tells the parent which run this is."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, sys.stderr.fileno())
    os.close(devnull)
    document = {"run_id": run_id, "mob_id": mob_id, "flow_id": flow_id, "pid": os.getpid()}
    with contextlib.suppress(OSError):  # the parent is gone: the run goes on
        os.write(fd, (json.dumps(document) + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(fd)
