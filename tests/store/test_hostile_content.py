"""Store content that parses, and whose chain hashes verify (anyone can recompute them), but
that mobctl could never have written: a value of another type, out of range, nested deeper
than any reader takes, a lone surrogate, NaN; a file whose name is no id; a snapshot that is
not its file's run. Every command answers with a clear error (``store_corrupt``, exit 6,
naming the file and the field, never the value) or carries on where that is right; never
exit 70 (the attack on the trust guarantees, items 12, 14, 15 and 16)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mobctl.clock import timestamp
from mobctl.host import host
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import FlowRunState, MobctlRunState, MobRun, RunOwner
from tests.conftest import SAMPLES, cli

FIXTURES = SAMPLES / "fixtures" / "hello.toml"
SECRET = "sk-live-SECRET-TOKEN"
ORPHAN = "0e000000-0000-4000-8000-000000000001"
COPY = "11111111-1111-4111-8111-111111111111"
LOG_HINT = "hint: run `mobctl store check` for details; nothing repairs this automatically\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the sample mob: events 1-7 (3-4 and 5-6 are batches)."""
    store = tmp_path_factory.mktemp("template") / "store"
    ran = cli(
        "run", SAMPLES / "minimal.toml", "-p", "name=Ada", "--driver", f"scripted:{FIXTURES}",
        "--store", store,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    return store


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(template, root)
    return root


def mobctl(store: Path, *args: str | Path) -> tuple[int, str, str]:
    result = cli(*args, "--store", store)
    return result.exit_code, result.stdout, result.stderr


def log(store: Path) -> Path:
    return store / "mobs" / "hello" / "events.jsonl"


def finished(store: Path) -> Path:
    (path,) = (store / "mobs" / "hello" / "runs").glob("*.json")
    return path


def rechain(store: Path, cursor: int, change: Callable[[dict[str, Any]], object]) -> int:
    """Change the record at ``cursor`` and re-chain the log, as anyone can (a chain hash is no
    signature); the byte offset of that record. The line is written as Python's json writes
    it by default (escapes, ``NaN``), which is how a hand edit comes out."""
    previous = "0" * 64
    lines, offset, at = [], 0, -1
    for raw in log(store).read_bytes().splitlines():
        data = json.loads(raw)
        del data["hash"]
        if data["cursor"] == cursor:
            change(data)
            at = offset
        body = json.dumps(data, separators=(",", ":")).encode()
        previous = hashlib.sha256(previous.encode() + b"\n" + body).hexdigest()
        line = body[:-1] + b',"hash":"' + previous.encode() + b'"}\n'
        lines.append(line)
        offset += len(line)
    log(store).write_bytes(b"".join(lines))
    return at


def edit(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def corrupt_log(store: Path, offset: int, problem: str) -> tuple[int, str, str]:
    """What every reader of the log answers for a bad record with later records after it."""
    return (
        6,
        "",
        f"error[store_corrupt]: event log {log(store)}: the record at byte {offset} is not an "
        f"event: {problem} (later records follow)\n" + LOG_HINT,
    )


def checked(store: Path, *problems: str) -> tuple[int, str, str]:
    return 6, "".join(p + "\n" for p in problems) + f"{len(problems)} problem(s) found\n", ""


# --- item 12: event records -----------------------------------------------------------------


def test_item12a_an_event_whose_batch_holds_text_is_store_corrupt(store: Path) -> None:
    offset = rechain(store, 4, lambda d: d.__setitem__("batch", ["x", 1]))
    problem = "batch: should be [first cursor, count]"
    for args in (["events", "tail", "hello"], ["members", "list", "hello"]):
        assert mobctl(store, *args) == corrupt_log(store, offset, problem), args
    assert mobctl(store, "run", "hello", "-p", "name=Bo") == corrupt_log(store, offset, problem)
    assert [finished(store)] == list((store / "mobs" / "hello" / "runs").glob("*.json"))
    assert mobctl(store, "store", "check") == checked(
        store, f"problem[store_corrupt] {log(store)}: record at byte {offset} is not an event: "
        f"{problem}",
    )  # fmt: skip


def test_item12b_a_terminal_event_whose_flow_id_is_an_object_is_repaired(store: Path) -> None:
    """The last record: readers leave it out (as a torn tail), so the run misses its terminal
    event, which `store check --repair` puts back after moving the record to quarantine."""
    offset = rechain(store, 7, lambda d: d["kind"].__setitem__("flow_id", {"a": SECRET}))
    run = finished(store)
    assert mobctl(store, "store", "check") == checked(
        store,
        f"problem[store_corrupt] {log(store)}: record at byte {offset} is not an event: "
        "kind.flow_id: should be a string",
        f"problem[missing_terminal_event] {run}: run {run.stem} is completed but its terminal "
        "event is missing (fixable with --repair)",
    )
    assert mobctl(store, "runs", "recover", "hello")[0] == 0
    assert mobctl(store, "register", SAMPLES / "minimal.toml")[0] == 0
    repaired = mobctl(store, "store", "check", "--repair")
    assert repaired[0] == 0, repaired
    assert f"appended the missing terminal event of run {run.stem}" in repaired[1]
    assert mobctl(store, "store", "check") == (0, "store is consistent\n", "")
    (quarantined,) = (store / "mobs" / "hello" / "quarantine").iterdir()
    assert SECRET.encode() in quarantined.read_bytes()  # kept, never printed


def test_item12c_an_attempt_that_is_text_is_never_quoted(store: Path) -> None:
    offset = rechain(store, 4, lambda d: d["kind"].__setitem__("attempt", SECRET))
    assert mobctl(store, "runs", "show", "hello", finished(store).stem) == corrupt_log(
        store, offset, "kind.attempt: should be an integer"
    )


def test_item12d_a_member_identity_with_a_lone_surrogate_leaves_no_orphan(store: Path) -> None:
    (store / "mobs" / "hello" / "roster.json").unlink()  # the roster is rebuilt from the log
    offset = rechain(store, 2, lambda d: d["kind"].__setitem__("agent_identity", "\ud800"))
    problem = (
        "kind.agent_identity: a string holds a lone surrogate (U+D800), which UTF-8 cannot encode"
    )
    assert mobctl(store, "run", "hello", "-p", "name=Bo") == corrupt_log(store, offset, problem)
    assert [finished(store)] == list((store / "mobs" / "hello" / "runs").glob("*.json"))


def test_item12e_a_roster_index_with_a_lone_surrogate_is_rebuilt(store: Path) -> None:
    roster = store / "mobs" / "hello" / "roster.json"
    roster.write_text(roster.read_text().replace('"assistant-1"', '"\\ud800"'))
    spawned = mobctl(store, "members", "spawn", "hello", "assistant")
    assert spawned[0] == 0, spawned
    listed = mobctl(store, "members", "list", "hello")
    assert listed == (
        0,
        "MEMBER       ROLE       GENERATION\n"
        "assistant-1  assistant  0\n"
        "assistant-2  assistant  0\n",
        "",
    )
    ran = mobctl(store, "run", "hello", "-p", "name=Bo", "--driver", f"scripted:{FIXTURES}")
    assert ran[0] == 0, ran


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ({"genesis": "\u00e9"}, "genesis"),
        ({"genesis": "A" * 64}, "genesis"),
        ({"chain_links": {"3": "0" * 63 + "\u00e9"}}, "chain_links.<key>"),
    ],
)
def test_item12f_a_meta_record_whose_hashes_are_not_hex_is_store_corrupt(
    store: Path, meta: dict[str, Any], field: str
) -> None:
    path = store / "mobs" / "hello" / "events.meta.json"
    path.write_text(json.dumps({"next_cursor": 1, "genesis": "0" * 64, "chain_links": {}} | meta))
    refused = (
        6,
        "",
        f"error[store_corrupt]: {path} is not an event log's meta record: {field}: Input should "
        "be 64 lowercase hex digits\n"
        "hint: `mobctl store check` reports it; restore it from a backup\n",
    )
    assert mobctl(store, "events", "tail", "hello") == refused
    assert mobctl(store, "events", "verify", "hello", "--signatures") == refused
    assert mobctl(store, "store", "check") == checked(
        store, f"problem[store_corrupt] {log(store)}: {refused[2].splitlines()[0][22:]}"
    )


