"""The directory backend's turn transcripts (store contract §4.10): ``runs/<run_id>.turns/``,
one file per turn, mode 0600, each replaced whole (``write_atomic``), never through a link.

A file's name is its key, each part percent-encoded so that any step or member id stays one
name and never a path: ``t+<step>+<iteration>+<member>+<attempt>.json`` for a step's turn,
``e+<step>+<member>+<attempt>.json`` for an escalation turn. A key whose name would be too
long is stored as ``h+<sha256 of the key>.json``; its key is read from the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, JsonValue

from mobctl.canonical import canonical, parse_json
from mobctl.errors import NotFound, RecordTooLarge
from mobctl.ids import is_run_id
from mobctl.store.contract import Transcript, TurnKey
from mobctl.store.defects import unreadable
from mobctl.store.directory.files import StoreFiles

FORMAT = 1
PRIVATE = 0o600  # a transcript holds prompts, tool results and answers
MAX_NAME = 200  # bytes of a file name (most filesystems take 255)


class _Key(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    step_id: str
    iteration: str
    member: str
    attempt: int
    escalation: bool = False


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int
    key: _Key
    record: dict[str, JsonValue]


class DirectoryTranscriptStore:
    def __init__(
        self,
        files: StoreFiles,
        mob_dir: Path,
        *,
        max_record_bytes: int,
        prepare: Callable[[], object] = lambda: None,
    ) -> None:
        self.files = files
        self.dir = mob_dir / "runs"
        self.max_record_bytes = max_record_bytes
        self._prepare = prepare

    def folder(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise NotFound(f"'{run_id}' is not a run id (a lowercase UUID)")
        return self.dir / f"{run_id}.turns"

    def put_transcript(self, run_id: str, key: TurnKey, record: dict[str, JsonValue]) -> None:
        document = {
            "schema_version": FORMAT,
            "key": _Key(**vars(key)).model_dump(),
            "record": record,
        }
        data = canonical(document).encode("utf-8")
        if len(data) > self.max_record_bytes:
            raise RecordTooLarge(
                f"the transcript of turn {key} is {len(data)} bytes; the limit is "
                f"{self.max_record_bytes}"
            )
        path = self.folder(run_id) / file_name(key)
        self._prepare()
        self.files.write_atomic(path, data, mode=PRIVATE)

    def list_transcripts(
        self, run_id: str, *, step: str | None = None, member: str | None = None
    ) -> list[Transcript]:
        found = []
        for entry in self.files.entries(self.folder(run_id)):
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue  # a temp file
            named = parse_name(entry.name)
            if named is not None and not _wanted(named, step, member):
                continue
            transcript = self._read(entry.path)
            if _wanted(transcript.key, step, member):
                found.append(transcript)
        return sorted(found, key=lambda t: _order(t.key))

    def _read(self, path: Path) -> Transcript:
        try:
            stored = _Stored.model_validate(parse_json(self.files.read(path)))
        except ValueError as exc:
            raise unreadable(path, "a turn transcript", exc, _Stored) from None
        return Transcript(TurnKey(**stored.key.model_dump()), stored.record)


def file_name(key: TurnKey) -> str:
    parts = [key.step_id, key.member, str(key.attempt)]
    if not key.escalation:
        parts.insert(1, key.iteration)
    name = ("e+" if key.escalation else "t+") + "+".join(quote(p, safe="") for p in parts)
    if len(name.encode()) + len(".json") > MAX_NAME:
        name = "h+" + hashlib.sha256(str(key).encode("utf-8", "surrogatepass")).hexdigest()
    return name + ".json"


def parse_name(name: str) -> TurnKey | None:
    """The key a file name spells, None for a hashed name (or one mobctl did not write)."""
    kind, _, rest = name.removesuffix(".json").partition("+")
    parts = [unquote(p, errors="surrogateescape") for p in rest.split("+")]
    try:
        if kind == "t" and len(parts) == 4:
            return TurnKey(parts[0], parts[1], parts[2], int(parts[3]))
        if kind == "e" and len(parts) == 3:
            return TurnKey(parts[0], "0", parts[1], int(parts[2]), escalation=True)
    except ValueError:
        return None
    return None


def _wanted(key: TurnKey, step: str | None, member: str | None) -> bool:
    return (step is None or key.step_id == step) and (member is None or key.member == member)


def _order(key: TurnKey) -> tuple[bool, str, tuple[tuple[int, str], ...], str, int]:
    """Iterations in numeric order, compared as digit strings: a planted iteration of 5,000
    digits (or a non-ASCII digit such as '²') is no number ``int`` takes."""
    iteration = tuple(
        (len(number), number)
        for part in key.iteration.split(".")
        if part.isascii() and part.isdigit()
        for number in [part.lstrip("0")]
    )
    return (key.escalation, key.step_id, iteration, key.member, key.attempt)
