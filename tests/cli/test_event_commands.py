"""`mobctl events tail|verify|prune` through the real CLI: every filter, output, error text."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobctl import api
from mobctl.cli.parsing import event_query
from mobctl.clock import timestamp
from mobctl.errors import NotFound, StaleCursor
from mobctl.store.directory import DirectoryStore
from mobctl.store.hashing import line_hash
from mobctl.store.models import EventKind, NewMobEvent
from tests.conftest import REPO, cli

MOB = "review"
R1 = "11111111-1111-4111-8111-111111111111"
R2 = "22222222-2222-4222-8222-222222222222"
R3 = "33333333-3333-4333-8333-333333333333"
W1 = {"identity": "w-1", "generation": 0}
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minute: int) -> str:
    return timestamp(BASE + timedelta(minutes=minute))


def new(kind: str, minute: int, **fields: Any) -> NewMobEvent:
    return NewMobEvent(mob_id=MOB, kind=EventKind(type=kind, **fields), timestamp=at(minute))


# cursor: (type, run, step, minute)
LOG: list[tuple[str, str | None, str | None, int]] = [
    ("mob_created", None, None, 0),  # 1
    ("member_spawned", None, None, 1),  # 2
    ("flow_started", R1, None, 10),  # 3
    ("step_dispatched", R1, "a", 11),  # 4
    ("step_target_completed", R1, "a", 12),  # 5
    ("step_completed", R1, "a", 13),  # 6
    ("flow_completed", R1, None, 14),  # 7
    ("flow_started", R2, None, 20),  # 8
    ("step_dispatched", R2, "b", 21),  # 9
    ("step_target_failed", R2, "b", 22),  # 10
    ("step_failed", R2, "b", 23),  # 11
    ("step_skipped", R2, "c", 24),  # 12
    ("flow_failed", R2, None, 25),  # 13
    ("flow_started", R3, None, 30),  # 14 (a batch of two)
    ("step_dispatched", R3, "a", 31),  # 15
]


def fill(location: Path) -> DirectoryStore:
    store = DirectoryStore(location)
    log = store.events(MOB)
    log.append(new("mob_created", 0, definition={"mob": {"id": MOB}}))
    log.append(
        new(
            "member_spawned",
            1,
            agent_identity="w-1",
            generation=0,
            fence_token=1,
            agent_runtime_id=W1,
            role="w",
            runtime_mode="turn_driven",
        )
    )
    log.append(new("flow_started", 10, run_id=R1, flow_id="main", params={"topic": "x"}))
    log.append(new("step_dispatched", 11, run_id=R1, step_id="a", target=W1, attempt=1))
    log.append(new("step_target_completed", 12, run_id=R1, step_id="a", target=W1, output="A"))
    log.append(new("step_completed", 13, run_id=R1, step_id="a"))
    log.append(new("flow_completed", 14, run_id=R1, flow_id="main", structured_output={"a": 1}))
    log.append(new("flow_started", 20, run_id=R2, flow_id="main", params={}))
    log.append(new("step_dispatched", 21, run_id=R2, step_id="b", target=W1, attempt=1))
    log.append(
        new("step_target_failed", 22, run_id=R2, step_id="b", target=W1, reason="flaky network")
    )
    log.append(new("step_failed", 23, run_id=R2, step_id="b", reason="flaky network"))
    log.append(new("step_skipped", 24, run_id=R2, step_id="c", reason="dependency 'b' failed"))
    log.append(
        new("flow_failed", 25, run_id=R2, flow_id="main", cause="step_error", reason="b failed")
    )
    log.append_batch(
        [
            new("flow_started", 30, run_id=R3, flow_id="main", params={}),
            new("step_dispatched", 31, run_id=R3, step_id="a", target=W1, attempt=1),
        ]
    )
    return store


@pytest.fixture
def store(store: Path) -> Path:
    """The test's store, holding the events of :func:`fill`."""
    fill(store)
    return store


def tail(store: Path, *args: str) -> Any:
    return cli("events", "tail", MOB, "--store", store, *args)


