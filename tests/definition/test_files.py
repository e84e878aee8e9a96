"""A definition reads files only inside its own directory (definition-schema §4.7, §8.2).

For every path key (a path skill, a named ``expected_schema_ref``), every way out (an absolute
path, a ``../`` climb, a symlinked file, a symlinked directory) and every command that reads a
definition (``validate``, ``register``, ``run FILE``): the exact diagnostic at the value, exit
1, the store untouched and the file's content nowhere; then the same with ``--allow-path``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobctl.definition.files import DefinitionFiles, PathOutsideDefinition
from tests.conftest import SAMPLES, cli, mobctl_process

CANARY = "CANARY-7f3a the runner's private file"
OUTSIDE_SCHEMA = {"type": "object", "description": CANARY}
HINT = (
    "  hint: a definition reads files only inside its own directory; "
    "pass --allow-path DIR to trust another directory"
)


@dataclass(frozen=True)
class Layout:
    """``mobs/`` holds the definition; ``outside/`` holds the files it must not read."""

    root: Path
    mobs: Path
    outside: Path
    store: Path

    @property
    def mob(self) -> Path:
        return self.mobs / "mob.toml"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    root = Path(os.path.realpath(tmp_path))
    mobs, outside = root / "mobs", root / "outside"
    mobs.mkdir()
    outside.mkdir()
    (outside / "canary.md").write_text(CANARY + "\n")
    (outside / "canary.json").write_text(json.dumps(OUTSIDE_SCHEMA))
    (mobs / "canary.md").symlink_to(outside / "canary.md")
    (mobs / "canary.json").symlink_to(outside / "canary.json")
    (mobs / "linked").symlink_to(outside, target_is_directory=True)
    return Layout(root, mobs, outside, root / "store")


HEAD = """[mob]
id = "contained"

