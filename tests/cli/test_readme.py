"""The README is part of the product: its commands exist, its tables are complete."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobctl import errors
from mobctl.diagnostics import CODES
from tests.conftest import REPO, cli

README = (REPO / "README.md").read_text()


def _blocks(section: str) -> list[str]:
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", body, re.S)


def test_exactly_two_setup_commands_and_ci_runs_the_second() -> None:
    blocks = _blocks("Set up")
    assert len(blocks) == 2
    assert blocks[0].startswith("pip install -e . && mobctl ")
    assert blocks[1] in (REPO / ".ci" / "run").read_text()


def test_the_sample_command_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    command = shlex.split(_blocks("Set up")[0].split(" && ", 1)[1])
    assert command[:2] == ["mobctl", "run"]
    monkeypatch.chdir(REPO)  # the store goes to $MOBCTL_STORE, a temp dir (conftest)
    result = cli(*command[1:])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("run ") and " completed" in result.stdout


def test_every_command_in_the_readme_exists() -> None:
    code = re.findall(r"```[a-z]*\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README)
    mentioned = set(re.findall(r"\bmobctl ([a-z]+)", "\n".join(code)))
    assert {"validate", "schema", "graph", "convert"} <= mentioned
    for command in mentioned:
        assert cli(command, "--help").exit_code == 0, command


def test_every_exit_code_is_documented() -> None:
    table = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in errors.ExitCode:
        assert re.search(rf"^\| {int(code)} \|", table, re.M), code


def test_every_error_code_is_documented() -> None:
    import importlib
    import pkgutil

    import mobctl

    for module in pkgutil.walk_packages(mobctl.__path__, "mobctl."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)  # every error class defined anywhere
    table = README.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    pending: list[type[errors.MobctlError]] = [errors.MobctlError]
    found = set()
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not errors.MobctlError:
            found.add(cls)
            assert f"| `{cls.code}` | {int(cls.exit_code)} |" in table, cls.code
    assert found


def test_every_diagnostic_code_is_documented() -> None:
    table = README.split("## Diagnostic codes", 1)[1]
    for code, (severity, _) in CODES.items():
        assert f"| `{code}` | {severity.value} |" in table, code


# --- every shell block, in order, in a fresh store --------------------------------------------

SKIP = re.compile(r"<!-- readme-test: skip \((?P<why>[^)]+)\) -->")
NEEDS = re.compile(r"<!-- readme-test: needs (?P<what>\$?[A-Za-z0-9_.-]+) -->")


def shell_blocks() -> list[tuple[int, str, str | None]]:
    """Every ``sh`` block as (line, text, why it cannot run here or None), in order. A block is
    skipped only by a marker on the line above it (never for failing)."""
    found = []
    for match in re.finditer(
        r"(?:(?P<marker><!--[^\n]*-->)\n)?```sh\n(?P<text>.*?)\n```", README, re.S
    ):
        line = README.count("\n", 0, match.start("text"))
        marker = match.group("marker")
        why = None
        if marker is not None:
            skip, needs = SKIP.fullmatch(marker), NEEDS.fullmatch(marker)
            assert skip or needs, f"README line {line}: unknown marker {marker}"
            if skip:
                why = skip["why"]
            elif needs["what"].startswith("$"):
                why = None if os.environ.get(needs["what"][1:]) else f"{needs['what']} is not set"
            elif shutil.which(needs["what"]) is None:
                why = f"{needs['what']} is not installed"
        found.append((line, match.group("text"), why))
    return found


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A directory holding a copy of ``sample-mobs/`` and a fresh store, shared by the blocks
    (each block builds on the ones before it)."""
    where = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "sample-mobs", where / "sample-mobs")
    env = {
        **os.environ,
        "MOBCTL_STORE": str(where / "store"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return where, env


def test_the_readme_has_shell_blocks_and_skips_few() -> None:
    blocks = shell_blocks()
    assert len(blocks) >= 10
    always = [why for _, _, why in blocks if why and not why.endswith(("installed", "not set"))]
    assert len(always) == 2, always  # the install block and the full-suite block


@pytest.mark.parametrize(
    ("line", "text", "why"), shell_blocks(), ids=[f"line-{b[0]}" for b in shell_blocks()]
)
def test_every_shell_block_runs_in_order_in_a_fresh_store(
    newcomer: tuple[Path, dict[str, str]], line: int, text: str, why: str | None
) -> None:
    """As a newcomer would follow the README: each command of each block exits 0 (also in a
    pipe or on the left of ``&&``), in order (pytest runs these in the README's order)."""
    if why is not None:
        pytest.skip(f"README line {line}: {why}")
    where, env = newcomer
    # `set -e` lets the left side of `a && b` fail: every line's status is checked too
    checked = "".join(
        f"{command}\nstatus=$?; [ $status -eq 0 ] || exit $status\n"
        for command in text.splitlines()
    )
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", checked],
        cwd=where, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"README line {line}:\n{text}\n{done.stderr}"
