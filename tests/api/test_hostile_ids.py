"""Every command that takes an id refuses hostile ones before touching a file (issue: hardening).

Ids that name files (mob ids, realm profile names) must pass the slug rule: `unsafe_id`, exit 1.
Ids that only select records (run ids, member ids, step filters) never build a path; a hostile
one matches nothing: `not_found` (or an empty answer for a filter). Either way the store is
byte-for-byte unchanged and nothing new is created."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from mobctl.cli.terminal import printable
from tests.conftest import SAMPLES, cli

HOSTILE = [
    "..",
    "/abs",
    "a/b",
    "a\x00b",
    "x" * 300,
    "rev\u0456ew",  # a Cyrillic i
    "\uff52eview",  # a fullwidth r
    "CON",
    "nul",
    "com1",
    "LPT9",
    "aux.txt",
    "trailing.",
    "",
    ".",
    "a\\b",
    "hello ",  # the mob's id and a space: never trimmed into it
]
MOB = "hello"  # sample-mobs/minimal.toml


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a registered mob, a finished run and a realm profile."""
    path = tmp_path_factory.mktemp("hostile") / "store"
    fixtures = SAMPLES / "fixtures" / "hello.toml"
    ran = cli(
        "run",
        SAMPLES / "minimal.toml",
        "-p",
        "name=Ada",
        "--driver",
        f"scripted:{fixtures}",
        "--store",
        path,
    )
    assert ran.exit_code == 0, ran.stderr
    profile = SAMPLES / "profiles" / "house-editor.toml"
    assert cli("profiles", "create", "editor", profile, "--store", path).exit_code == 0
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file's bytes (lock files aside: they are sidecars, not data)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "locks" not in p.relative_to(root).parts
    }


def run_id(store: Path) -> str:
    return next((store / "mobs" / MOB / "runs").glob("*.json")).stem


# (command line with {id} where the hostile id goes, the errors it may answer with)
PATH_IDS = ["unsafe_id"]
LOOKUPS = ["not_found", "unsafe_id"]
COMMANDS: list[tuple[list[str], list[str]]] = [
    (["run", "{id}"], [*PATH_IDS, "path_not_found", "invalid_definition"]),
    (["members", "spawn", "{id}", "assistant"], PATH_IDS),
    (["members", "spawn", MOB, "{id}"], ["not_found", "usage", "unsafe_id"]),
    (["members", "spawn", MOB, "assistant", "--id", "{id}"], ["usage", "unsafe_id"]),
    (["members", "list", "{id}"], PATH_IDS),
    (["members", "retire", "{id}", "assistant-1"], PATH_IDS),
    (["members", "retire", MOB, "{id}"], LOOKUPS),
    (["specs", "show", "{id}"], PATH_IDS),
    (["specs", "delete", "{id}"], PATH_IDS),
    (["profiles", "show", "{id}"], PATH_IDS),
    (["profiles", "delete", "{id}", "--expect-revision", "1"], PATH_IDS),
    (["profiles", "create", "{id}", str(SAMPLES / "profiles" / "house-editor.toml")], PATH_IDS),
    (
        [
            "profiles",
            "update",
            "{id}",
            str(SAMPLES / "profiles" / "house-editor.toml"),
            "--expect-revision",
            "1",
        ],
        PATH_IDS,
    ),
    (["runs", "list", "{id}"], PATH_IDS),
    (["runs", "show", "{id}", "0"], PATH_IDS),
    (["runs", "show", MOB, "{id}"], LOOKUPS),
    (["runs", "cancel", MOB, "{id}"], LOOKUPS),
    (["runs", "resume", MOB, "{id}"], LOOKUPS),
    (["runs", "recover", "{id}"], PATH_IDS),
    (["events", "tail", "{id}"], PATH_IDS),
    (["events", "tail", MOB, "--run", "{id}"], LOOKUPS),
    (["events", "verify", "{id}"], PATH_IDS),
    (["events", "seal", "{id}"], PATH_IDS),
    (["events", "prune", "{id}", "--older-than", "1d", "--yes"], PATH_IDS),
    (["supervisor", "init", "{id}"], PATH_IDS),
    (["supervisor", "show", "{id}"], PATH_IDS),
    (["supervisor", "rotate", "{id}"], PATH_IDS),
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: repr(h[:12]))
@pytest.mark.parametrize(
    ("command", "allowed"), COMMANDS, ids=lambda c: " ".join(c) if isinstance(c, list) else ""
)
def test_hostile_ids_are_refused_and_touch_nothing(
    store: Path, command: list[str], allowed: list[str], hostile: str
) -> None:
    before = tree(store)
    args = [part.replace("{id}", hostile) for part in command]
    result = cli(*args, "--store", store)
    assert result.exit_code != 0, (args, result.stdout)
    assert "Traceback" not in result.stderr
    codes = re.findall(r"^error\[(\w+)\]", result.stderr, re.MULTILINE)
    assert codes and codes[-1] in allowed, (args, result.stderr)
    assert tree(store) == before
    assert not Path(hostile).is_absolute() or not Path(hostile).exists()


