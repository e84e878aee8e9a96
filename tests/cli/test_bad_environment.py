"""Trust item 8: a bad environment is a clear error (exit 6 or 2), never a traceback or exit 70.

A read-only store, another user's store, MOBCTL_STORE naming a file, an ASCII-only locale,
huge numbers, undecodable bytes in argv. Real child processes throughout; as root (CI), the
child drops to the unprivileged user `nobody` (setpriv, else runuser), since root ignores
permission bits."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES, cli

HUGE = "9" * 400  # a float of it is infinity


def mobctl(
    *args: str | bytes | Path, cwd: Path, user: list[str] | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """`python -m mobctl ARGS` as a real child process; bytes in, bytes out."""
    return subprocess.run(
        [*(user or []), sys.executable, "-m", "mobctl", *args],
        cwd=cwd,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=os.environ | {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "", **env},
        timeout=120,
        check=False,
    )


def unprivileged() -> list[str]:
    """The prefix that runs a command as a user who is not root (nothing when this is not
    root: permission bits already apply to it)."""
    if os.geteuid() != 0:
        return []
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root, and there is no user 'nobody' to drop to")
    if shutil.which("setpriv"):
        drop = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"]
        return [*drop, "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    pytest.skip("running as root, and neither setpriv nor runuser can drop to another user")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory another user may enter (pytest's tmp_path is private to this user), with a
    store holding the sample mob and one finished run."""
    folder = Path(tempfile.mkdtemp(prefix="mobctl-env-"))
    folder.chmod(0o755)
    try:
        store = folder / "store"
        ran = cli(
            "run",
            SAMPLES / "minimal.toml",
            "-p",
            "name=Adé",
            "--driver",
            f"scripted:{SAMPLES / 'fixtures' / 'hello.toml'}",
            "--store",
            store,
        )
        assert ran.exit_code == 0, ran.stderr
        shutil.copy(SAMPLES / "minimal.toml", folder / "minimal.toml")
        for path in [folder, *folder.rglob("*")]:  # readable by all, writable by its owner
            path.chmod(0o755 if path.is_dir() else 0o644)
        probe = mobctl("--version", cwd=folder, user=unprivileged())
        if probe.returncode != 0:
            pytest.skip(f"the unprivileged user cannot run this Python: {probe.stderr[-200:]!r}")
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