def test_item12l_an_event_nested_too_deeply_is_store_corrupt(store: Path) -> None:
    offset = rechain(store, 3, lambda d: d["kind"].__setitem__("run_id", nested(400)))
    assert mobctl(store, "events", "tail", "hello", "--json") == corrupt_log(
        store, offset, "kind.run_id.0.0.0.0.0.0.…: nested more than 216 levels deep"
    )


def test_item16_nan_in_an_event_is_store_corrupt(store: Path) -> None:
    offset = rechain(store, 3, lambda d: d["kind"]["params"].__setitem__("n", float("nan")))
    assert mobctl(store, "events", "tail", "hello", "--json") == corrupt_log(
        store, offset, "kind.params.<key>: nan is not a JSON number"
    )


# --- item 12: run snapshots -----------------------------------------------------------------


def place_orphan(store: Path, **owner: Any) -> Path:
    """A pending run whose owner process is gone (``owner`` overrides its lease)."""
    stamp = timestamp()
    lease = {
        "token": "t-1", "pid": 4242, "host": host(), "process_start": "gone", "acquired_at": stamp,
        "heartbeat_at": stamp,
    } | owner  # fmt: skip
    DirectoryStore(store).runs("hello").create_run(
        MobRun(
            run_id=ORPHAN,
            mob_id="hello",
            flow_id="main",
            flow_state=FlowRunState(phase="Absent", ordered_steps=["greet"]),
            created_at=stamp,
            mobctl=MobctlRunState(owner=RunOwner(**lease), drivers=["echo"]),
        )
    )
    return store / "mobs" / "hello" / "runs" / f"{ORPHAN}.json"