def cursors(result: Any) -> list[int]:
    assert result.exit_code == 0, result.stderr
    return [int(line.split()[1]) for line in result.stdout.splitlines()]


def expected(
    *,
    run: str | None = None,
    step: str | None = None,
    types: tuple[str, ...] = (),
    since: int | None = None,
    until: int | None = None,
    after: int = 0,
) -> list[int]:
    """The brute-force answer over LOG (cursor = position + 1)."""
    found = []
    for cursor, (kind, run_id, step_id, minute) in enumerate(LOG, start=1):
        if cursor <= after or (run is not None and run_id != run):
            continue
        if step is not None and step_id != step:
            continue
        if types and not any(fnmatchcase(kind, p) for p in types):
            continue
        if (since is not None and minute < since) or (until is not None and minute > until):
            continue
        found.append(cursor)
    return found


# --- tail: filters ------------------------------------------------------------------------


def test_default_is_the_last_20_oldest_first(tmp_path: Path) -> None:
    location = tmp_path / "store"
    log = DirectoryStore(location).events(MOB)
    for i in range(25):
        log.append(new("x", i, i=i))
    assert cursors(tail(location)) == list(range(6, 26))


def test_no_filter(store: Path) -> None:
    assert cursors(tail(store)) == list(range(1, 16))


@pytest.mark.parametrize("limit", [0, 1, 3, 15, 100])
def test_limit(store: Path, limit: int) -> None:
    assert cursors(tail(store, "--limit", str(limit))) == list(range(1, 16))[-limit or 16 :]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["--run", R1], expected(run=R1)),
        (["--run", R2], expected(run=R2)),
        (["--step", "a"], expected(step="a")),
        (["--step", "c"], [12]),
        (["--run", R1, "--step", "a"], expected(run=R1, step="a")),
        (["--run", R2, "--step", "a"], []),
        (["--type", "flow_*"], expected(types=("flow_*",))),
        (["--type", "flow_*,step_failed"], expected(types=("flow_*", "step_failed"))),
        (["--type", "flow_*", "--type", "step_failed"], expected(types=("flow_*", "step_failed"))),
        (["--type", " flow_failed , step_?ailed "], [11, 13]),
        (["--type", "step_[dt]*"], expected(types=("step_[dt]*",))),
        (["--type", "step_[!d]*"], expected(types=("step_[!d]*",))),
        (["--type", "member_spawned"], [2]),
        (["--type", "nothing_like_this"], []),
        (["--since", at(20)], expected(since=20)),
        (["--until", at(12)], expected(until=12)),
        (["--since", at(11), "--until", at(13)], [4, 5, 6]),
        (["--since", "2026-03-01T13:11:00+01:00"], expected(since=11)),  # an offset
        (["--since", "2026-03-01T12:21:00"], expected(since=21)),  # no offset: UTC
        (["--since", "2026-03-01T12:13:00.500000001Z"], expected(since=14)),  # 9 digits
        (["--after-cursor", "10"], expected(after=10)),
        (["--after-cursor", "0"], expected()),
        (["--after-cursor", "15"], []),
        (["--after-cursor", "3", "--limit", "2"], [14, 15]),
        (["--run", R2, "--type", "step_*", "--limit", "2"], [11, 12]),
        (["--run", R1, "--since", at(12), "--until", at(13)], [5, 6]),
        (["--step", "a", "--type", "step_dispatched", "--after-cursor", "4"], [15]),
        (
            ["--type", "flow_*", "--since", at(14), "--after-cursor", "7", "--limit", "1"],
            [14],
        ),
        (
            ["--run", R2, "--step", "b", "--type", "*failed", "--since", at(22), "--until", at(23)],
            [10, 11],
        ),
    ],
)
def test_filters(store: Path, args: list[str], want: list[int]) -> None:
    assert cursors(tail(store, *args)) == want


