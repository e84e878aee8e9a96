"""Shell completion (issue 13 item 11): `mobctl completion bash|zsh|fish` prints Typer's
script, and Tab completes mob ids, flows, run ids and step names from the store. A missing,
damaged or hostile store completes nothing and prints nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, cli, mobctl_process


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mobs hello (two runs) and triage (flows main and escalate), registered."""
    location = tmp_path_factory.mktemp("completion") / "store"
    for name in ("Ada", "Bob"):
        ran = cli("run", SAMPLES / "minimal.toml", "-p", f"name={name}", "--store", location)
        assert ran.exit_code == 0, ran.stderr
    assert cli("register", SAMPLES / "triage.toml", "--store", location).exit_code == 0
    return location


def run_ids(store: Path) -> list[str]:
    return sorted(p.stem for p in (store / "mobs" / "hello" / "runs").glob("*.json"))


def complete(line: str, store: Path | str, shell: str = "bash") -> subprocess.CompletedProcess[str]:
    """What mobctl answers when ``shell`` asks it to complete ``line`` (the cursor at its end),
    with the environment the shell's script sets."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    env = {"MOBCTL_STORE": str(store), "_MOBCTL_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env |= {"COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    return mobctl_process(env=env)


def offered(line: str, store: Path | str) -> list[str]:
    result = complete(line, store)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout.split()


def test_ids_from_the_store(store: Path) -> None:
    first, second = run_ids(store)
    assert offered("mobctl runs show ", store) == ["hello", "triage"]
    assert offered("mobctl runs show t", store) == ["triage"]
    assert offered("mobctl runs show hello ", store) == [first, second]
    assert offered(f"mobctl runs cancel hello {second[:3]}", store) == [second]
    assert offered("mobctl events tail hello --run ", store) == [first, second]
    assert offered("mobctl events tail hello --step ", store) == ["greet"]
    assert offered("mobctl run triage ", store) == ["escalate", "main"]
    assert offered("mobctl runs list triage --flow m", store) == ["main"]
    assert offered("mobctl run ", store) == ["hello", "triage"]
    assert offered("mobctl members list ", store) == ["hello", "triage"]


def test_flows_of_a_definition_file_and_fixed_values(store: Path) -> None:
    triage = str(SAMPLES / "triage.toml")
    assert offered(f"mobctl run {triage} ", store) == ["escalate", "main"]
    assert offered(f"mobctl graph {triage} --flow ", store) == ["escalate", "main"]
    assert offered("mobctl runs list -o ", store) == ["json", "name", "text", "wide", "yaml"]
    assert offered("mobctl completion ", store) == ["bash", "fish", "zsh"]
    assert offered("mobctl ru", store) == ["run", "runs"]


def test_zsh_and_fish_get_the_same_values(store: Path) -> None:
    first, second = run_ids(store)
    zsh = complete("mobctl runs show hello ", store, "zsh")
    assert (zsh.returncode, zsh.stderr) == (0, "")
    assert zsh.stdout == f'_arguments \'*: :(("{first}"\n"{second}"))\'\n'
    fish = complete("mobctl runs show hello ", store, "fish")
    assert (fish.returncode, fish.stdout, fish.stderr) == (0, f"{first}\n{second}\n", "")


@pytest.mark.parametrize(
    ("shell", "lines"),
    [
        (
            "bash",
            [
                "_mobctl_completion() {",
                "complete -o default -F _mobctl_completion mobctl",
                "                   _MOBCTL_COMPLETE=complete_bash $1 ) )",
            ],
        ),
        (
            "zsh",
            [
                "#compdef mobctl",
                '  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" '
                "_MOBCTL_COMPLETE=complete_zsh mobctl)",
                "compdef _mobctl_completion mobctl",
            ],
        ),
        ("fish", ["complete --command mobctl --no-files --arguments"]),
    ],
)
def test_the_scripts(shell: str, lines: list[str]) -> None:
    result = cli("completion", shell)
    assert (result.exit_code, result.stderr) == (0, "")
    for line in lines:
        assert any(printed.startswith(line) for printed in result.stdout.splitlines()), line


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = cli("completion", "tcsh")
    assert (result.exit_code, result.stderr) == (
        2,
        "error[usage]: no completion for shell 'tcsh'\nhint: use bash, zsh or fish\n",
    )


def test_bash_completes_through_the_script(store: Path, tmp_path: Path) -> None:
    """The generated script, sourced by a real bash, fills COMPREPLY with run ids."""
    script = tmp_path / "mobctl.bash"
    script.write_text(cli("completion", "bash").stdout)
    bin_dir = tmp_path / "bin"  # `mobctl` on the PATH, as an installed one would be
    bin_dir.mkdir()
    (bin_dir / "mobctl").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mobctl "$@"\n')
    (bin_dir / "mobctl").chmod(0o755)
    program = (
        f"source {script}\n"
        "COMP_WORDS=(mobctl runs show hello '')\nCOMP_CWORD=4\n"
        "_mobctl_completion mobctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
             "MOBCTL_STORE": str(store)},
        timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == run_ids(store)


def test_a_missing_store_completes_nothing_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for line in ("mobctl runs show ", "mobctl runs show hello ", "mobctl events tail x --step "):
        assert offered(line, missing) == []
    assert not missing.exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store")
    assert offered("mobctl runs show ", a_file) == []


def test_a_hostile_store_completes_nothing_unsafe(store: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile"
    shutil.copytree(store, hostile, symlinks=True)
    for name in ("$(touch pwned)", "a b", "x\x1b[2J", "`id`", "'q'"):
        (hostile / "mobs" / name).mkdir()
    (hostile / "specs" / "hello.json").write_text("{garbage")
    (hostile / "mobs" / "triage" / "runs").symlink_to("/")
    assert offered("mobctl runs show ", hostile) == ["hello", "triage"]
    assert offered("mobctl run hello ", hostile) == []  # its spec is damaged
    assert offered("mobctl runs show triage ", hostile) == []  # a link is never followed
    for shell in ("zsh", "fish"):
        answer = complete("mobctl runs show ", hostile, shell)
        assert (answer.returncode, answer.stderr) == (0, "")
        assert "pwned" not in answer.stdout and "`" not in answer.stdout
    linked = tmp_path / "linked"
    linked.symlink_to(store)
    assert offered("mobctl runs show ", linked) == []  # the store itself is a link
    assert not (tmp_path / "pwned").exists()
