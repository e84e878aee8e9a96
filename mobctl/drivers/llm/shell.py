"""The ``shell`` tool: only when the person running passed ``--allow-shell`` (a definition
from a pull request cannot grant itself a shell), never for a ``read_only`` profile (mobctl
cannot confine a shell to reads, so it does not offer one).

A command runs with ``/bin/sh -c`` in the run's working directory, in its own process group
under the launcher (so it dies with mobctl), with a timeout, its output (stdout and stderr
merged) capped, and without the environment's credentials. Every command and its result is
in the turn's transcript like any other tool call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from mobctl.drivers.llm.conversation import ToolSpec

TIMEOUT = 120.0  # seconds, at most; less when the turn's deadline is nearer
OUTPUT_CAP = 64 * 1024
SPEC = ToolSpec(
    "shell",
    "Run a command with /bin/sh -c in the working directory and return its exit status and "
    f"output (stdout and stderr, at most {OUTPUT_CAP} bytes; at most {int(TIMEOUT)} s).",
    {
        "type": "object",
        "properties": {"command": {"type": "string", "description": "the command line"}},
        "required": ["command"],
    },
)


def launched(argv: list[str]) -> list[str]:
    """``argv`` under the launcher, which kills its process group when mobctl dies."""
    return [sys.executable, "-m", "mobctl.drivers.llm.launcher", str(os.getpid()), *argv]


async def run_shell(
    command: str, *, workdir: Path, env: Mapping[str, str], timeout: float
) -> tuple[str, bool]:
    """The command's report and whether it failed (non-zero exit, timeout)."""
    process = await asyncio.create_subprocess_exec(
        *launched(["/bin/sh", "-c", command]),
        cwd=workdir,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    kept = bytearray()
    dropped = 0

    async def read() -> None:
        nonlocal dropped
        assert process.stdout is not None
        while block := await process.stdout.read(65536):
            room = OUTPUT_CAP - len(kept)
            kept.extend(block[:room])
            dropped += max(len(block) - room, 0)

    timed_out = False
    try:
        async with asyncio.timeout(max(min(timeout, TIMEOUT), 0.1)):
            await read()
            await process.wait()
    except TimeoutError:
        timed_out = True
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
    output = kept.decode("utf-8", "replace")
    if dropped:
        output += f"\n[output capped: {dropped} more bytes dropped]"
    if timed_out:
        return f"timed out after {min(timeout, TIMEOUT):.0f}s; killed\n{output}", True
    return f"exit status {process.returncode}\n{output}", process.returncode != 0