def test_relative_times(tmp_path: Path) -> None:
    location = tmp_path / "store"
    log = DirectoryStore(location).events(MOB)
    now = datetime.now(UTC)
    # "now" is a minute ahead, so that however slowly the tails below run it stays recent
    ages = [
        ("day", timedelta(days=2)),
        ("hour", timedelta(hours=3)),
        ("now", -timedelta(minutes=1)),
    ]
    for label, ago in ages:
        moment = timestamp(now - ago)
        log.append(NewMobEvent(mob_id=MOB, kind=EventKind(type=label), timestamp=moment))
    assert cursors(tail(location, "--since", "1d")) == [2, 3]
    assert cursors(tail(location, "--since", "10m")) == [3]
    assert cursors(tail(location, "--since", "3d", "--until", "2h")) == [1, 2]
    assert cursors(tail(location, "--until", "90s")) == [1, 2]
    assert cursors(tail(location, "--since", "49h")) == [1, 2, 3]
    assert cursors(tail(location, "--since", "1.5d", "--until", "1500ms")) == [2]
    # further back than a date goes: from the beginning of time, not a crash
    for huge in ("1000000d", "99999999999d"):
        assert cursors(tail(location, "--since", huge)) == [1, 2, 3]
        assert cursors(tail(location, "--until", huge)) == []


# --- tail: output -------------------------------------------------------------------------


def test_human_lines(store: Path) -> None:
    result = tail(store, "--after-cursor", "1")
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "2026-03-01T12:01:00.000Z      2 member_spawned         member=w-1 generation=0 role=w "
        "runtime_mode=turn_driven"
    )
    assert lines[1] == (
        '2026-03-01T12:10:00.000Z      3 flow_started           run=11111111 flow_id=main params={"topic":"x"}'
    )
    assert lines[3] == (
        "2026-03-01T12:12:00.000Z      5 step_target_completed  run=11111111 step=a member=w-1 output=A"
    )
    assert lines[8] == (
        '2026-03-01T12:22:00.000Z     10 step_target_failed     run=22222222 step=b member=w-1 reason="flaky network"'
    )
    assert lines[11] == (
        "2026-03-01T12:25:00.000Z     13 flow_failed            run=22222222 flow_id=main cause=step_error "
        'reason="b failed"'
    )
    assert tail(store, "--limit", "15").stdout.splitlines()[0] == (
        "2026-03-01T12:00:00.000Z      1 mob_created"
    )
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_long_values_are_cut_and_stay_on_one_line(tmp_path: Path) -> None:
    location = tmp_path / "store"
    log = DirectoryStore(location).events(MOB)
    log.append(new("step_failed", 0, run_id=R1, step_id="a", reason="line one\nline two " * 10))
    log.append(new("step_target_completed", 1, run_id=R1, step_id="a", output={"k": "v" * 100}))
    lines = tail(location).stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        ' reason="line one\\nline two line one\\nline two line one\\nline two...'
    )
    assert lines[1].endswith(' output={"k":"' + "v" * 51 + "...")
    assert len(lines[1].split(" output=")[1]) == 60


def test_json_lines_are_the_public_event(store: Path) -> None:
    result = tail(store, "--json", "--after-cursor", "12")
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["cursor"] for d in documents] == [13, 14, 15]
    assert documents[0] == {
        "cursor": 13,
        "timestamp": "2026-03-01T12:25:00.000000Z",
        "mob_id": MOB,
        "kind": {
            "type": "flow_failed",
            "run_id": R2,
            "flow_id": "main",
            "cause": "step_error",
            "reason": "b failed",
        },
    }
    assert list(documents[1]) == ["cursor", "timestamp", "mob_id", "kind"]  # no hash, no batch
    stored = (store / "mobs" / MOB / "events.jsonl").read_text().splitlines()[12]
    assert result.stdout.splitlines()[0] == stored.split(',"hash":')[0] + "}"


def test_json_keeps_null_fields_as_stored(tmp_path: Path) -> None:
    location = tmp_path / "store"
    DirectoryStore(location).events(MOB).append(new("x", 0, value=None))
    assert json.loads(tail(location, "--json").stdout)["kind"] == {"type": "x", "value": None}