def shown(hostile: str) -> str:
    """An id as error messages echo it: at most 64 characters, then "…"."""
    return hostile if len(hostile) <= 64 else hostile[:64] + "…"


def echoed(hostile: str) -> str:
    """An id as an error line shows it unquoted: clipped, control characters escaped."""
    return printable(shown(hostile))


def unsafe_mob_id(hostile: str) -> str:
    return (
        f"error[unsafe_id]: mob id {shown(hostile)!r} cannot be used as a file name\n"
        "hint: use ASCII letters, digits, '.', '_' and '-', at most 128, starting with a letter "
        "or digit, not ending with '.', not a Windows device name such as CON or com1\n"
    )


def test_a_long_id_is_shortened_in_errors(store: Path) -> None:
    long, short = "x" * 300, "x" * 64 + "…"
    for args, first_line in (
        (["run", MOB, long], f"error[unknown_flow]: mob 'hello' has no flow '{short}'"),
        (["runs", "show", MOB, long], f"error[not_found]: mob 'hello' has no run '{short}'"),
        (
            ["members", "retire", MOB, long],
            f"error[not_found]: no active member '{short}' in mob 'hello'",
        ),
        (
            ["members", "spawn", MOB, long],
            f"error[not_found]: mob 'hello' has no profile '{short}'",
        ),
        (
            ["runs", "list", long],
            f"error[unsafe_id]: mob id '{short}' cannot be used as a file name",
        ),
    ):
        result = cli(*args, "--store", store)
        assert result.stderr.splitlines()[0] == first_line


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: repr(h[:12]))
@pytest.mark.parametrize("command", ["register", "run"])
def test_a_hostile_mob_id_in_a_definition_is_refused(
    tmp_path: Path, command: str, hostile: str
) -> None:
    mob = tmp_path / "mob.toml"
    text = (SAMPLES / "minimal.toml").read_text()
    quoted = json.dumps(hostile)  # a JSON string is a TOML basic string
    mob.write_text(text.replace(f'id = "{MOB}"', f"id = {quoted}"))
    assert tomllib.loads(mob.read_text())["mob"]["id"] == hostile
    store = tmp_path / "store"
    params = ["-p", "name=Ada"] if command == "run" else []
    result = cli(command, mob, *params, "--store", store)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", unsafe_mob_id(hostile))
    assert not store.exists()


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: repr(h[:12]))
@pytest.mark.parametrize("action", ["cancel", "resume"])
def test_a_hostile_mob_id_with_a_real_run_id_is_refused(
    store: Path, action: str, hostile: str
) -> None:
    before = tree(store)
    result = cli("runs", action, hostile, run_id(store), "--store", store)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", unsafe_mob_id(hostile))
    assert tree(store) == before


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: repr(h[:12]))
def test_a_hostile_flow_id_is_an_unknown_flow(store: Path, hostile: str) -> None:
    before = tree(store)
    result = cli("run", MOB, hostile, "-p", "name=Ada", "--driver", "echo", "--store", store)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error[unknown_flow]: mob 'hello' has no flow '{echoed(hostile)}'\nhint: flows: main\n",
    )
    assert tree(store) == before


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: repr(h[:12]))
def test_a_hostile_step_or_run_filter_matches_nothing(store: Path, hostile: str) -> None:
    before = tree(store)
    step = cli("events", "tail", MOB, "--step", hostile, "--store", store)
    assert (step.exit_code, step.stdout, step.stderr) == (0, "", "no events of mob 'hello' match\n")
    run = cli("events", "tail", MOB, "--run", hostile, "--store", store)
    assert (run.exit_code, run.stdout, run.stderr) == (
        1,
        "",
        f"error[not_found]: mob 'hello' has no run '{echoed(hostile)}'\n"
        "hint: `mobctl runs list hello` lists its runs\n",
    )
    assert tree(store) == before


def test_a_run_id_prefix_never_reaches_a_path(store: Path) -> None:
    full = run_id(store)
    shown = cli("runs", "show", MOB, full[:6], "--store", store, "--json")
    assert shown.exit_code == 0, shown.stderr
    traversal = cli("runs", "show", MOB, "../" + full, "--store", store)
    assert traversal.exit_code == 1
    assert traversal.stderr.startswith("error[not_found]: ")
