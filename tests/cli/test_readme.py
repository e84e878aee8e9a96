"""The README is part of the product: its commands exist, its tables are complete."""

from __future__ import annotations

import re

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
