"""Trust item 7: `mobctl ... | head -1` ends quietly, as a Unix tool does: no traceback, no
`error[internal]`, exit status 141 (what a shell reports for a process ended by SIGPIPE).

The reader's end of the pipe is closed before mobctl writes, so every write fails: the test
does not depend on who is faster. Output both buffered (the default when stdout is a pipe)
and unbuffered (PYTHONUNBUFFERED=1, as CI runners often set), so the failure happens at the
write itself or at the final flush."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES, cli

MOB = SAMPLES / "minimal.toml"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipes") / "store"
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli("run", MOB, "-p", "name=Ada", "--driver", f"scripted:{fixtures}", "--store", path)
    assert ran.exit_code == 0, ran.stderr
    assert cli("members", "spawn", "hello", "assistant", "--store", path).exit_code == 0
    return path


def into_a_closed_pipe(
    args: list[str], *, unbuffered: bool, stderr_too: bool = False
) -> tuple[int, bytes]:
    """Run mobctl with stdout (and with ``stderr_too`` stderr) on a pipe nobody reads any
    more; (exit status, what it wrote on stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mobctl", *args],
            stdout=write_end,
            stderr=write_end if stderr_too else subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=os.environ
            | {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1" if unbuffered else ""},
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    return result.returncode, result.stderr or b""


def commands(store: Path) -> list[list[str]]:
    run_id = next((store / "mobs" / "hello" / "runs").glob("*.json")).stem
    at = ["--store", str(store)]
    return [
        ["schema"],
        ["--help"],
        ["--version"],
        ["register", "--help"],
        ["runs", "--help"],
        ["graph", str(MOB)],
        ["convert", str(MOB), "--to", "json"],
        ["validate", str(MOB)],
        ["specs", "list", *at],
        ["specs", "show", "hello", *at],
        ["members", "list", "hello", *at],
        ["runs", "list", "hello", *at],
        ["runs", "show", "hello", run_id[:8], *at],
        ["runs", "show", "hello", run_id[:8], "--json", *at],
        ["events", "tail", "hello", *at],
        ["events", "tail", "hello", "--json", *at],
    ]


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_item7_a_closed_stdout_ends_every_command_quietly_with_141(
    store: Path, unbuffered: bool
) -> None:
    for args in commands(store):
        code, err = into_a_closed_pipe(args, unbuffered=unbuffered)
        assert (code, err) == (141, b""), args


def test_item7_a_run_whose_output_pipe_closed_still_finishes_and_is_recorded(
    tmp_path: Path,
) -> None:
    """`mobctl run ... 2>&1 | head -0`: nothing can be shown; the run itself completes."""
    store = tmp_path / "store"
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    args = ["run", str(MOB), "-p", "name=Ada", "--driver", f"scripted:{fixtures}"]
    code, _ = into_a_closed_pipe([*args, "--store", str(store)], unbuffered=True, stderr_too=True)
    assert code == 141
    listed = cli("runs", "list", "hello", "--store", store)
    assert listed.exit_code == 0
    assert " completed " in listed.stdout


def test_item7_an_error_with_both_streams_closed_is_quiet_too(store: Path) -> None:
    """Nothing can be said where nobody listens: no traceback from printing the error."""
    code, _ = into_a_closed_pipe(
        ["runs", "show", "hello", "nosuch", "--store", str(store)], unbuffered=True, stderr_too=True
    )
    assert code == 141