[profiles.w]
model = "claude-sonnet-4-6"
runtime_mode = "turn_driven"
"""
STEP = """
[flows.main.steps.check]
role = "w"
message = '{"ok": true}'
dispatch_mode = "one_to_one"
collection_policy = { type = "any" }
"""


def skill_definition(path: str) -> str:
    return (
        HEAD
        + 'skills = ["style"]\n\n[skills.style]\nsource = "path"\n'
        + f"path = {json.dumps(path)}\n"
        + STEP
    )


def schema_definition(path: str) -> str:
    return HEAD + STEP + f"expected_schema_ref = {json.dumps(path)}\n"


@dataclass(frozen=True)
class Key:
    name: str
    suffix: str  # of the file outside
    text: Callable[[str], str]  # the definition, given the path as written
    line: int
    column: int
    location: str
    subject: str  # how the message names it


KEYS = [
    Key("skill", "md", skill_definition, 11, 8, "skills.style.path", "skill 'style'"),
    Key(
        "schema",
        "json",
        schema_definition,
        13,
        23,
        "flows.main.steps.check.expected_schema_ref",
        "step 'check' schema",
    ),
]
ESCAPES = ["absolute", "climb", "symlinked_file", "symlinked_directory"]
COMMANDS = ["validate", "register", "run"]


def written(escape: str, key: Key, layout: Layout) -> str:
    """The path as the definition writes it, for each way out."""
    return {
        "absolute": str(layout.outside / f"canary.{key.suffix}"),
        "climb": f"../outside/canary.{key.suffix}",
        "symlinked_file": f"canary.{key.suffix}",
        "symlinked_directory": f"linked/canary.{key.suffix}",
    }[escape]


def store_files(store: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def invoke(command: str, layout: Layout, *extra: str | Path) -> tuple[int, list[str]]:
    """Exit code and the lines the command prints its diagnostics on."""
    args: list[str | Path] = [command, layout.mob, *extra]
    if command != "validate":
        args += ["--store", layout.store]
    result = cli(*args)
    return result.exit_code, (
        result.stdout if command == "validate" else result.stderr
    ).splitlines()


@pytest.fixture
def populated(layout: Layout) -> Iterator[dict[str, bytes]]:
    """A store that already holds another mob, so that "unchanged" means something."""
    assert cli("register", SAMPLES / "minimal.toml", "--store", layout.store).exit_code == 0
    before = store_files(layout.store)
    yield before
    assert store_files(layout.store) == before


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("key", KEYS, ids=[k.name for k in KEYS])
def test_a_path_outside_is_refused_and_nothing_is_read_or_stored(
    layout: Layout, populated: dict[str, bytes], key: Key, escape: str, command: str
) -> None:
    path = written(escape, key, layout)
    layout.mob.write_text(key.text(path))
    code, lines = invoke(command, layout)
    target = layout.outside / f"canary.{key.suffix}"
    diagnostic = (
        f"{layout.mob}:{key.line}:{key.column}: error[path_outside_definition] {key.location}: "
        f"{key.subject} path '{path}' resolves to {target}, outside the definition's directory"
    )
    assert code == 1
    if command == "validate":
        assert lines == [diagnostic, HINT, "1 error, 0 warnings in 1 file"]
    else:
        assert lines == [
            diagnostic,
            HINT,
            f"error[invalid_definition]: {layout.mob} has 1 error(s); nothing was registered",
            f"hint: run `mobctl validate {layout.mob}` for the diagnostics",
        ]
    # the populated fixture checks that the store is byte for byte what it was


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("key", KEYS, ids=[k.name for k in KEYS])
def test_allow_path_trusts_the_directory(
    layout: Layout, key: Key, escape: str, command: str
) -> None:
    path = written(escape, key, layout)
    layout.mob.write_text(key.text(path))
    code, lines = invoke(command, layout, "--allow-path", layout.outside)
    assert code == 0, lines
    if command == "validate":
        assert lines == ["0 errors, 0 warnings in 1 file"]
        return
    record = json.loads((layout.store / "specs" / "contained.json").read_text())
    copied = record["resources"]["skills" if key.name == "skill" else "schemas"]
    assert copied == {path: CANARY + "\n" if key.name == "skill" else OUTSIDE_SCHEMA}


def test_allow_path_that_is_not_a_directory_is_a_usage_error(layout: Layout) -> None:
    layout.mob.write_text(schema_definition("schema.json"))
    for command in COMMANDS:
        for missing in (layout.root / "nope", layout.outside / "canary.md"):
            args: list[str | Path] = [command, layout.mob, "--allow-path", missing]
            result = cli(*args, "--store", layout.store) if command != "validate" else cli(*args)
            assert result.exit_code == 2, command
            assert result.stderr.splitlines() == [
                f"error[path_not_found]: --allow-path '{missing}' is not a directory",
                "hint: --allow-path takes an existing directory whose files you trust",
            ]
            assert result.stdout == ""
    assert not layout.store.exists()


def test_an_absolute_path_needs_an_allowed_root_even_inside_the_definitions_directory(
    layout: Layout,
) -> None:
    inside = layout.mobs / "style.md"
    inside.write_text("be brief\n")
    layout.mob.write_text(skill_definition(str(inside)))
    code, lines = invoke("validate", layout)
    assert code == 1
    assert lines[0] == (
        f"{layout.mob}:11:8: error[path_outside_definition] skills.style.path: skill 'style' "
        f"path '{inside}' is absolute, and an absolute path is read only inside an "
        "--allow-path root (write it relative to the definition's directory)"
    )
    assert invoke("validate", layout, "--allow-path", layout.mobs)[0] == 0
    layout.mob.write_text(skill_definition("style.md"))
    assert invoke("validate", layout) == (0, ["0 errors, 0 warnings in 1 file"])


def test_an_allowed_root_does_not_let_other_paths_out(layout: Layout) -> None:
    elsewhere = layout.root / "elsewhere"
    elsewhere.mkdir()
    layout.mob.write_text(skill_definition("../outside/canary.md"))
    code, lines = invoke("validate", layout, "--allow-path", elsewhere)
    assert code == 1
    assert lines[0].endswith(
        f"resolves to {layout.outside / 'canary.md'}, outside the definition's directory and "
        "every --allow-path root"
    )


def test_paths_that_stay_inside_are_read_as_before(layout: Layout) -> None:
    (layout.mobs / "skills").mkdir()
    (layout.mobs / "skills" / "style.md").write_text("be brief\n")
    (layout.mobs / "alias.md").symlink_to(layout.mobs / "skills" / "style.md")
    for path in ("skills/style.md", "./skills/../skills/style.md", "alias.md"):
        layout.mob.write_text(skill_definition(path))
        assert invoke("validate", layout) == (0, ["0 errors, 0 warnings in 1 file"]), path
    layout.mob.write_text(skill_definition("skills/missing.md"))
    code, lines = invoke("validate", layout)
    assert (code, lines[0]) == (
        0,
        f"{layout.mob}:11:8: warning[skill_path_not_found] skills.style.path: skill 'style' "
        f"file 'skills/missing.md' does not exist ({layout.mobs / 'skills' / 'missing.md'})",
    )


def test_a_path_with_a_nul_is_not_found_rather_than_a_crash(layout: Layout) -> None:
    """No file name holds a NUL: a warning like any missing file (it was exit 70). How the NUL
    itself is shown is the terminal escaping's business, so only the rest is pinned here."""
    for key in KEYS:
        layout.mob.write_text(key.text("a\x00b"))
        code, lines = invoke("validate", layout)
        assert code == 0
        head, _, tail = lines[0].partition(" file 'a")
        code_name = "skill_path_not_found" if key.name == "skill" else "schema_ref_not_found"
        assert head == (
            f"{layout.mob}:{key.line}:{key.column}: warning[{code_name}] {key.location}: "
            + ("skill 'style'" if key.name == "skill" else "step 'check' schema")
        )
        assert "' does not exist (a" in tail


