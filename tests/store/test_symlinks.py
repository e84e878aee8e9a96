"""No symbolic link in the store is ever followed (store contract §8.7a; the Trust issue,
item 1).

For every kind of store file, lock file and directory, a link to a copy of it outside the store
(under the test's HOME) takes its place; every command that reads or writes the store then runs
against it. Those that would open it exit 6 with ``error[store_corrupt]`` naming the link, the
others carry on, `store check` reports the link and `--repair` leaves it alone; the outside copy
stays byte for byte as it was and nothing is created outside the store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, cli, mobctl_process
from tests.store.full_store import COMMANDS, DIRECTORIES, FILES, LOCK_FILES, FullStore, build

NEVER = "mobctl never follows a link in the store"
LINK = f"is a symbolic link; {NEVER}"
LEFT_ALONE = "mobctl never follows or removes a link in the store"
HINT = (
    "hint: replace the link with the file or directory itself "
    "(`mobctl store check` lists every link in the store)\n"
)

READ_LOG = {"runs show", "events tail", "events verify", "members list"}
WRITE_LOG = {"run", "events seal", "events prune", "register changed", "runs cancel"}
READ_RUNS = {"runs list", "register", "run", "events seal", "events prune", "register changed"}
READ_AUTHORITY = {"supervisor show", "events seal", "supervisor rotate"}
SIGN = {"run", "runs cancel"}  # they sign after a terminal event, and only warn if they cannot
EVERY_MOB_COMMAND = READ_LOG | WRITE_LOG | READ_RUNS | READ_AUTHORITY | {"events verify"}

# kind -> the commands that refuse it (exit 6, error[store_corrupt] naming the link)
REFUSED: dict[str, set[str]] = {
    "store.json": set(COMMANDS),
    "specs/hello.json": {"specs show", "specs list", "register", "run", "register changed"},
    "profiles/editor.json": {"profiles show", "profiles list", "profiles update"},
    # an unchanged registration repairs only the unsettled runs: it need not read the log
    "mobs/hello/events.jsonl": READ_LOG | WRITE_LOG,
    "mobs/hello/events.meta.json": READ_LOG | WRITE_LOG,
    "mobs/hello/checkpoints.jsonl": {"events verify", "events seal"},
    "mobs/hello/roster.json": {"members list", "run"},
    "mobs/hello/quarantine/{quarantined}": set(),
    # a finished run is settled: listing and repairing read the run index, not its snapshot
    "mobs/hello/runs/{finished}.json": {"runs show"},
    "mobs/hello/runs/{pending}.journal": READ_RUNS | {"runs cancel"},
    "mobs/hello/metadata/supervisor.json": READ_AUTHORITY,
    "mobs/hello/metadata/supervisor-history.jsonl": READ_AUTHORITY | {"events verify"},
    "mobs/hello/metadata/overlays/overlays.json": set(),
    "locks/store.lock": set(),
    "locks/specs/hello.lock": {"register changed"},
    "locks/profiles/editor.lock": {"profiles update"},
    "locks/mobs/hello/events.lock": WRITE_LOG,
    "locks/mobs/hello/metadata.lock": {"supervisor rotate"},
    "locks/mobs/hello/runs/{pending}.lock": {"runs cancel"},
    "specs": {
        *("runs list", "runs show", "events tail", "events verify", "specs show", "specs list"),
        *("register", "run", "events prune", "register changed", "runs cancel"),
    },
    "profiles": {"profiles show", "profiles list", "profiles update"},
    "mobs": EVERY_MOB_COMMAND | {"runs list"},
    "mobs/hello": EVERY_MOB_COMMAND | {"runs list"},
    "mobs/hello/runs": READ_RUNS | {"runs show", "runs cancel"},
    "mobs/hello/quarantine": WRITE_LOG,  # with a torn tail to quarantine
    "mobs/hello/metadata": READ_AUTHORITY | {"events verify"},
    "mobs/hello/metadata/overlays": set(),
    "locks": WRITE_LOG | {"profiles update", "supervisor rotate"},
    "locks/specs": {"register changed"},
    "locks/profiles": {"profiles update"},
    "locks/mobs": WRITE_LOG | {"supervisor rotate"},
    "locks/mobs/hello": WRITE_LOG | {"supervisor rotate"},
    "locks/mobs/hello/runs": {"run", "runs cancel"},
}
for _lock in [k for k in REFUSED if k.endswith(".lock")]:
    REFUSED[f"{_lock}.holder"] = REFUSED[_lock]
# kind -> the commands that finish but warn that they could not sign (the link named)
WARNED: dict[str, set[str]] = {
    "mobs/hello/checkpoints.jsonl": SIGN,
    "mobs/hello/metadata/supervisor.json": SIGN,
    "mobs/hello/metadata/supervisor-history.jsonl": SIGN,
    "mobs/hello/metadata": SIGN,
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> FullStore:
    return build(tmp_path_factory.mktemp("template") / "store")


def test_every_kind_of_store_file_and_directory_is_covered() -> None:
    assert sorted(REFUSED) == sorted(FILES + LOCK_FILES + DIRECTORIES)


def outside(home: Path) -> dict[str, tuple[str, bytes]]:
    """Everything under ``home``, links not followed: kind and bytes (a link: its target)."""
    found: dict[str, tuple[str, bytes]] = {}
    for directory, folders, files in os.walk(home):
        for name in folders + files:
            path = Path(directory, name)
            key = str(path.relative_to(home))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path).encode())
            elif path.is_dir():
                found[key] = ("directory", b"")
            else:
                found[key] = ("file", path.read_bytes())
    return found


def plant(path: Path, home: Path) -> Path:
    """Put a link in place of ``path``, to a copy of it under ``home``; the copy."""
    target = home / f"outside-{path.name}"
    if path.is_dir():
        shutil.copytree(path, target)
        shutil.rmtree(path)
    else:
        shutil.copy2(path, target)
        path.unlink()
    path.symlink_to(target)
    return target


def refusal(link: Path) -> str:
    return f"error[store_corrupt]: {link} {LINK}\n{HINT}"


def copy_of(template: FullStore, tmp_path: Path) -> FullStore:
    root = tmp_path / "store"
    shutil.copytree(template.root, root, symlinks=True)
    return FullStore(root, template.finished, template.quarantined, template.changed)


@pytest.mark.parametrize("kind", list(REFUSED))
def test_a_symlink_in_the_store_is_refused_by_every_command_and_never_followed(
    template: FullStore, tmp_path: Path, kind: str
) -> None:
    store = copy_of(template, tmp_path)
    home = Path(os.environ["HOME"])
    link = store.path(kind)
    target = plant(link, home)
    before = outside(home)
    for name, args in store.commands().items():
        if kind == "mobs/hello/quarantine" and name == "register":  # for the writers to move
            with store.path("mobs/hello/events.jsonl").open("ab") as log:
                log.write(b'{"cursor":')
        result = cli(*args, "--store", store.root)
        if name in REFUSED[kind]:
            assert result.exit_code == 6, (name, result.stdout, result.stderr)
            assert result.stderr.endswith(refusal(link)), (name, result.stderr)
            assert result.stderr.count("error[") == 1, (name, result.stderr)
        elif name.startswith("store check"):
            assert result.exit_code == 6, (name, result.stdout, result.stderr)
            assert result.stderr == ""
            expected = f"problem[store_corrupt] {link}: a symbolic link; {NEVER}\n"
            if name.endswith("--repair"):
                expected = (
                    f"repaired: left the symbolic link {link} alone: {LEFT_ALONE}\n" + expected
                )
            assert result.stdout == expected + "1 problem(s) found\n"
        else:
            assert result.exit_code == 0, (name, result.stdout, result.stderr)
            warning = f"warning: no checkpoint was signed: {link} {LINK}\n"
            assert (warning in result.stderr) == (name in WARNED.get(kind, set())), (
                name,
                result.stderr,
            )
    assert link.is_symlink() and link.readlink() == target
    assert outside(home) == before  # the copy outside is untouched, and nothing was added


def test_a_store_root_that_is_a_symlink_is_refused(template: FullStore, tmp_path: Path) -> None:
    """A planted ``./.mobctl`` -> somewhere else: the root's own last component is checked."""
    home = Path(os.environ["HOME"])
    shutil.copytree(template.root, home / "real-store", symlinks=True)
    link = tmp_path / ".mobctl"
    link.symlink_to(home / "real-store")
    before = outside(home)
    commands = {**template.commands(), "store init": ["store", "init"]}
    for name, args in commands.items():
        result = cli(*args, "--store", link)
        assert result.exit_code == 6, (name, result.stdout, result.stderr)
        assert result.stderr.endswith(refusal(link)), (name, result.stderr)
    assert outside(home) == before


