"""No error quotes a store file's content (the Trust issue, item 4).

A canary string is planted inside a wrong-shaped value (or a key, or broken JSON) in every kind
of store file; every command that reads or writes the store then runs, and none prints the
canary on stdout or stderr. The errors name the file, the field and what it should be, and
`store check` (a real process) reports each file with that exact text.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from mobctl.store.defects import shape_defect, unreadable
from mobctl.store.hashing import GENESIS, line_hash
from tests.conftest import cli, mobctl_process
from tests.store.full_store import FILES, LOCK_FILES, PENDING, FullStore, build

CANARY = "CANARY-5f1d0c"

Edit = Callable[[Path], None]


def document(change: Callable[[dict[str, Any]], object]) -> Edit:
    def edit(path: Path) -> None:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return edit


def line(index: int, change: Callable[[dict[str, Any]], object]) -> Edit:
    def edit(path: Path) -> None:
        lines = path.read_text().splitlines()
        data = json.loads(lines[index])
        change(data)
        lines[index] = json.dumps(data)
        path.write_text("\n".join(lines) + "\n")

    return edit


def event(index: int, change: Callable[[dict[str, Any]], object]) -> Edit:
    """Change one record of the event log and re-chain it and every later record, as anyone
    may (a chain hash is no signature): the chain verifies, the record has the wrong shape."""

    def edit(path: Path) -> None:
        meta = json.loads((path.parent / "events.meta.json").read_text())
        previous: str | None = None
        lines = []
        for number, raw in enumerate(path.read_bytes().splitlines()):
            data = json.loads(raw)
            del data["hash"]
            cursor = data["cursor"]
            if number == index:
                change(data)
            body = json.dumps(data, separators=(",", ":")).encode()
            link = meta["chain_links"].get(str(cursor))
            previous = line_hash(link or previous or meta.get("genesis", GENESIS), body)
            lines.append(body[:-1] + b',"hash":"' + previous.encode() + b'"}\n')
        path.write_bytes(b"".join(lines))

    return edit


def put(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda data: data.__setitem__(key, value)


def append(text: str) -> Edit:
    return lambda path: path.write_text(path.read_text() + text + "\n")


INTEGER = "Input should be a valid integer, unable to parse string as an integer"
STATUS = "status: Input should be 'pending', 'running', 'completed', 'failed' or 'canceled'"
CORRUPT = "problem[store_corrupt] {file}: {file}"
# name -> (file, edit, what `store check` says of it, or None: no command reads the file);
# {file}: the file, {log}: the event log, {snapshot}: the pending run's snapshot, {start} and
# {end}: the file's size before and after the edit, {offset}: where its third line starts
EDITS: dict[str, tuple[str, Edit, str | None]] = {
    "store marker": (
        "store.json",
        document(put("schema_version", CANARY)),
        "error[store_corrupt]: {file} is not a store marker: schema_version: Input should be "
        "a valid integer",
    ),
    "spec field": (
        "specs/hello.json",
        document(put("revision", CANARY)),
        f"{CORRUPT} is not a spec record: revision: {INTEGER}",
    ),
    "spec key": (
        "specs/hello.json",
        document(put(CANARY, 1)),
        f"{CORRUPT} is not a spec record: <key>: Extra inputs are not permitted",
    ),
    "spec JSON": (
        "specs/hello.json",
        lambda path: path.write_text('{"revision": ' + CANARY + "}"),
        f"{CORRUPT} is not valid JSON (Expecting value at line 1, column 14)",
    ),
    "profile": (
        "profiles/editor.json",
        document(put("created_at", CANARY)),
        f"{CORRUPT} is not a realm profile: created_at: Input should be an RFC 3339 timestamp",
    ),
    "event kind": (
        "mobs/hello/events.jsonl",
        event(2, put("kind", [CANARY])),
        "problem[store_corrupt] {file}: record at byte {offset} is not an event: kind: should be "
        "an object",
    ),
    "event time": (
        "mobs/hello/events.jsonl",
        event(2, put("timestamp", CANARY)),
        "problem[store_corrupt] {file}: record at byte {offset} is not an event: timestamp: "
        "should be an RFC 3339 timestamp",
    ),
    "events meta": (
        "mobs/hello/events.meta.json",
        document(put("next_cursor", CANARY)),
        "problem[store_corrupt] {log}: {file} is not an event log's meta record: next_cursor: "
        + INTEGER,
    ),
    "events meta key": (
        "mobs/hello/events.meta.json",
        document(put("chain_links", {CANARY: 5})),
        "problem[store_corrupt] {log}: {file} is not an event log's meta record: "
        "chain_links.<key>: Input should be a valid string",
    ),
    "checkpoint": (
        "mobs/hello/checkpoints.jsonl",
        line(0, put("signed_at", CANARY)),
        "problem[store_corrupt] {file}: line 1 is not a checkpoint",
    ),
    "quarantine": ("mobs/hello/quarantine/{quarantined}", append(CANARY), None),
    # the roster index is a cache: a damaged one is rebuilt from the log, never reported
    "roster": ("mobs/hello/roster.json", document(put("cursor", CANARY)), None),
    "run status": (
        "mobs/hello/runs/{finished}.json",
        document(put("status", [CANARY])),
        f"{CORRUPT} is not a run snapshot: {STATUS}",
    ),
    "run frame": (
        "mobs/hello/runs/{finished}.json",
        document(put("frames", {CANARY: 5})),
        f"{CORRUPT} is not a run snapshot: frames.<key>: Input should be a valid dictionary or "
        "instance of FrameSnapshot",
    ),
    "run format": (
        "mobs/hello/runs/{finished}.json",
        document(lambda run: run["mobctl"].__setitem__("snapshot_format", CANARY)),
        f"{CORRUPT} is not a run snapshot: mobctl.snapshot_format: {INTEGER}",
    ),
    "run owner": (
        "mobs/hello/runs/{finished}.json",
        document(lambda run: run["mobctl"]["owner"].__setitem__("heartbeat_at", CANARY)),
        f"{CORRUPT} is not a run snapshot: mobctl.owner.heartbeat_at: Input should be an RFC "
        "3339 timestamp",
    ),
    "journal seq": (
        "mobs/hello/runs/{pending}.journal",
        append(json.dumps({"seq": CANARY, "ops": []})),
        "problem[store_corrupt] {snapshot}: run journal {file} is corrupt: unreadable journal "
        'line (not {{"seq": <integer>, "ops": <list>}}) at byte {start}',
    ),
    "journal path": (
        "mobs/hello/runs/{pending}.journal",
        append(json.dumps({"seq": 2, "ops": [["set", [CANARY, "x"], 1]]})),
        "problem[store_corrupt] {snapshot}: run journal {file} is corrupt: journal line 2 does "
        "not apply to the snapshot at byte {end}",
    ),
    "journal op": (
        "mobs/hello/runs/{pending}.journal",
        append(json.dumps({"seq": 2, "ops": [[CANARY, ["status"], 1]]})),
        "problem[store_corrupt] {snapshot}: run journal {file} is corrupt: journal line 2 does "
        "not apply to the snapshot at byte {end}",
    ),
    "journal value": (
        "mobs/hello/runs/{pending}.journal",
        append(json.dumps({"seq": 2, "ops": [["set", ["status"], [CANARY]]]})),
        "problem[store_corrupt] {snapshot}: {snapshot} is not a run snapshot: " + STATUS,
    ),
    "authority": (
        "mobs/hello/metadata/supervisor.json",
        document(put("secret_key", CANARY)),
        f"{CORRUPT} is not a supervisor authority record: secret_key: Input should be a valid list",
    ),
    "authority scheme": (
        "mobs/hello/metadata/supervisor.json",
        document(put("secret_key", {"enc": CANARY})),
        "problem[store_format_too_new] {file}: the supervisor secret of mob 'hello' is "
        "encrypted with a scheme this mobctl does not know; it reads only 'scrypt-aes256gcm-v1'",
    ),
    "history": (
        "mobs/hello/metadata/supervisor-history.jsonl",
        line(0, put("epoch", CANARY)),
        f"{CORRUPT} line 1 is not an authority history entry: epoch: {INTEGER}",
    ),
    "overlays": (
        "mobs/hello/metadata/overlays/overlays.json",
        document(lambda overlays: overlays[0].__setitem__("generation", CANARY)),
        f"{CORRUPT} is not a list of binding overlays: 0.generation: {INTEGER}",
    ),
    **{
        f"lock {name}": (name, lambda path: path.write_text(json.dumps({"pid": CANARY})), None)
        for name in LOCK_FILES
    },
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> FullStore:
    return build(tmp_path_factory.mktemp("template") / "store")


def test_every_kind_of_store_file_gets_a_canary() -> None:
    assert {file for file, _, _ in EDITS.values()} == {*FILES, *LOCK_FILES}


def commands(store: FullStore) -> list[list[str | Path]]:
    """Every command of :meth:`FullStore.commands`, and the JSON and other-run variants."""
    return [
        *store.commands().values(),
        ["runs", "show", "hello", PENDING, "--json"],
        ["runs", "list", "hello", "--json"],
        ["events", "tail", "hello", "--json"],
        ["store", "check", "--json"],
        ["runs", "recover", "hello"],
    ]


@pytest.mark.parametrize("edit", list(EDITS))
def test_item4_no_command_quotes_a_store_file(
    template: FullStore, tmp_path: Path, edit: str
) -> None:
    root = tmp_path / "store"
    shutil.copytree(template.root, root)
    store = FullStore(root, template.finished, template.quarantined, template.changed)
    name, change, said = EDITS[edit]
    path = store.path(name)
    start = path.stat().st_size
    change(path)
    if path.name == "supervisor.json":
        path.chmod(0o600)
    if said is not None:  # `store check`, in a real process, names the file and the field
        checked = mobctl_process("store", "check", "--store", root)
        expected = said.format(
            file=path,
            log=store.path("mobs/hello/events.jsonl"),
            snapshot=store.path("mobs/hello/runs/{pending}.json"),
            start=start,
            end=path.stat().st_size,
            offset=sum(len(raw) for raw in path.read_bytes().splitlines(keepends=True)[:2]),
        )
        assert checked.returncode == 6, checked.stdout
        if expected.startswith("error["):
            assert (checked.stdout, checked.stderr) == ("", expected + "\n")
        else:
            assert (checked.stdout, checked.stderr) == (expected + "\n1 problem(s) found\n", "")
    for args in commands(store):
        result = cli(*args, "--store", root)
        said = result.stdout + result.stderr
        assert CANARY not in said, (args, said)
        assert "input_value" not in said, (args, said)
        assert result.exit_code != 70, (args, result.stderr)


def test_a_lock_holder_is_never_quoted_while_waiting(template: FullStore, tmp_path: Path) -> None:
    """A waiter names the holder from its ``.holder`` file only when that file is a holder
    record with nothing a terminal would obey; anything else is "an unknown process"."""
    root = tmp_path / "store"
    shutil.copytree(template.root, root)
    store = FullStore(root, template.finished, template.quarantined, template.changed)
    lock = store.path("locks/specs/hello.lock")
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another holder (an open file of its own)
        since = "2026-11-22T20:15:03.123456Z"
        for holder, named in [
            ({"pid": 7, "host": "h", "since": since, "command": "mobctl run"}, None),
            ({"pid": CANARY, "host": "h", "since": since}, "an unknown process"),
            ({"pid": 7, "host": ["h", CANARY], "since": since}, "an unknown process"),
            ({"pid": 7, "host": "h", "since": CANARY}, "an unknown process"),
            ({"pid": 7, "host": "h\x1b]0;" + CANARY, "since": since}, "an unknown process"),
        ]:
            lock.with_name("hello.lock.holder").write_text(json.dumps(holder))
            result = cli("register", store.changed, "--store", root, "--lock-timeout", "0.2")
            assert result.exit_code == 6, result.stderr
            assert result.stderr == (
                "error[store_lock_timeout]: timed out after 0.2s waiting for the specs/hello "
                f"lock, held by {named or f'pid 7 on h since {since} (mobctl run)'}\n"
                "hint: wait for that command to finish, or raise --lock-timeout\n"
            )
    finally:
        os.close(fd)


class _Part(BaseModel):
    kind: Literal["a"] = "a"
    size: int


class _Other(BaseModel):
    kind: Literal["b"] = "b"


def _positive(value: int) -> int:
    if value < 0:
        raise ValueError(f"{value} is negative")  # a validator's message may quote the value
    return value


class _Record(BaseModel):
    count: int
    parts: dict[str, _Part]
    choice: Annotated[_Part | _Other, Field(discriminator="kind")]
    level: Annotated[int, AfterValidator(_positive)] = 0


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"count": CANARY, "parts": {}, "choice": {"kind": "a", "size": 1}}, f"count: {INTEGER}"),
        (
            {"count": 1, "parts": {CANARY: {"size": CANARY}}, "choice": {"kind": "a", "size": 1}},
            f"parts.<key>.size: {INTEGER}",
        ),
        (
            {"count": 1, "parts": {}, "choice": {"kind": CANARY}},
            "choice: invalid value (union_tag_invalid)",
        ),
        (
            {"count": 1, "parts": {}, "choice": {"kind": "a", "size": 1}, "level": -7},
            "level: invalid value (value_error)",
        ),
        (
            {"count": [CANARY], "parts": [CANARY], "choice": {"kind": "a", "size": 1}},
            "count: Input should be a valid integer (and 1 more)",
        ),
        ([CANARY], "Input should be a valid dictionary or instance of _Record"),
    ],
)
def test_the_helper_names_the_field_and_the_type_never_the_value(data: Any, named: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _Record.model_validate(data)
    assert shape_defect(raised.value, _Record) == named
    error = unreadable(Path("/s/x.json"), "a record", raised.value, _Record)
    assert error.message == f"/s/x.json is not a record: {named}"
    assert error.code == "store_corrupt"


def test_the_helper_names_where_json_breaks_never_the_text() -> None:
    for text, named in [
        (f'{{"a": {CANARY}}}', "Expecting value at line 1, column 7"),
        (f'{{"a": "{CANARY}"', "Expecting ',' delimiter at line 1, column 22"),
        (b'{"a": "\xff' + CANARY.encode() + b'"}', "not UTF-8 at byte 7"),
    ]:
        try:
            json.loads(text)
        except ValueError as exc:
            assert unreadable("/s/x.json", "a record", exc).message == (
                f"/s/x.json is not valid JSON ({named})"
            )
        else:
            raise AssertionError(text)