def test_item2_definition_cannot_copy_etc_passwd_into_the_store(layout: Layout) -> None:
    """The issue's report: a path skill ``/etc/passwd`` (or ``~/.ssh/id_rsa``) was copied into
    ``specs/<mob>.json`` by ``register`` and printed by ``specs show``."""
    ssh_key = layout.root / "home" / ".ssh" / "id_rsa"  # stands in for the runner's key
    ssh_key.parent.mkdir(parents=True)
    ssh_key.write_text(CANARY + "\n")
    clean = HEAD + STEP
    layout.mob.write_text(clean)
    assert invoke("register", layout)[0] == 0
    hostile = clean.replace(
        "[profiles.w]\n",
        '[skills.key]\nsource = "path"\npath = ' + json.dumps(str(ssh_key)) + "\n\n"
        '[skills.passwd]\nsource = "path"\npath = "/etc/passwd"\n\n[profiles.w]\n',
    )
    layout.mob.write_text(hostile)
    before = store_files(layout.store)
    code, lines = invoke("register", layout)
    assert code == 1
    assert [line for line in lines if line != HINT][:2] == [
        f"{layout.mob}:6:8: error[path_outside_definition] skills.key.path: skill 'key' path "
        f"'{ssh_key}' resolves to {ssh_key}, outside the definition's directory",
        f"{layout.mob}:10:8: error[path_outside_definition] skills.passwd.path: skill 'passwd' "
        "path '/etc/passwd' resolves to /etc/passwd, outside the definition's directory",
    ]
    assert store_files(layout.store) == before
    for args in ((), ("--json",)):
        shown = cli("specs", "show", "contained", "--store", layout.store, *args)
        assert shown.exit_code == 0
        assert "revision 1" in shown.stdout or '"revision": 1' in shown.stdout
        assert CANARY not in shown.stdout and "root:" not in shown.stdout
        assert "passwd" not in shown.stdout and str(ssh_key) not in shown.stdout
    assert all(CANARY.encode() not in data for data in store_files(layout.store).values())