def test_the_parents_of_the_store_root_may_be_links(tmp_path: Path) -> None:
    """Where the user keeps the store is the user's choice: only the store itself is checked."""
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    store = tmp_path / "alias" / "store"
    ran = cli(
        "run", SAMPLES / "minimal.toml", "-p", "name=Ada", "--driver", "echo", "--store", store
    )
    assert ran.exit_code == 0, ran.stderr
    assert (tmp_path / "real" / "store" / "mobs" / "hello" / "events.jsonl").is_file()
    checked = cli("store", "check", "--store", store)
    assert checked.exit_code == 0, checked.stdout
    assert checked.stdout == "store is consistent\n"


def test_item1_symlinked_event_log_is_never_followed(tmp_path: Path) -> None:
    """The issue's scenario, as a new user would meet it, in real processes: a store in the
    working directory whose event log links to ``~/.bashrc`` and whose event lock holder links
    to ``~/.netrc``; then a run journal that links to a file outside."""
    home = tmp_path / "home"
    home.mkdir()
    bashrc, netrc = home / ".bashrc", home / ".netrc"
    bashrc.write_text("export PATH=$HOME/bin:$PATH\n")
    netrc.write_text("machine example.com login me password hunter2\n")
    project = tmp_path / "project"
    (project / ".mobctl" / "mobs" / "hello").mkdir(parents=True)
    (project / ".mobctl" / "locks" / "mobs" / "hello").mkdir(parents=True)
    shutil.copy(SAMPLES / "minimal.toml", project / "mob.toml")
    log = Path(".mobctl/mobs/hello/events.jsonl")
    holder = Path(".mobctl/locks/mobs/hello/events.lock.holder")
    (project / log).symlink_to(bashrc)
    (project / holder).symlink_to(netrc)
    before = outside(home)
    env = {"HOME": str(home), "MOBCTL_STORE": ""}

    def mobctl(*args: str) -> subprocess.CompletedProcess[str]:
        return mobctl_process(*args, cwd=project, env=env)

    ran = mobctl("run", "mob.toml", "-p", "name=Ada")
    assert ran.returncode == 6, ran.stderr
    assert ran.stderr.endswith(refusal(holder)), ran.stderr  # the lock comes before the log
    (project / holder).unlink()
    ran = mobctl("run", "mob.toml", "-p", "name=Ada")
    assert ran.returncode == 6, ran.stderr
    assert ran.stderr == refusal(log)
    followed = mobctl("events", "tail", "hello", "--follow")
    assert followed.returncode == 6, followed.stderr
    assert followed.stderr == refusal(log)
    checked = mobctl("store", "check", "--repair")
    assert checked.returncode == 6, checked.stdout
    assert checked.stdout == (
        f"repaired: left the symbolic link {log} alone: mobctl never follows or removes a link "
        "in the store\n"
        f"problem[store_corrupt] {log}: a symbolic link; mobctl never follows a link in the store\n"
        "1 problem(s) found\n"
    )
    assert outside(home) == before
    assert not list(home.glob("*.tmp")) and not (home / "quarantine").exists()

    # a run journal that links outside: it was truncated, then appended to
    (project / log).unlink()
    assert mobctl("run", "mob.toml", "-p", "name=Ada").returncode == 0
    runs = project / ".mobctl" / "mobs" / "hello" / "runs"
    (run_file,) = runs.glob("*.json")
    journal = Path(".mobctl/mobs/hello/runs") / f"{run_file.stem}.journal"
    document = json.loads(run_file.read_text())
    document["status"] = "running"  # a run whose process died: `runs cancel` writes to it
    run_file.write_text(json.dumps(document))
    (project / journal).symlink_to(bashrc)
    canceled = mobctl("runs", "cancel", "hello", run_file.stem)
    assert canceled.returncode == 6, canceled.stderr
    assert canceled.stderr == refusal(journal)
    assert outside(home) == before


