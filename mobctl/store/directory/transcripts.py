"""The directory backend's turn transcripts (store contract §4.10): one log per run,
``runs/<run_id>.turns.jsonl``, mode 0600, never through a link. Each turn is one line
(``{"schema_version", "key", "record"}``) appended with one data sync, as the event log's
records are: a file per turn, written whole with a sync of the file and of its directory,
cost a linear flow about 40% of each step. A key written again (a turn resumed after a crash)
is read as its last line; a line left unfinished by a crash is cut before the next append.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, JsonValue

from mobctl.canonical import canonical, parse_json
from mobctl.errors import NotFound, RecordTooLarge
from mobctl.ids import is_run_id
from mobctl.store.contract import Transcript, TurnKey
from mobctl.store.defects import unreadable
from mobctl.store.directory.files import StoreFiles

FORMAT = 1
PRIVATE = 0o600  # a transcript holds prompts, tool results and answers


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

    def path(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise NotFound(f"'{run_id}' is not a run id (a lowercase UUID)")
        return self.dir / f"{run_id}.turns.jsonl"

    def put_transcript(self, run_id: str, key: TurnKey, record: dict[str, JsonValue]) -> None:
        document = {
            "schema_version": FORMAT,
            "key": _Key(**vars(key)).model_dump(),
            "record": record,
        }
        line = canonical(document).encode("utf-8") + b"\n"
        if len(line) > self.max_record_bytes:
            raise RecordTooLarge(
                f"the transcript of turn {key} is {len(line)} bytes; the limit is "
                f"{self.max_record_bytes}"
            )
        path = self.path(run_id)
        self._prepare()
        with _APPENDING:  # a run's turns end on several threads; only its owner writes
            try:
                self._repair_tail(path)
                self.files.append(path, line, create=False)
            except FileNotFoundError:  # the run's first transcript: a durable, private name
                self.files.write_atomic(path, line, mode=PRIVATE)

    def _repair_tail(self, path: Path) -> None:
        """Cut a line left unfinished by a crash (once per log and process), so the next one
        starts a line of its own."""
        if path in _CHECKED:
            return
        data = self.files.read(path)
        if data and not data.endswith(b"\n"):
            self.files.write_atomic(path, data[: data.rfind(b"\n") + 1], mode=PRIVATE)
        _CHECKED.add(path)

    def list_transcripts(
        self, run_id: str, *, step: str | None = None, member: str | None = None
    ) -> list[Transcript]:
        path = self.path(run_id)
        try:
            data = self.files.read(path)
        except FileNotFoundError:
            return []
        latest: dict[TurnKey, Transcript] = {}  # a key written again (a resumed turn) wins
        lines = data.split(b"\n")
        for number, line in enumerate(lines[:-1], start=1):  # the last: unfinished, or b""
            transcript = self._parse(path, number, line)
            latest[transcript.key] = transcript
        found = [t for t in latest.values() if _wanted(t.key, step, member)]
        return sorted(found, key=lambda t: _order(t.key))

    @staticmethod
    def _parse(path: Path, number: int, line: bytes) -> Transcript:
        try:
            stored = _Stored.model_validate(parse_json(line))
        except ValueError as exc:
            raise unreadable(f"{path} line {number}", "a turn transcript", exc, _Stored) from None
        return Transcript(TurnKey(**stored.key.model_dump()), stored.record)


_APPENDING = threading.Lock()
_CHECKED: set[Path] = set()  # logs whose tail this process has looked at


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