def test_colour_on_a_terminal_only_and_never_with_no_color(store: Path) -> None:
    coloured = on_terminal(["events", "tail", MOB, "--store", str(store), "--limit", "2"])
    assert "\x1b[" in coloured and "step_dispatched" in coloured
    plain = on_terminal(
        ["events", "tail", MOB, "--store", str(store), "--limit", "2"], env={"NO_COLOR": "1"}
    )
    assert "\x1b[" not in plain
    assert plain.replace("\r\n", "\n") == tail(store, "--limit", "2").stdout


def test_follow_with_a_finished_run_prints_its_events_and_exits(store: Path) -> None:
    assert cursors(tail(store, "--follow", "--run", R1)) == expected(run=R1)
    failed = tail(store, "--follow", "--run", R2, "--type", "step_*")
    assert failed.exit_code == 3  # the run's code, as `mobctl run` exits for it
    assert [int(line.split()[1]) for line in failed.stdout.splitlines()] == [9, 10, 11, 12]
    assert cursors(tail(store, "-f", "--run", R1, "--after-cursor", "7")) == []


def test_follow_with_an_until_in_the_past_ends_after_the_backlog(store: Path) -> None:
    """Nothing appended from now on can match --until 1s, so following it would wait forever."""
    assert cursors(tail(store, "--follow", "--until", "1s")) == expected()[-20:]


def test_a_run_whose_events_were_pruned_ends_at_once(tmp_path: Path) -> None:
    location = tmp_path / "store"
    sample = REPO / "sample-mobs"
    ran = cli(
        "run",
        sample / "minimal.toml",
        "-p",
        "name=Ada",
        "--driver",
        f"scripted:{sample / 'fixtures' / 'hello.toml'}",
        "--store",
        location,
    )
    run_id = ran.stdout.split()[1]
    done = cli("events", "tail", "hello", "--follow", "--run", run_id, "--store", location)
    assert [line.split()[2] for line in done.stdout.splitlines()] == [
        "flow_started",
        "step_dispatched",
        "step_target_completed",
        "step_completed",
        "flow_completed",
    ]
    assert (
        cli("events", "prune", "hello", "--older-than", "0s", "-y", "--store", location).exit_code
        == 0
    )
    # only its snapshot is left, and it says the run is over: nothing to wait for
    gone = cli("events", "tail", "hello", "--follow", "--run", run_id, "--store", location)
    assert (gone.exit_code, gone.stdout, gone.stderr) == (0, "", "")


# --- tail: errors -------------------------------------------------------------------------


