"""Store files edited by hand, fixtures and driver specs that are broken: mobctl answers with
a clear error and a non-zero exit (or carries on where it safely can), never a traceback, and
never damages other data in the store."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mobctl.cli.parsing import parse_params
from mobctl.drivers.base import Completed, DispatchError, Member, TurnRequest
from mobctl.drivers.registry import DriverConfig, parse_drivers, split_role
from mobctl.errors import ExitCode, MobctlError
from tests.conftest import SAMPLES, cli

FIXTURES = SAMPLES / "fixtures"

# the one turn of sample-mobs/minimal.toml
GREET = TurnRequest(
    kind="step",
    mob_id="hello",
    run_id="r",
    flow_id="main",
    step_id="greet",
    member=Member(identity="assistant-1", generation=0, role="assistant"),
    message="Say hello to Ada.",
)


def expected_exit(specs: list[str]) -> int:
    """The exit code of the minimal mob's run with ``specs``, judged without the CLI: the error
    the drivers' parser raises, else what the driver answers the one turn."""
    try:
        drivers = parse_drivers(specs, DriverConfig())
    except MobctlError as exc:
        return int(exc.exit_code)
    if any(split_role(spec)[0] not in (None, "assistant") for spec in specs):
        return int(ExitCode.USAGE)  # a role no step of the minimal mob has: refused first
    try:
        outcome = drivers.for_role("assistant").run(GREET, threading.Event())
    except DispatchError:  # the turn fails (a program that does not start)
        return 3
    return 0 if isinstance(outcome, Completed) else 3


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two mobs with finished runs, a realm profile, a supervisor authority and checkpoints."""
    store = tmp_path_factory.mktemp("template") / "store"
    for sample, fixture, params in (
        ("minimal.toml", "hello.toml", ["-p", "name=Ada"]),
        ("triage.toml", "triage.toml", ["-p", "incident=db down"]),
    ):
        ran = cli(
            "run",
            SAMPLES / sample,
            *params,
            "--driver",
            f"scripted:{FIXTURES / fixture}",
            "--store",
            store,
        )
        assert ran.exit_code == 0, ran.stderr
    profile = SAMPLES / "profiles" / "house-editor.toml"
    assert cli("profiles", "create", "editor", profile, "--store", store).exit_code == 0
    assert cli("supervisor", "init", "hello", "--store", store).exit_code == 0
    assert cli("events", "seal", "hello", "--store", store).exit_code == 0
    return store


def run_file(store: Path) -> Path:
    return next((store / "mobs" / "hello" / "runs").glob("*.json"))


def run_hello(store: Path) -> Any:
    """A run of the mob with the damaged files (it must end with a clear answer, never a crash)."""
    fixtures = FIXTURES / "hello.toml"
    return cli(
        "run", "hello", "-p", "name=Bo", "--driver", f"scripted:{fixtures}", "--store", store
    )


def journal_file(store: Path) -> Path:
    return run_file(store).with_suffix(".journal")


TARGETS: dict[str, Callable[[Path], Path]] = {
    "store.json": lambda s: s / "store.json",
    "spec": lambda s: s / "specs" / "hello.json",
    "profile": lambda s: s / "profiles" / "editor.json",
    "events": lambda s: s / "mobs" / "hello" / "events.jsonl",
    "events meta": lambda s: s / "mobs" / "hello" / "events.meta.json",
    "run snapshot": run_file,
    "run journal": journal_file,
    "supervisor": lambda s: s / "mobs" / "hello" / "metadata" / "supervisor.json",
    "checkpoints": lambda s: s / "mobs" / "hello" / "checkpoints.jsonl",
}


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes() if path.exists() else b'{"seq":1,"ops":[]}\n'
    changed = {
        "truncated": data[: len(data) // 2],
        "garbage": b"\x00\xff garbage {[\n",
        "empty": b"",
        "wrong types": json.dumps(["not", "an", "object"]).encode() + b"\n",
        "huge": b'{"x": "' + b"h" * (8 << 20) + b'"}\n',
        "deep": b"[" * 50_000 + b"]" * 50_000 + b"\n",
    }[how]
    path.write_bytes(changed)
    if path.name == "supervisor.json":
        path.chmod(0o600)


READERS = [
    ["specs", "list"],
    ["specs", "show", "hello"],
    ["profiles", "list"],
    ["profiles", "show", "editor"],
    ["events", "tail", "hello"],
    ["events", "verify", "hello", "--signatures"],
    ["runs", "list", "hello"],
    ["members", "list", "hello"],
    ["supervisor", "show", "hello"],
    ["store", "check"],
]


def other_mob(store: Path) -> dict[str, bytes]:
    base = store / "mobs" / "triage"
    return {str(p): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def clean(result_stderr: str, exit_code: int) -> None:
    assert "Traceback" not in result_stderr, result_stderr
    assert exit_code != 70, result_stderr
    assert "error[internal]" not in result_stderr, result_stderr


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "wrong types", "huge", "deep"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_a_file_edited_by_hand_gets_clear_errors_and_spares_the_rest(
    template: Path, tmp_path: Path, target: str, how: str
) -> None:
    store = tmp_path / "store"
    shutil.copytree(template, store)
    path = TARGETS[target](store)
    corrupt(path, how)
    spared = other_mob(store)
    for command in READERS:
        result = cli(*command, "--store", store)
        clean(result.stderr, result.exit_code)
        if result.exit_code != 0:  # a reason, on stderr (or the report of `store check`)
            assert "error[" in result.stderr or "problem" in result.stdout, (command, result)
    for command in (
        ["runs", "show", "hello", run_file(store).stem[:8]],
        ["register", SAMPLES / "minimal.toml"],
    ):
        result = cli(*command, "--store", store)
        clean(result.stderr, result.exit_code)
    ran = run_hello(store)
    clean(ran.stderr, ran.exit_code)
    assert other_mob(store) == spared  # nothing of the other mob changed
    listed = cli("runs", "list", "triage", "--store", store, "--json")
    if target != "store.json":
        assert listed.exit_code == 0, listed.stderr
        assert len(json.loads(listed.stdout)) == 1


AUTHORITY = "supervisor.json"
HISTORY = "supervisor-history.jsonl"
OTHER_PEER = "00000000-0000-5000-8000-000000000000"  # a well-formed peer id of no key


def authority(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[str], str]:
    return lambda text: json.dumps(change(json.loads(text)))


def history(change: Callable[[dict[str, Any]], object]) -> Callable[[str], str]:
    return lambda text: "".join(
        json.dumps(change(json.loads(line))) + "\n" for line in text.splitlines()
    )


# single fields edited by hand: (file, edit of its text, what the error names)
FIELD_EDITS: dict[str, tuple[str, Callable[[str], str], str]] = {
    "short seed": (
        AUTHORITY,
        authority(lambda r: r | {"secret_key": r["secret_key"][:3]}),
        "secret_key: must be 32 bytes (0-255 each)",
    ),
    "seed byte 300": (
        AUTHORITY,
        authority(lambda r: r | {"secret_key": [300, *r["secret_key"][1:]]}),
        "secret_key: must be 32 bytes (0-255 each)",
    ),
    "seed byte -1": (
        AUTHORITY,
        authority(lambda r: r | {"secret_key": [*r["secret_key"][:31], -1]}),
        "secret_key: must be 32 bytes (0-255 each)",
    ),
    "seed as text": (
        AUTHORITY,
        authority(lambda r: r | {"secret_key": "0" * 64}),
        "secret_key: Input should be a valid list",
    ),
    "seed byte as text": (
        AUTHORITY,
        authority(lambda r: r | {"secret_key": ["a", *r["secret_key"][1:]]}),
        "secret_key.0: Input should be a valid integer",
    ),
    "wrong peer id": (
        AUTHORITY,
        authority(lambda r: r | {"public_peer_id": OTHER_PEER}),
        "public_peer_id: does not match secret_key",
    ),
    "peer id as number": (
        AUTHORITY,
        authority(lambda r: r | {"public_peer_id": 7}),
        "public_peer_id: Input should be a valid string",
    ),
    "huge epoch": (
        AUTHORITY,
        authority(lambda r: r | {"epoch": 2**64}),
        "epoch: out of range (0 to 2**64-1)",
    ),
    "negative epoch": (AUTHORITY, authority(lambda r: r | {"epoch": -1}), "out of range"),
    "epoch as text": (
        AUTHORITY,
        authority(lambda r: r | {"epoch": "zero"}),
        "epoch: Input should be a valid integer",
    ),
    "protocol 99": (
        AUTHORITY,
        authority(lambda r: r | {"protocol_version": 99}),
        "protocol_version: not one of 2, 3, 4, 5",
    ),
    "pending rotation as list": (
        AUTHORITY,
        authority(lambda r: r | {"pending_rotation": [1]}),
        "pending_rotation: Input should be a valid dictionary",
    ),
    "history garbage": (HISTORY, lambda _: "\x00\xff garbage {[\n", "line 1 is not an"),
    "history garbage after an entry": (HISTORY, lambda t: t + "garbage\n", "line 2 is not an"),
    "history entry as list": (HISTORY, history(lambda e: list(e)), "Input should be an object"),
    "history epoch as text": (
        HISTORY,
        history(lambda e: e | {"epoch": "zero"}),
        "epoch: Input should be a valid integer",
    ),
    "history key as number": (
        HISTORY,
        history(lambda e: e | {"public_key": 5}),
        "public_key: Input should be a valid string",
    ),
    "history without peer id": (
        HISTORY,
        history(lambda e: {k: v for k, v in e.items() if k != "public_peer_id"}),
        "public_peer_id: Field required",
    ),
}


def files_of(store: Path) -> dict[str, bytes]:
    """Every store file but lock holders (readers may take a lock)."""
    return {
        str(p): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and "locks" not in p.relative_to(store).parts
    }


@pytest.mark.parametrize("edit", list(FIELD_EDITS))
def test_a_field_of_the_authority_edited_by_hand_is_store_corrupt_and_spares_the_rest(
    template: Path, tmp_path: Path, edit: str
) -> None:
    store = tmp_path / "store"
    shutil.copytree(template, store)
    name, change, named = FIELD_EDITS[edit]
    path = store / "mobs" / "hello" / "metadata" / name
    seed = json.loads((path.parent / AUTHORITY).read_text())["secret_key"]
    leaks = [", ".join(map(str, seed[:4])), ",".join(map(str, seed[:4])), bytes(seed).hex()]
    path.write_text(change(path.read_text()))
    before = files_of(store)
    for command in (
        ["supervisor", "show", "hello"],
        ["supervisor", "rotate", "hello"],
        ["events", "seal", "hello"],
    ):
        result = cli(*command, "--store", store)
        assert result.exit_code == 6, (command, result.stderr)
        assert result.stderr.startswith(f"error[store_corrupt]: {path} "), result.stderr
        assert named in result.stderr, result.stderr
        assert all(leak not in result.stdout + result.stderr for leak in leaks), command
    checked = cli("store", "check", "--store", store)
    assert checked.exit_code == 6, checked.stdout
    assert f"problem[store_corrupt] {path}: " in checked.stdout, checked.stdout
    for command in READERS:
        result = cli(*command, "--store", store)
        clean(result.stderr, result.exit_code)
        assert all(leak not in result.stdout + result.stderr for leak in leaks), command
    assert files_of(store) == before  # refused, and nothing repaired or rewritten
    spared = other_mob(store)
    ran = run_hello(store)
    assert ran.exit_code == 0, ran.stderr  # the run is not failed by its signature
    assert "warning: no checkpoint was signed: " in ran.stderr, ran.stderr
    assert all(leak not in ran.stdout + ran.stderr for leak in leaks)
    after = files_of(store)
    assert other_mob(store) == spared
    for kept in (path, path.parent / AUTHORITY, path.parent / HISTORY):
        assert after[str(kept)] == before[str(kept)], kept
    signed = store / "mobs" / "hello" / "checkpoints.jsonl"
    assert after[str(signed)] == before[str(signed)]  # nothing signed with a doubtful key


FIXTURE_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "step": st.one_of(st.text(max_size=5), st.integers()),
                "member": st.text(max_size=5),
                "iteration": st.one_of(st.integers(-3, 3), st.text(max_size=3)),
                "attempt": st.one_of(st.integers(-3, 3), st.booleans()),
                "output": st.one_of(st.text(max_size=20), st.integers()),
                "json": st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers())),
                "fail": st.one_of(st.text(max_size=10), st.booleans()),
                "delay_ms": st.one_of(st.integers(-5, 20), st.floats(allow_nan=True)),
                "bogus": st.integers(),
            },
        ),
        max_size=4,
    ).map(
        lambda replies: "".join(
            "[[reply]]\n"
            + "".join(
                f"{k} = {repr(v) if isinstance(v, float) else json.dumps(v)}\n"
                for k, v in r.items()
            )
            for r in replies
        )
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=FIXTURE_TEXT)
def test_any_fixtures_file_gets_a_run_or_a_clear_error(tmp_path: Path, text: str) -> None:
    fixtures = tmp_path / "f.toml"
    fixtures.write_text(text, "utf-8")
    result = cli(
        "run",
        SAMPLES / "minimal.toml",
        "-p",
        "name=Ada",
        "--driver",
        f"scripted:{fixtures}",
        "--store",
        tmp_path / "store",
        "--timeout",
        "60s",
    )
    clean(result.stderr, result.exit_code)
    assert result.exit_code == expected_exit([f"scripted:{fixtures}"]), result.stderr


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=st.lists(
        st.one_of(
            st.text(max_size=20).filter(lambda t: "command" not in t),  # never run a program
            st.sampled_from(
                [
                    "echo",
                    "echo:",
                    "scripted",
                    "scripted:",
                    "scripted:/no/such/",
                    "w=",
                    "=echo",
                    "w=echo:",
                    "command:/no/such/dir/",
                    "w=command:/no/such/dir/",
                ]
            ).flatmap(lambda head: st.text(max_size=10).map(lambda tail: head + tail)),
        ),
        max_size=3,
    )
)
@example(specs=["scripted:\x00"])  # a NUL in a file name crashed with ValueError
@example(specs=["=echo"])  # a role no step has (the empty one): refused before the run
def test_any_driver_spec_gets_a_run_or_a_clear_error(tmp_path: Path, specs: list[str]) -> None:
    args = [part for spec in specs for part in ("--driver", spec)]
    result = cli(
        "run",
        SAMPLES / "minimal.toml",
        "-p",
        "name=Ada",
        *args,
        "--store",
        tmp_path / "store",
        "--timeout",
        "60s",
    )
    clean(result.stderr, result.exit_code)
    assert result.exit_code == expected_exit(specs), result.stderr


# float literals too large for a float (JSON's grammar allows them; Python reads them as inf)
OVERFLOWING = st.one_of(
    st.sampled_from(["1e999", "-1e999", "1e999999", "2e308", "1.8e308"]),
    st.from_regex(r"\A-?[1-9](\.[0-9]{1,3})?[eE]\+?[4-9][0-9]{2,4}\Z"),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    document=st.one_of(
        st.none(),
        st.text(max_size=40),
        st.from_regex(r"\{.{0,30}\}"),
        OVERFLOWING.map(lambda number: f'{{"x": [1, {number}]}}'),
    ),
    pairs=st.lists(
        st.one_of(st.text(max_size=15), OVERFLOWING.map(lambda number: f"x={number}")), max_size=3
    ),
    typed=st.lists(
        st.one_of(st.text(max_size=15), OVERFLOWING.map(lambda number: f"x={number}")), max_size=2
    ),
)
@example(document="@\x00", pairs=[], typed=[])  # a NUL in the file name crashed with ValueError
def test_any_params_get_a_run_or_a_clear_error(
    tmp_path: Path, document: str | None, pairs: list[str], typed: list[str]
) -> None:
    args = [part for pair in pairs for part in ("-p", pair)]
    args += [part for pair in typed for part in ("-P", pair)]
    if document is not None:
        args += ["--params", document]
    result = cli(
        "run", SAMPLES / "minimal.toml", *args, "--driver", "echo", "--store", tmp_path / "s"
    )
    clean(result.stderr, result.exit_code)
    try:
        params = parse_params(pairs, document, typed)
    except MobctlError as exc:
        assert result.exit_code == exc.exit_code, result.stderr
    else:  # the message renders {{ params.name }}: without it the run is refused (usage)
        assert result.exit_code == (0 if "name" in params else 2), result.stderr
