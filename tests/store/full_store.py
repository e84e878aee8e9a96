"""A store that holds every kind of file and directory the directory backend writes, made by
the real commands (and the store API where no command writes the file), for the tests that go
over all of them: two finished runs and a pending one with a journal, a pruned event log (so
``events.meta.json``), a quarantined torn tail, a realm profile, a supervisor authority with its
history and a checkpoint, binding overlays, and the lock files with their holders.

Paths are written relative to the store root with ``{finished}``, ``{pending}`` and
``{quarantined}`` for the ids and names only known once the store exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mobctl.clock import timestamp
from mobctl.store.changes import RunExpectation, RunMutation
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import ExternalBindingOverlayRecord, MobRun
from tests.conftest import SAMPLES, cli

FIXTURES = SAMPLES / "fixtures" / "hello.toml"
PENDING = "0f000000-0000-4000-8000-000000000001"

FILES = [
    "store.json",
    "specs/hello.json",
    "profiles/editor.json",
    "mobs/hello/events.jsonl",
    "mobs/hello/events.meta.json",
    "mobs/hello/checkpoints.jsonl",
    "mobs/hello/roster.json",
    "mobs/hello/quarantine/{quarantined}",
    "mobs/hello/runs/{finished}.json",
    "mobs/hello/runs/{pending}.journal",
    "mobs/hello/metadata/supervisor.json",
    "mobs/hello/metadata/supervisor-history.jsonl",
    "mobs/hello/metadata/overlays/overlays.json",
]
LOCKS = [
    "locks/store.lock",
    "locks/specs/hello.lock",
    "locks/profiles/editor.lock",
    "locks/mobs/hello/events.lock",
    "locks/mobs/hello/metadata.lock",
    "locks/mobs/hello/runs/{pending}.lock",
]
LOCK_FILES = [name for lock in LOCKS for name in (lock, f"{lock}.holder")]
DIRECTORIES = [
    "specs",
    "profiles",
    "mobs",
    "mobs/hello",
    "mobs/hello/runs",
    "mobs/hello/quarantine",
    "mobs/hello/metadata",
    "mobs/hello/metadata/overlays",
    "locks",
    "locks/specs",
    "locks/profiles",
    "locks/mobs",
    "locks/mobs/hello",
    "locks/mobs/hello/runs",
]
COMMANDS = [
    *("runs list", "runs show", "events tail", "events verify", "supervisor show"),
    *("specs show", "specs list", "profiles show", "profiles list", "members list"),
    *("store check", "store check --repair"),
    *("register", "run", "events seal", "events prune", "register changed"),
    *("profiles update", "supervisor rotate", "runs cancel"),
]


@dataclass(frozen=True)
class FullStore:
    root: Path
    finished: str  # the run id of a finished run
    quarantined: str  # the name of the file in quarantine/
    changed: Path  # the sample mob with another message (registering it writes the spec)

    def path(self, relative: str) -> Path:
        return self.root / self.name(relative)

    def name(self, relative: str) -> str:
        return relative.format(
            finished=self.finished, pending=PENDING, quarantined=self.quarantined
        )

    def commands(self) -> dict[str, list[str | Path]]:
        """:data:`COMMANDS`, by name: readers, `store check`, `store check --repair`, writers."""
        run = ["run", "hello", "-p", "name=Bo", "--driver", f"scripted:{FIXTURES}"]
        commands: dict[str, list[str | Path]] = {
            "runs list": ["runs", "list", "hello"],
            "runs show": ["runs", "show", "hello", self.finished],
            "events tail": ["events", "tail", "hello"],
            "events verify": ["events", "verify", "hello", "--signatures"],
            "supervisor show": ["supervisor", "show", "hello"],
            "specs show": ["specs", "show", "hello"],
            "specs list": ["specs", "list"],
            "profiles show": ["profiles", "show", "editor"],
            "profiles list": ["profiles", "list"],
            "members list": ["members", "list", "hello"],
            "store check": ["store", "check"],
            "store check --repair": ["store", "check", "--repair"],
            "register": ["register", SAMPLES / "minimal.toml"],  # unchanged: nothing written
            "run": run,
            "events seal": ["events", "seal", "hello"],
            "events prune": ["events", "prune", "hello", "--older-than", "1d", "--yes"],
            "register changed": ["register", self.changed],
            "profiles update": [
                "profiles",
                "update",
                "editor",
                SAMPLES / "profiles" / "house-editor.toml",
                "--expect-revision",
                "1",
            ],
            "supervisor rotate": ["supervisor", "rotate", "hello"],
            "runs cancel": ["runs", "cancel", "hello", PENDING],
        }
        assert list(commands) == COMMANDS
        return commands


def build(root: Path) -> FullStore:
    """Fill the store at ``root`` (which must not exist); ``store check`` finds it clean."""

    def ok(*args: str | Path) -> None:
        result = cli(*args, "--store", root)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)

    run = ["--driver", f"scripted:{FIXTURES}"]
    ok("run", SAMPLES / "minimal.toml", "-p", "name=Ada", *run)
    horizon = timestamp()
    time.sleep(0.01)
    ok("events", "prune", "hello", "--older-than", horizon, "--yes")  # events.meta.json
    ok("run", "hello", "-p", "name=Bo", *run)  # a run after the prune horizon
    ok("profiles", "create", "editor", SAMPLES / "profiles" / "house-editor.toml")
    ok("supervisor", "init", "hello")
    ok("events", "seal", "hello")
    store = DirectoryStore(root)
    overlay = ExternalBindingOverlayRecord(
        agent_identity="bridge", generation=1, updated_at=timestamp()
    )
    store.metadata.upsert_external_binding_overlay("hello", overlay)
    runs = store.runs("hello")
    finished = runs.list_runs()[-1].run_id
    runs.create_run(MobRun(run_id=PENDING, mob_id="hello", flow_id="main", created_at=timestamp()))
    runs.mutate_run(PENDING, RunExpectation(), RunMutation(mobctl={"terminal_detail": "x"}))
    with (root / "mobs" / "hello" / "events.jsonl").open("ab") as log:
        log.write(b'{"cursor":')  # a torn tail, for the repair to quarantine
    ok("store", "check", "--repair")
    ok("store", "check")
    changed = root.parent / "changed.toml"
    changed.write_text((SAMPLES / "minimal.toml").read_text().replace("Say hello", "Say hi"))
    (quarantined,) = [p.name for p in (root / "mobs" / "hello" / "quarantine").iterdir()]
    return FullStore(root, finished, quarantined, changed)