def errors(result: Any) -> tuple[int, list[str]]:
    assert result.stdout == ""
    return result.exit_code, result.stderr.splitlines()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--type", "Flow_*"],
            2,
            [
                "error[usage]: --type has the pattern 'Flow_*'; event types are lowercase letters, digits and '_'",
                "hint: patterns may use * ? [...], comma-separated: --type 'flow_*,step_failed'",
            ],
        ),
        (
            ["--type", "flow_*,"],
            2,
            [
                "error[usage]: --type has an empty pattern; event types are lowercase letters, digits and '_'",
                "hint: patterns may use * ? [...], comma-separated: --type 'flow_*,step_failed'",
            ],
        ),
        (
            ["--since", "yesterday"],
            2,
            [
                "error[usage]: --since 'yesterday' is neither a time nor a duration",
                "hint: use RFC 3339 (2026-05-01T12:00:00Z) or a duration before now (30, 30s, 1m30s, 2h, 1d)",
            ],
        ),
        (
            ["--until", "10 minutes"],
            2,
            [
                "error[usage]: --until '10 minutes' is neither a time nor a duration",
                "hint: use RFC 3339 (2026-05-01T12:00:00Z) or a duration before now (30, 30s, 1m30s, 2h, 1d)",
            ],
        ),
        (
            ["--since", "-5m"],
            2,
            [
                "error[usage]: --since '-5m' is neither a time nor a duration",
                "hint: use RFC 3339 (2026-05-01T12:00:00Z) or a duration before now (30, 30s, 1m30s, 2h, 1d)",
            ],
        ),
        (
            ["--since", "2026-03-02T00:00:00Z", "--until", "2026-03-01T00:00:00Z"],
            2,
            [
                "error[usage]: --since 2026-03-02T00:00:00Z is after --until 2026-03-01T00:00:00Z: nothing can match"
            ],
        ),
        (
            ["--after-cursor", "16"],
            1,
            [
                "error[stale_cursor]: cursor 16 is beyond the end of the log (latest cursor is 15)",
                "hint: use --after-cursor 15 or lower",
            ],
        ),
        (
            ["--follow", "--after-cursor", "99"],
            1,
            [
                "error[stale_cursor]: cursor 99 is beyond the end of the log (latest cursor is 15)",
                "hint: use --after-cursor 15 or lower",
            ],
        ),
        (
            ["--run", "44444444-4444-4444-8444-444444444444"],
            1,
            [
                "error[not_found]: mob 'review' has no run '44444444-4444-4444-8444-444444444444'",
                "hint: `mobctl runs list review` lists its runs",
            ],
        ),
        (
            ["--follow", "--run", "nope"],
            1,
            [
                "error[not_found]: mob 'review' has no run 'nope'",
                "hint: `mobctl runs list review` lists its runs",
            ],
        ),
    ],
)
def test_user_errors(store: Path, args: list[str], code: int, message: list[str]) -> None:
    assert errors(tail(store, *args)) == (code, message)


def test_bad_numbers_are_usage_errors(store: Path) -> None:
    for option, named in (("--limit", "'-L' / '--limit'"), ("--after-cursor", "'--after-cursor'")):
        result = tail(store, option, "-1")
        assert (result.exit_code, result.stderr) == (
            2,
            f"error[usage]: invalid value for {named}: Input should be greater than or equal to 0\n"
            "hint: usage: mobctl events tail [OPTIONS] MOB (--help explains)\n",
        )


def test_unknown_and_unsafe_mobs(store: Path, tmp_path: Path) -> None:
    # `tail --follow` waits for a mob that does not exist yet (tests/cli/test_detach.py)
    for command in (["tail"], ["verify"], ["prune", "--older-than", "1d"]):
        result = cli("events", command[0], "ghost", *command[1:], "--store", store)
        assert errors(result) == (
            1,
            [
                f"error[not_found]: no mob 'ghost' in the store {store}",
                "hint: `mobctl specs list` shows the registered mobs",
            ],
        )
    unsafe = cli("events", "tail", "../x", "--store", store)
    assert errors(unsafe) == (
        1,
        [
            "error[unsafe_id]: mob id '../x' cannot be used as a file name",
            "hint: use ASCII letters, digits, '.', '_' and '-', at most 128, starting with a letter or digit, not ending with '.', not a Windows device name such as CON or com1",
        ],
    )
    missing = tmp_path / "nowhere"
    assert cli("events", "tail", MOB, "--store", missing).exit_code == 1
    assert not missing.exists()  # reading never creates a store


def test_a_mob_without_events_prints_nothing(tmp_path: Path) -> None:
    location = tmp_path / "store"
    store = DirectoryStore(location)
    store.events(MOB).append(new("x", 0))
    store.events(MOB).clear()
    result = tail(location)
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "no events of mob 'review' match\n"
    as_json = tail(location, "--json")
    assert (as_json.exit_code, as_json.stdout, as_json.stderr) == (0, "", "")
    stale = tail(location, "--after-cursor", "1")
    assert stale.stderr.splitlines()[0] == (
        "error[stale_cursor]: cursor 1 is beyond the end of the log (latest cursor is 0)"
    )