def test_a_spec_file_with_copies_is_private(layout: Layout) -> None:
    """0600 while the record holds copies; the umask's mode again once a revision holds none
    (the file is replaced whole: nothing copied is left in it)."""
    (layout.mobs / "style.md").write_text("be brief\n")
    spec = layout.store / "specs" / "contained.json"
    previous = os.umask(0o022)
    try:
        layout.mob.write_text(HEAD + STEP)
        assert invoke("register", layout)[0] == 0
        assert stat.S_IMODE(spec.stat().st_mode) == 0o644
        layout.mob.write_text(skill_definition("style.md"))
        assert invoke("register", layout)[0] == 0
        assert json.loads(spec.read_text())["resources"]["skills"] == {"style.md": "be brief\n"}
        assert stat.S_IMODE(spec.stat().st_mode) == 0o600
        layout.mob.write_text(HEAD + STEP)
        assert invoke("register", layout)[0] == 0
        assert json.loads(spec.read_text())["resources"] == {"schemas": {}, "skills": {}}
        assert stat.S_IMODE(spec.stat().st_mode) == 0o644
        (layout.mobs / "schema.json").write_text('{"type": "object"}')
        layout.mob.write_text(schema_definition("schema.json"))
        assert invoke("register", layout)[0] == 0
        assert stat.S_IMODE(spec.stat().st_mode) == 0o600
    finally:
        os.umask(previous)


