"""Every command that takes an id refuses hostile ones before touching a file (issue: hardening).

Ids that name files (mob ids, realm profile names) must pass the slug rule: `unsafe_id`, exit 1.
Ids that only select records (run ids, member ids, step filters) never build a path; a hostile
one matches nothing: `not_found` (or an empty answer for a filter). Either way the store is
byte-for-byte unchanged and nothing new is created."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_a_hostile_mob_id_in_a_definition_is_refused_by_register(tmp_path: Path) -> None:
    for hostile in ("..", "a/b", "CON", "rev\u0456ew", "trailing."):
        mob = tmp_path / "mob.toml"
        text = (SAMPLES / "minimal.toml").read_text().replace(f'id = "{MOB}"', f'id = "{hostile}"')
        assert f'id = "{hostile}"' in text
        mob.write_text(text)
        store = tmp_path / "store"
        result = cli("register", mob, "--store", store)
        assert result.exit_code == 1, result.stderr
        assert result.stderr.startswith(f"error[unsafe_id]: mob id {hostile!r} cannot be used")
        assert not (store / "specs").exists() and not (store / "mobs").exists()


def test_a_run_id_prefix_never_reaches_a_path(store: Path) -> None:
    full = run_id(store)
    shown = cli("runs", "show", MOB, full[:6], "--store", store, "--json")
    assert shown.exit_code == 0, shown.stderr
    traversal = cli("runs", "show", MOB, "../" + full, "--store", store)
    assert traversal.exit_code == 1
    assert traversal.stderr.startswith("error[not_found]: ")