def test_a_registered_mob_has_its_creation_event(tmp_path: Path) -> None:
    location = tmp_path / "store"
    assert (
        cli("register", REPO / "sample-mobs" / "minimal.toml", "--store", location).exit_code == 0
    )
    result = cli("events", "tail", "hello", "--store", location, "--json")
    assert [json.loads(line)["kind"]["type"] for line in result.stdout.splitlines()] == [
        "mob_created"
    ]


# --- property: the filters are a plain filter over every event ----------------------------

TYPES = ["flow_started", "flow_completed", "step_failed", "step_completed", "member_spawned"]
RUNS = [R1, R2, None]
STEPS = ["a", "b", None]

events_strategy = st.lists(
    st.tuples(
        st.sampled_from(TYPES),
        st.sampled_from(RUNS),
        st.sampled_from(STEPS),
        st.integers(0, 5),
        st.booleans(),  # starts a batch with the next event
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=events_strategy,
    run=st.sampled_from(RUNS),
    step=st.sampled_from(STEPS),
    types=st.lists(
        st.sampled_from(["flow_*", "step_?ailed", "*_completed", "member_*"]), max_size=2
    ),
    since=st.none() | st.integers(0, 5),
    until=st.none() | st.integers(0, 5),
    after=st.none() | st.integers(0, 30),
    limit=st.none() | st.integers(0, 8),
)
def test_tail_equals_a_brute_force_filter(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[str, str | None, str | None, int, bool]],
    run: str | None,
    step: str | None,
    types: list[str],
    since: int | None,
    until: int | None,
    after: int | None,
    limit: int | None,
) -> None:
    store = DirectoryStore(tmp_path_factory.mktemp("prop"))
    log = store.events(MOB)
    pending: list[NewMobEvent] = []
    for kind, run_id, step_id, minute, batch in events:
        fields = {k: v for k, v in (("run_id", run_id), ("step_id", step_id)) if v}
        pending.append(new(kind, minute, **fields))
        if not batch:
            log.append_batch(pending)
            pending = []
    log.append_batch(pending)
    if since is not None and until is not None and since > until:
        since, until = until, since
    query = event_query(
        run=run,
        step=step,
        types=types,
        since=at(since) if since is not None else None,
        until=at(until) if until is not None else None,
    )
    everything = log.replay_all()
    if not everything:
        with pytest.raises(NotFound):  # nothing was ever written: the store has no such mob
            api.events_tail(store, MOB, query, after_cursor=after, limit=limit)
        return
    if run is not None and not any(e.kind.field("run_id") == run for e in everything):
        return  # an unknown run is an error (tested above)
    latest = everything[-1].cursor if everything else 0
    if after is not None and after > latest:
        with pytest.raises(StaleCursor):
            api.events_tail(store, MOB, query, after_cursor=after, limit=limit)
        return
    found = api.events_tail(store, MOB, query, after_cursor=after, limit=limit)
    brute = [
        e
        for e in everything
        if e.cursor > (after or 0)
        and (run is None or e.kind.field("run_id") == run)
        and (step is None or e.kind.field("step_id") == step)
        and (not types or any(fnmatchcase(e.kind.type, p) for p in types))
        and (since is None or e.timestamp >= at(since))
        and (until is None or e.timestamp <= at(until))
    ]
    if limit is None and after is None:
        limit = 20
    assert list(found) == (brute if limit is None else brute[max(0, len(brute) - limit) :])


# --- verify -------------------------------------------------------------------------------


def test_verify_a_clean_log(store: Path) -> None:
    result = cli("events", "verify", MOB, "--store", store)
    assert (result.exit_code, result.stdout) == (
        0,
        "events of mob 'review' verify: 15 records, latest cursor 15\n",
    )
    as_json = cli("events", "verify", MOB, "--store", store, "--json")
    assert json.loads(as_json.stdout) == {
        "mob_id": MOB,
        "ok": True,
        "records": 15,
        "latest_cursor": 15,
        "problem": None,
    }