def test_a_run_reads_no_schema_file_only_the_copies_made_at_registration(
    layout: Layout,
) -> None:
    """A schema file missing at registration is not read when the step ends (``run MOB``): by
    then it may be a symlink out of the definition's directory, or anything else than what
    was validated. Registering again copies it."""
    layout.mob.write_text(schema_definition("later.json"))
    code, lines = invoke("register", layout)
    assert code == 0 and "schema_ref_not_found" in lines[0]
    (layout.mobs / "later.json").write_text(json.dumps({"type": "object"}))
    refused = cli("run", "contained", "--store", layout.store, "--json")
    assert refused.exit_code == 3
    events = [
        json.loads(line)["kind"]
        for line in (layout.store / "mobs" / "contained" / "events.jsonl").read_text().splitlines()
    ]
    failed = [e for e in events if e["type"] == "step_failed"]
    assert [e["reason"] for e in failed] == [
        "schema validation failed for step check: schema file 'later.json' has no stored copy "
        "(it could not be read when revision 1 was registered); register the definition again"
    ]
    again = cli("run", layout.mob, "--store", layout.store, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "completed"


def test_item2_a_stored_source_path_does_not_choose_where_schemas_are_read(
    layout: Layout,
) -> None:
    """A planted spec's ``source.path`` pointing next to a private schema: ``run MOB`` checks
    against the stored copies only, and quotes nothing of the private file."""
    (layout.outside / "secret.json").write_text(
        json.dumps({"properties": {"token": {"const": CANARY}}, "required": ["token"]})
    )
    layout.mob.write_text(schema_definition("secret.json"))
    assert invoke("register", layout)[0] == 0
    spec_file = layout.store / "specs" / "contained.json"
    spec = json.loads(spec_file.read_text())
    spec["source"]["path"] = str(layout.outside / "anything.toml")
    spec_file.write_text(json.dumps(spec))
    result = cli("run", "contained", "--store", layout.store, "--json")
    assert result.exit_code == 3
    assert CANARY not in result.stdout + result.stderr
    assert CANARY not in (layout.store / "mobs" / "contained" / "events.jsonl").read_text()


# --- the rule itself, against what the operating system opens --------------------------------

SEGMENTS = st.sampled_from(["..", ".", "a", "in.md", "sub", "up", "out.md", "loop", "missing"])


@pytest.fixture(scope="module")
def maze(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[int]]:
    """A definition directory with files, a subdirectory, and symlinks that lead out of it
    (to a file, to a directory, to its parent) and in circles; the inodes of its own files."""
    root = Path(os.path.realpath(tmp_path_factory.mktemp("maze")))
    home = root / "home"
    (home / "sub").mkdir(parents=True)
    (home / "in.md").write_text("in")
    (home / "sub" / "in.md").write_text("in")
    (home / "a").symlink_to(home / "sub", target_is_directory=True)  # stays inside
    (root / "out.md").write_text("out")
    (home / "out.md").symlink_to(root / "out.md")
    (home / "sub" / "up").symlink_to(root, target_is_directory=True)
    (home / "loop").symlink_to(home / "loop")
    inside = {
        os.lstat(Path(folder) / name).st_ino
        for folder, _, names in os.walk(home)
        for name in names
        if not (Path(folder) / name).is_symlink()
    }
    return home, inside


@settings(max_examples=300)
@given(parts=st.lists(SEGMENTS, min_size=1, max_size=6))
def test_locate_allows_exactly_the_files_inside(
    maze: tuple[Path, set[int]], parts: list[str]
) -> None:
    """What the OS would open for the name is allowed iff it is one of the directory's own
    files, and what locate returns is that same file."""
    home, inside = maze
    name = "/".join(parts)
    try:
        opened = os.stat(home / name)  # follows symlinks as reading the name would
    except OSError:
        opened = None
    try:
        located = DefinitionFiles(home).locate(name)
    except PathOutsideDefinition:
        assert opened is None or opened.st_ino not in inside
    else:
        assert located.is_relative_to(home)
        if opened is not None and stat.S_ISREG(opened.st_mode):
            assert os.stat(located).st_ino == opened.st_ino
            assert opened.st_ino in inside


# --- what is read is what was judged ----------------------------------------------------------


def test_item7_a_directory_swapped_for_a_link_while_reading_is_never_followed(
    tmp_path: Path,
) -> None:
    """Another process flips ``skills/`` between the real directory and a link to a secret
    one, as fast as it can: every read gives the skill, or refuses; never the secret."""
    root = Path(os.path.realpath(tmp_path))
    (root / "def" / "skills").mkdir(parents=True)
    (root / "secret").mkdir()
    (root / "secret" / "s.md").write_text(CANARY)
    (root / "def" / "skills" / "s.md").write_text("benign")
    flipper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "d = sys.argv[1]; sk, hold = os.path.join(d, 'skills'), os.path.join(d, 'hold')\n"
            "print('go', flush=True)\n"
            "while True:\n"
            "    os.rename(sk, hold); os.symlink('../secret', sk); os.unlink(sk); os.rename(hold, sk)\n",
            str(root / "def"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    files = DefinitionFiles(root / "def")
    outcomes: set[str] = set()
    try:
        assert flipper.stdout is not None and flipper.stdout.readline() == "go\n"
        for _ in range(3000):
            try:
                outcomes.add(files.read_text("skills/s.md"))
            except PathOutsideDefinition as exc:
                outcomes.add(type(exc).__name__)
            except FileNotFoundError:
                outcomes.add("missing")
    finally:
        flipper.kill()
        flipper.wait()
    assert CANARY not in outcomes
    assert "benign" in outcomes


@pytest.mark.parametrize("key", ["skill", "schema", "definition"])
def test_item8_a_fifo_never_hangs_a_command(layout: Layout, key: str) -> None:
    """A FIFO (git cannot store one, but a shared checkout can hold one) where a file is
    expected: validate, register and run each answer at once."""
    if key == "definition":
        os.mkfifo(layout.mobs / "fifo.toml")
        mob = layout.mobs / "fifo.toml"
    else:
        os.mkfifo(layout.mobs / "fifo.md")
        mob = layout.mob
        if key == "skill":
            mob.write_text(
                HEAD.replace(
                    'runtime_mode = "turn_driven"', 'runtime_mode = "turn_driven"\nskills = ["s"]'
                )
                + '[skills.s]\nsource = "path"\npath = "fifo.md"\n'
                + STEP
            )
        else:
            mob.write_text(schema_definition("fifo.md"))
    validated = mobctl_process("validate", mob, "--format", "json")
    registered = mobctl_process("register", mob, "--store", layout.store)
    if key == "definition":
        assert (validated.returncode, registered.returncode) == (1, 1)
        message = json.loads(validated.stdout)["files"][0]["diagnostics"][0]["message"]
        assert message == "cannot read file: not a regular file (a FIFO, device or directory)"
        return
    code = "skill_path_not_found" if key == "skill" else "schema_ref_not_found"
    diagnostics = json.loads(validated.stdout)["files"][0]["diagnostics"]
    assert [(d["code"], d["message"].rsplit("(", 2)[-1]) for d in diagnostics][:1] == [
        (code, "a FIFO, device or directory))")
    ]
    assert (validated.returncode, registered.returncode) == (0, 0), registered.stderr
    ran = mobctl_process("run", "contained", "--store", layout.store, "--timeout", "20s")
    assert ran.returncode == (0 if key == "skill" else 3), ran.stderr  # echo needs no skill