def read_only(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_item8_a_read_only_store_is_exit_6_and_can_still_be_read(shared: Path) -> None:
    store = shared / "store"
    read_only(store)
    user = unprivileged()
    spawn = mobctl(
        "members", "spawn", "hello", "assistant", "--store", store, cwd=shared, user=user
    )
    assert (spawn.returncode, spawn.stdout, spawn.stderr.decode()) == (
        6,
        b"",
        f"error[store_write_failed]: cannot open the lock {store}/locks/mobs/hello/events.lock: "
        "Permission denied\n",
    )
    run = mobctl("run", "hello", "-p", "name=Ada", "--store", store, cwd=shared, user=user)
    assert run.returncode == 6
    assert run.stderr.decode() == (  # the run index is written first, before the snapshot
        f"error[store_write_failed]: cannot open the lock {store}/locks/mobs/hello/"
        "run-index.lock: Permission denied\n"
    )
    listed = mobctl("runs", "list", "hello", "--store", store, "--json", cwd=shared, user=user)
    assert listed.returncode == 0, listed.stderr
    assert [r["status"] for r in json.loads(listed.stdout)] == ["completed"]


def test_item8_a_store_owned_by_another_user_is_exit_6(shared: Path) -> None:
    store = shared / "store"
    store.chmod(0o700)  # root's (or, unprivileged, nobody may enter it after the next line)
    if os.geteuid() != 0:
        store.chmod(0o000)
    user = unprivileged()
    for command in (["specs", "list"], ["runs", "list", "hello"], ["store", "init"]):
        result = mobctl(*command, "--store", store, cwd=shared, user=user)
        assert (result.returncode, result.stdout, result.stderr.decode()) == (
            6,
            b"",
            f"error[store_read_failed]: cannot read {store}/store.json: Permission denied\n",
        ), command


def test_item8_mobctl_store_naming_a_file_is_exit_6(tmp_path: Path) -> None:
    file = tmp_path / "not-a-store"
    file.write_text("hello\n")
    for command in (["specs", "list"], ["store", "init"], ["run", str(SAMPLES / "minimal.toml")]):
        result = mobctl(*command, cwd=tmp_path, MOBCTL_STORE=str(file))
        assert (result.returncode, result.stdout, result.stderr.decode()) == (
            6,
            b"",
            f"error[store_read_failed]: cannot use {file} as a store: it is not a directory\n"
            "hint: point --store or MOBCTL_STORE at a directory (created on the first write)\n",
        ), command
    assert file.read_text() == "hello\n"


def test_item8_an_ascii_locale_with_non_ascii_output_is_not_a_crash(shared: Path) -> None:
    store = shared / "store"
    run_id = next((store / "mobs" / "hello" / "runs").glob("*.json")).stem
    ascii_only = {"PYTHONIOENCODING": "ascii"}
    as_json = mobctl(
        "runs", "show", "hello", run_id, "--json", "--store", store, cwd=shared, **ascii_only
    )
    assert as_json.returncode == 0, as_json.stderr
    assert b'"name": "Ad\\u00e9"' in as_json.stdout  # still JSON: escaped as JSON escapes
    assert json.loads(as_json.stdout)["activation_params"] == {"name": "Adé"}
    text = mobctl("runs", "show", "hello", run_id, "--store", store, cwd=shared, **ascii_only)
    assert text.returncode == 0, text.stderr
    assert b'params    {"name": "Ad\\xe9"}\n' in text.stdout
    events = mobctl("events", "tail", "hello", "--store", store, cwd=shared, **ascii_only)
    assert events.returncode == 0, events.stderr
    assert b'params={"name":"Ad\\xe9"}' in events.stdout
    unknown = mobctl("runs", "list", "h\u00e9llo", "--store", store, cwd=shared, **ascii_only)
    assert (unknown.returncode, unknown.stderr.splitlines()[0]) == (
        1,
        b"error[unsafe_id]: mob id 'h\\xe9llo' cannot be used as a file name",
    )


def test_item8_huge_durations_clamp_to_100_years(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for timeout in (f"{HUGE}s", "36501d", HUGE, f"{HUGE}d{HUGE}h"):
        run = cli(
            "run", SAMPLES / "minimal.toml", "-p", "name=Ada", "--timeout", timeout,
            "--lock-timeout", f"{HUGE}m", "--store", store, "-o", "name",
        )  # fmt: skip
        assert (run.exit_code, run.stderr.count("error")) == (0, 0), run.stderr
    run_id = run.stdout.strip()
    cancel = cli(
        "runs", "cancel", "hello", run_id, "--wait", "--timeout", f"{HUGE}s", "--store", store
    )
    assert (cancel.exit_code, cancel.stdout) == (
        0,
        f"run {run_id} is already completed: nothing to cancel\n",
    )
    # a time further back than a date goes is 100 years ago, not a crash
    since = cli("events", "tail", "hello", "--since", f"{HUGE}d", "--store", store, "--json")
    assert since.exit_code == 0, since.stderr
    assert len(since.stdout.splitlines()) > 3


UNSTORABLE = "error[usage]: the run's params cannot be stored: a string holds a lone surrogate"
CANNOT = "which UTF-8 cannot encode"


def test_item8_undecodable_bytes_in_params_and_driver_are_usage_errors(tmp_path: Path) -> None:
    mob = SAMPLES / "minimal.toml"
    store = tmp_path / "store"
    cases = {
        (
            b"-p",
            b"name=\xff",
        ): f"{UNSTORABLE} (U+DCFF), {CANNOT}\nhint: pass params as UTF-8 text\n",
        (b"-p", b"\xff=1"): f"{UNSTORABLE} (U+DCFF), {CANNOT}\nhint: pass params as UTF-8 text\n",
        (b"--driver", b"command:\xff"): "error[invalid_driver]: invalid driver 'command:\\udcff': "
        "it is not UTF-8 text\nhint: use echo, scripted:FILE, command:CMD, llm[:OPTIONS] or "
        "replay:DIR[,fallback=SPEC] (optionally ROLE=... for one role)\n",
        (b"--driver", b"scripted:/tmp/\xff.toml"): "error[invalid_driver]: invalid driver "
        "'scripted:/tmp/\\udcff.toml': it is not UTF-8 text\nhint: use echo, scripted:FILE, "
        "command:CMD, llm[:OPTIONS] or replay:DIR[,fallback=SPEC] (optionally ROLE=... for one role)\n",
    }
    for argv, error in cases.items():
        result = mobctl("run", mob, *argv, "--store", store, cwd=tmp_path)
        assert (result.returncode, result.stdout, result.stderr.decode()) == (2, b"", error), argv
    # a lone surrogate written as a JSON escape is the same thing
    escaped = mobctl("run", mob, "--params", '{"name": "\\udcff"}', "--store", store, cwd=tmp_path)
    assert (escaped.returncode, escaped.stderr.decode().splitlines()[0]) == (
        2,
        f"{UNSTORABLE} (U+DCFF), {CANNOT}",
    )
    assert not (store / "mobs" / "hello" / "runs").exists()  # refused before any run exists


def closed(streams: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """mobctl ARGS as a real child process with the standard ``streams`` closed (not broken:
    ``>&-`` as cron and daemons may leave them); the others captured."""
    redirections = {"0": "<&-", "1": ">&-", "2": "2>&-"}
    script = 'exec "$@" ' + " ".join(redirections[fd] for fd in streams)
    return subprocess.run(
        ["sh", "-c", script, "sh", sys.executable, "-m", "mobctl", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )


def test_item13_closed_standard_streams_are_no_crash(tmp_path: Path) -> None:
    """Python has None for a closed stream: every command tracebacked (exit 1), and `run`
    with stderr closed never created its run. Now what would go to a closed stream is
    dropped, the command does its work, and no file it opens takes the stream's descriptor
    (the summary of `run >&-` would land in the store)."""
    store = tmp_path / "store"
    version = closed("1", "--version", cwd=tmp_path)
    assert (version.returncode, version.stderr) == (0, b"")
    ran = closed(
        "2", "run", SAMPLES / "minimal.toml", "-p", "name=a", "--store", store, cwd=tmp_path
    )
    assert (ran.returncode, ran.stderr) == (0, b"")
    assert ran.stdout.startswith(b"run ") and b" completed\n" in ran.stdout
    again = closed("012", "run", "hello", "-p", "name=b", "--store", store, cwd=tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")
    missing = closed("2", "runs", "show", "hello", "nope", "--store", store, cwd=tmp_path)
    assert (missing.returncode, missing.stdout) == (1, b"")
    listed = json.loads(cli("runs", "list", "hello", "--store", store, "--json").stdout)
    assert [run["status"] for run in listed] == ["completed", "completed"]
    checked = cli("store", "check", "--store", store)
    assert (checked.exit_code, checked.stdout) == (0, "store is consistent\n")