def test_verify_names_the_first_problem_and_its_byte_offset(store: Path) -> None:
    path = store / "mobs" / MOB / "events.jsonl"
    data = path.read_bytes()
    third = len(b"".join(data.splitlines(keepends=True)[:2]))
    path.write_bytes(data.replace(b'"topic":"x"', b'"topic":"y"'))
    result = cli("events", "verify", MOB, "--store", store)
    assert errors(result) == (
        6,
        [
            f"error[store_corrupt]: {path}: record at byte {third} does not verify (its chain hash does not match)",
            "hint: nothing repairs a damaged record automatically; restore the log from a backup",
        ],
    )
    as_json = cli("events", "verify", MOB, "--store", store, "--json")
    assert as_json.exit_code == 6
    assert json.loads(as_json.stdout) == {
        "mob_id": MOB,
        "ok": False,
        "records": 2,
        "latest_cursor": 2,
        "problem": {
            "offset": third,
            "message": f"record at byte {third} does not verify (its chain hash does not match)",
        },
    }


def test_verify_reports_a_torn_tail(store: Path) -> None:
    path = store / "mobs" / MOB / "events.jsonl"
    size = path.stat().st_size
    with path.open("ab") as handle:
        handle.write(b'{"cursor":16,"times')
    assert errors(cli("events", "verify", MOB, "--store", store)) == (
        6,
        [
            f"error[store_corrupt]: {path}: torn tail at byte {size} (19 bytes without newline)",
            "hint: `mobctl store check --repair` moves a torn tail to quarantine",
        ],
    )
    assert cursors(tail(store, "--limit", "1")) == [15]  # readers ignore it


def test_verify_reports_cursor_order_and_batch_framing(tmp_path: Path) -> None:
    location = tmp_path / "store"
    path = location / "mobs" / MOB / "events.jsonl"
    path.parent.mkdir(parents=True)
    previous = "0" * 64
    lines = []
    for cursor, batch in [(1, None), (2, [2, 3]), (3, [2, 3]), (5, None)]:
        body = json.dumps(
            {"cursor": cursor, "timestamp": at(0), "mob_id": MOB, "kind": {"type": "x"}}
            | ({"batch": batch} if batch else {}),
            separators=(",", ":"),
        ).encode()
        previous = line_hash(previous, body)
        lines.append(body[:-1] + b',"hash":"' + previous.encode() + b'"}\n')
    path.write_bytes(b"".join(lines))
    offset = len(b"".join(lines[:3]))
    result = cli("events", "verify", MOB, "--store", location, "--json")
    assert result.exit_code == 6
    assert json.loads(result.stdout)["problem"] == {
        "offset": offset,
        "message": f"batch [2, 3] is interrupted by cursor 5 at byte {offset}",
    }


# --- prune --------------------------------------------------------------------------------


def test_prune_keeps_anchors_and_never_reuses_a_cursor(store: Path) -> None:
    result = cli("events", "prune", MOB, "--older-than", at(24), "--yes", "--store", store)
    assert (result.exit_code, result.stdout) == (
        0,
        f"deleted 9 events of mob 'review' from before {at(24)} (anchors kept; latest cursor 15)\n",
    )
    assert cursors(tail(store)) == [1, 2, 12, 13, 14, 15]  # mob_created and member_spawned stay
    again = cli("events", "prune", MOB, "--older-than", "0s", "--yes", "--store", store, "--json")
    assert json.loads(again.stdout)["deleted"] == 4
    assert json.loads(again.stdout)["latest_cursor"] == 2  # the newest events went too
    appended = DirectoryStore(store).events(MOB).append(new("x", 99))
    assert appended.cursor == 16  # never reused
    assert cursors(tail(store)) == [1, 2, 16]
    assert cli("events", "verify", MOB, "--store", store).exit_code == 0


def test_prune_deletes_a_batch_only_whole(store: Path) -> None:
    # the batch 14-15 (minutes 30 and 31) goes only when both of its events are old enough
    result = cli("events", "prune", MOB, "--older-than", at(31), "--yes", "--store", store)
    assert result.stdout.startswith("deleted 11 events")
    assert cursors(tail(store)) == [1, 2, 14, 15]
    result = cli("events", "prune", MOB, "--older-than", at(32), "--yes", "--store", store)
    assert result.stdout.startswith("deleted 2 events")
    assert cursors(tail(store)) == [1, 2]