def test_a_hard_link_in_the_store_is_never_written_in_place(
    template: FullStore, tmp_path: Path
) -> None:
    """A file the store shares with one outside (a hard link) is refused where mobctl writes in
    place (appends, truncation, lock holders); replacing it whole never touches the other."""
    store = copy_of(template, tmp_path)
    home = Path(os.environ["HOME"])
    log = store.path("mobs/hello/events.jsonl")
    os.link(log, home / "shared")
    before = outside(home)
    ran = cli(*store.commands()["run"], "--store", store.root)
    assert ran.exit_code == 6, ran.stderr
    assert ran.stderr.endswith(
        f"error[store_corrupt]: {log} has 2 hard links; mobctl writes a store file in place only "
        "when the store holds its only link\nhint: replace it with a copy of itself\n"
    )
    assert outside(home) == before


def test_a_fifo_in_the_store_never_blocks_a_reader(template: FullStore, tmp_path: Path) -> None:
    store = copy_of(template, tmp_path)
    log = store.path("mobs/hello/events.jsonl")
    log.unlink()
    os.mkfifo(log)
    tailed = mobctl_process("events", "tail", "hello", "--store", store.root)
    assert tailed.returncode == 6, tailed.stderr
    assert tailed.stderr == f"error[store_corrupt]: {log} is not a regular file\n"