def test_item12g_a_pid_beyond_any_process_is_not_a_live_one(store: Path) -> None:
    holder = store / "locks" / "store.lock.holder"
    holder.write_text(json.dumps({"pid": 2**62, "host": host(), "since": timestamp()}))
    assert mobctl(store, "store", "check") == checked(
        store,
        f"problem[stale_lock_holder] {holder}: lock holder file of a dead process (fixable with "
        "--repair)",
    )
    place_orphan(store, pid=2**62, process_start="")
    listed = mobctl(store, "runs", "list", "hello", "--status", "orphaned", "--json")
    assert listed[0] == 0, listed
    assert [(r["run_id"], r["orphaned"]) for r in json.loads(listed[1])] == [(ORPHAN, True)]
    canceled = mobctl(store, "runs", "cancel", "hello", ORPHAN)
    assert (canceled[0], canceled[2]) == (0, ""), canceled


def test_item12h_a_snapshot_whose_run_id_climbs_out_is_refused_before_any_lock(
    store: Path,
) -> None:
    snapshot = place_orphan(store)
    edit(snapshot, lambda d: d.__setitem__("run_id", "../../../../../tmp/x"))
    refused = (
        6,
        "",
        f"error[store_corrupt]: {snapshot} is not a snapshot of this run: run_id: not the run "
        "id of its file name\n"
        "hint: `mobctl store check` reports it; restore the file from a backup\n",
    )
    assert mobctl(store, "runs", "resume", "hello", ORPHAN, "--driver", "echo") == refused
    assert mobctl(store, "runs", "recover", "hello", "--cancel") == refused
    assert mobctl(store, "store", "check") == checked(
        store, f"problem[store_corrupt] {snapshot}: {refused[2].splitlines()[0][22:]}"
    )
    assert not list((store / "locks").rglob("*tmp*"))


@pytest.mark.parametrize(("line", "field"), [(0, "created_at"), (1, "completed_at")])
def test_item12_a_run_index_line_with_a_time_that_is_none_is_left_out(
    store: Path, line: int, field: str
) -> None:
    """The run index is derived data: a line that is no index entry is skipped (its run is
    then read from its snapshot), never a crash of `runs list`."""
    index = store / "mobs" / "hello" / "runs.index.jsonl"
    lines = index.read_text().splitlines(keepends=True)
    entry = json.loads(lines[line])
    entry[field] = "00000000-0000-4000-8000-000000000000"
    lines[line] = json.dumps(entry) + "\n"
    index.write_text("".join(lines))
    listed = mobctl(store, "runs", "list", "hello", "--json")
    assert listed[0] == 0, listed
    shown = [(r["run_id"], r["status"]) for r in json.loads(listed[1])]
    assert shown == ([] if field == "created_at" else [(finished(store).stem, "completed")])