def test_prune_json_document(store: Path) -> None:
    result = cli(
        "events",
        "prune",
        MOB,
        "--older-than",
        "2026-03-01T12:12:00Z",
        "-y",
        "--store",
        store,
        "--json",
    )
    assert json.loads(result.stdout) == {
        "mob_id": MOB,
        "older_than": "2026-03-01T12:12:00.000000Z",
        "deleted": 2,
        "latest_cursor": 15,
    }


def test_prune_without_yes_and_without_a_terminal_refuses(store: Path) -> None:
    result = cli("events", "prune", MOB, "--older-than", "1d", "--store", store)
    assert errors(result) == (
        2,
        [
            "error[confirmation_required]: refusing to prune without confirmation: stdin is not a terminal",
            "hint: pass --yes to prune without asking",
        ],
    )
    assert cursors(tail(store)) == list(range(1, 16))


@pytest.mark.parametrize("value", ["yesterday", "-1d", ""])
def test_prune_rejects_a_bad_time(store: Path, value: str) -> None:
    result = cli("events", "prune", MOB, "--older-than", value, "--yes", "--store", store)
    assert errors(result) == (
        2,
        [
            f"error[usage]: --older-than {value!r} is neither a time nor a duration",
            "hint: use RFC 3339 (2026-05-01T12:00:00Z) or a duration before now (30, 30s, 1m30s, 2h, 1d)",
        ],
    )


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-00:01"])
def test_item12m_a_time_out_of_range_in_utc_is_a_usage_error(store: Path, value: str) -> None:
    """A time whose offset carries it out of what a datetime holds in UTC overflowed (exit
    70) when compared."""
    for args in (
        ["events", "prune", MOB, "--older-than", value, "--yes"],
        ["events", "tail", MOB, "--since", value],
    ):
        result = cli(*args, "--store", store)
        option = args[3]
        assert errors(result) == (
            2,
            [
                f"error[usage]: {option} {value!r} is out of range: in UTC it falls before year 1 "
                "or after 9999"
            ],
        ), args
    assert cursors(tail(store)) == list(range(1, 16))


@pytest.mark.parametrize(("answer", "code", "left"), [("y", 0, 6), ("n", 2, 15)])
def test_prune_asks_on_a_terminal(store: Path, answer: str, code: int, left: int) -> None:
    args = ["events", "prune", MOB, "--older-than", at(24), "--store", str(store)]
    output, returncode, stderr = on_terminal_with_input(args, answer + "\n")
    prompt = "Delete the events of mob 'review' from before 2026-03-01T12:24:00.000000Z? [y/N] "
    assert returncode == code, stderr
    if code:
        assert (
            stderr == prompt + "error[confirmation_required]: not confirmed: nothing was pruned\n"
        )
        assert output == answer + "\r\n"  # the terminal's echo of the answer
    else:
        assert stderr == prompt
        assert "deleted 9 events" in output
    assert len(cursors(tail(store))) == left


# --- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["tail", "verify", "prune"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = cli("events", command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"mobctl events {command} code-review" in result.stdout


# --- terminals ----------------------------------------------------------------------------


def on_terminal(args: list[str], env: dict[str, str] | None = None) -> str:
    return on_terminal_with_input(args, None, env)[0]


def on_terminal_with_input(
    args: list[str], answer: str | None, env: dict[str, str] | None = None
) -> tuple[str, int, str]:
    """Run mobctl with stdin and stdout on a pseudo-terminal; (output, exit code, stderr)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mobctl", *args],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", **(env or {})},
        text=True,
    )
    os.close(slave)
    if answer is not None:
        os.write(master, answer.encode())
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            process.kill()
            raise AssertionError("no output from the terminal")
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.wait(timeout=30)
    return b"".join(chunks).decode(), process.returncode, stderr
