"""Every example in a command's --help runs as written, from a copy of the repository root.

Each command's examples run in order, in bash, against a copy of one prepared store: the
samples' mobs registered (``code-review`` with three reviewers and a supervisor, ``hello``), the
realm profile ``house-editor``, a completed run of ``code-review`` whose id starts with
``4f0c``, and two orphaned runs of ``hello`` (``3f2a``, ``3f2b``) whose owner was killed. An
example exits 0 unless it says otherwise (``# exit N``); one that needs a program that is not
installed is a visible skip.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from mobctl.cli.app import app
from tests.conftest import REPO, cli

EXAMPLE = re.compile(r"^ +((?:[A-Z_]+=\S* )*mobctl .*)$", re.M)
SLOW = '[[reply]]\nattempt = 1\ndelay_ms = 600000\noutput = "never"\n[[reply]]\noutput = "Hi"\n'


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(name, help) of every command under ``group`` (typer's own click), in order."""
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            yield from commands(command, (*path, name))
    elif group.help and not group.hidden:
        yield " ".join(path), group.help


EXAMPLES = [(name, EXAMPLE.findall(text)) for name, text in commands(typer.main.get_command(app))]


def test_every_command_has_examples_that_the_test_finds() -> None:
    assert len(EXAMPLES) >= 30
    missing = [name for name, found in EXAMPLES if not found]
    assert missing == []


def _patched_ids(prefix: int) -> str:
    """Python code that makes every uuid4 of a mobctl process start with ``prefix``."""
    return (
        "import itertools, sys, uuid\n"
        f"n = itertools.count(1)\nuuid.uuid4 = lambda: uuid.UUID(int=({prefix} << 112) | next(n))\n"
        "from mobctl.cli.app import main\nsys.argv[0] = 'mobctl'\nmain()\n"
    )


def _orphan(where: Path, prefix: int, env: dict[str, str]) -> None:
    """A run of hello whose owner is SIGKILLed while its step waits (its ids start with
    ``prefix``)."""
    log = where / "store" / "mobs" / "hello" / "events.jsonl"
    before = log.read_text().count('"step_dispatched"')
    owner = subprocess.Popen(
        [sys.executable, "-c", _patched_ids(prefix), "run", "hello", "-p", "name=Ada",
         "--driver", f"scripted:{where / 'slow.toml'}"],
        cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while log.read_text().count('"step_dispatched"') == before:
        assert time.monotonic() < deadline, "the run never dispatched its step"
        time.sleep(0.05)
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=60)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    where = tmp_path_factory.mktemp("examples")
    shutil.copytree(REPO / "sample-mobs", where / "sample-mobs")
    (where / "slow.toml").write_text(SLOW)
    env = {
        **os.environ,
        "MOBCTL_STORE": str(where / "store"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    store = ("--store", where / "store")
    samples = where / "sample-mobs"
    for command in (
        ("register", samples / "code-review.toml"),
        ("register", samples / "minimal.toml"),
        ("members", "spawn", "code-review", "reviewer", "--count", "3"),
        ("supervisor", "init", "code-review"),
        ("profiles", "create", "house-editor", samples / "profiles" / "house-editor.toml"),
    ):
        assert cli(*command, *store).exit_code == 0, command
    with pytest.MonkeyPatch.context() as patch:
        drawn = itertools.count(1)
        patch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=(0x4F0C << 112) | next(drawn)))
        fixtures = f"scripted:{samples / 'fixtures' / 'code-review.toml'}"
        ran = cli("run", "code-review", "-p", "change=PR-42", "--driver", fixtures, *store)
        assert ran.exit_code == 0, ran.stderr
    _orphan(where, 0x3F2A, env)
    _orphan(where, 0x3F2B, env)
    return where, env


@pytest.mark.parametrize(("name", "examples"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_every_help_example_runs_as_written(
    prepared: tuple[Path, dict[str, str]], tmp_path: Path, name: str, examples: list[str]
) -> None:
    where, env = prepared
    shutil.copytree(where, tmp_path / "root")  # each command starts from the prepared state
    env = {**env, "MOBCTL_STORE": str(tmp_path / "root" / "store")}
    skipped = []
    for example in examples:
        needs = [p for p in ("jq", "dot") if f"| {p} " in example and not shutil.which(p)]
        if needs:
            skipped.append(f"`{example}` needs {needs[0]}, which is not installed")
            continue
        said = re.search(r"# exit (\d+)", example)
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", example],
            cwd=tmp_path / "root", env=env, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        expected = int(said.group(1)) if said else 0
        assert done.returncode == expected, f"mobctl {name}: {example}\n{done.stderr}"
    if skipped:
        pytest.skip("ran the others; " + "; ".join(skipped))