def test_item12i_a_snapshot_nested_too_deeply_is_store_corrupt(store: Path) -> None:
    run = finished(store)
    edit(run, lambda d: d["flow_state"].__setitem__("failure_count", nested(400)))
    said = (
        f"{run} is not a run snapshot: flow_state.failure_count.0.0.0.0.0.0.…: nested more "
        "than 216 levels deep"
    )
    for args in (
        ["runs", "show", "hello", run.stem],
        ["runs", "show", "hello", run.stem, "--json"],
    ):
        assert mobctl(store, *args) == (6, "", f"error[store_corrupt]: {said}\n"), args
    assert mobctl(store, "store", "check") == checked(
        store, f"problem[store_corrupt] {run}: {said}"
    )


def test_item12j_a_flow_state_field_of_another_type_is_store_corrupt(store: Path) -> None:
    run = finished(store)
    edit(run, lambda d: d["flow_state"].__setitem__("ordered_steps", 5))
    said = f"{run} is not a run snapshot: flow_state.ordered_steps: Input should be a valid list"
    assert mobctl(store, "runs", "show", "hello", run.stem) == (
        6,
        "",
        f"error[store_corrupt]: {said}\n",
    )
    assert mobctl(store, "store", "check") == checked(
        store, f"problem[store_corrupt] {run}: {said}"
    )


def test_item16_nan_in_a_stored_param_is_refused_on_read(store: Path) -> None:
    """`runs show --json` printed ``NaN`` (not JSON): the snapshot is refused when read."""
    run = finished(store)
    text = run.read_text().replace('"name":"Ada"', '"name":NaN')
    run.write_text(text)
    said = f"{run} is not a run snapshot: activation_params.<key>: nan is not a JSON number"
    assert mobctl(store, "runs", "show", "hello", run.stem, "--json") == (
        6,
        "",
        f"error[store_corrupt]: {said}\n",
    )


# --- item 15 (and 12 K): a snapshot that is not its file's run -------------------------------


def test_item15_a_copy_under_another_name_is_refused_and_reported(store: Path) -> None:
    run = finished(store)
    copy = run.with_name(f"{COPY}.json")
    shutil.copy(run, copy)
    said = f"{copy} is not a snapshot of this run: run_id: not the run id of its file name"
    listed = mobctl(store, "runs", "list", "hello", "-o", "name")
    assert (listed[0], [line.split()[0] for line in listed[1].splitlines()]) == (0, [run.stem])
    assert mobctl(store, "runs", "show", "hello", "1111") == (
        6,
        "",
        f"error[store_corrupt]: {said}\n"
        "hint: `mobctl store check` reports it; restore the file from a backup\n",
    )
    assert mobctl(store, "store", "check") == checked(
        store, f"problem[store_corrupt] {copy}: {said}"
    )
    before = log(store).read_bytes()
    assert mobctl(store, "store", "check", "--repair")[0] == 6
    assert log(store).read_bytes() == before  # no event for a run that does not exist


def test_item12k_a_snapshot_of_another_mob_is_refused_never_repaired_into_this_log(
    store: Path,
) -> None:
    run = finished(store)
    edit(run, lambda d: (d.__setitem__("mob_id", "other"), d["mobctl"].pop("terminal_event")))
    run.rename(run.with_name(f"{COPY}.json"))
    moved = run.with_name(f"{COPY}.json")
    edit(moved, lambda d: d.__setitem__("run_id", COPY))
    (store / "mobs" / "hello" / "runs.index.jsonl").unlink()  # rebuilt from the snapshots
    (store / "mobs" / "hello" / "runs.live.json").unlink(missing_ok=True)
    said = f"{moved} is not a snapshot of this run: mob_id: not the mob whose directory holds it"
    refused = (
        6,
        "",
        f"error[store_corrupt]: {said}\n"
        "hint: `mobctl store check` reports it; restore the file from a backup\n",
    )
    before = log(store).read_bytes()
    for args in (
        ["run", "hello", "-p", "name=Bo"],
        ["register", SAMPLES / "minimal.toml"],
        ["runs", "recover", "hello"],
    ):
        assert mobctl(store, *args) == refused, args
    assert log(store).read_bytes() == before
    assert mobctl(store, "store", "check") == checked(
        store, f"problem[store_corrupt] {moved}: {said}"
    )
