"""Cassettes: the answers of recorded turns (``--record DIR``), replayed by ``replay:DIR``.

A cassette is a scripted-fixtures file (:mod:`mobctl.drivers.scripted`), one per mob and flow
(``DIR/<mob>.<flow>.toml``), so it reads like fixtures and reviews in a pull request. Each
``[[reply]]`` is keyed by ``step``, ``member``, ``iteration`` and ``attempt``, answers with
``output`` or ``fail``, and keeps the request it answered (``[reply.request]``: the system
prompt, the message and the schema, rendered) with its hash (``request_hash``). Replay compares
the hash of the request it is asked with the recorded one, so a changed prompt is never
answered with a stale reply; the recorded request is what the difference is shown against.

Nothing else of a turn is kept (no transcript, usage, header or environment), and the values
of environment variables whose names look like credentials are replaced wherever they appear.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Table

from mobctl.canonical import canonical
from mobctl.definition.files import read_unlinked, replace_file
from mobctl.drivers.base import Completed, DriverError, Failed, Outcome, TurnRequest
from mobctl.drivers.scripted import RecordedRequest, Reply
from mobctl.errors import OutputError
from mobctl.ids import is_slug, shown_id

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")
REDACTED = "[redacted]"
RUN_ID = "<run_id>"  # stands for the run's id in a recorded request (it differs every run)
DIFF_LINES = 40  # of each part of a changed request shown

Key = tuple[str, str, int, int]  # step, member, iteration, attempt


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The values of the variables whose names look like credentials (API keys, tokens, ...):
    what a cassette never contains."""
    return [
        value
        for name, value in env.items()
        if len(value) >= 4 and any(word in name.upper() for word in SECRET_WORDS)
    ]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True)
class RenderedRequest:
    """What a turn asks, as a model sees it: the system prompt, the message, the schema."""

    system: str
    message: str
    schema: str | None

    @property
    def digest(self) -> str:
        document = {"system": self.system, "message": self.message, "schema": self.schema}
        return "sha256:" + hashlib.sha256(canonical(document).encode()).hexdigest()

    @classmethod
    def recorded(cls, request: RecordedRequest) -> RenderedRequest:
        return cls(request.system, request.message, request.schema_text)


def rendered(request: TurnRequest, secrets: Iterable[str] = ()) -> RenderedRequest:
    """The request's system prompt (the profile's skills), message (blocks as JSON) and schema
    (the step's expected schema, else the profile's output schema), with the run's id written
    as ``<run_id>`` (an escalation's message names it) and credentials redacted."""
    profile = request.profile
    message = request.message if isinstance(request.message, str) else canonical(request.message)
    schema = request.expected_schema or (profile.output_schema if profile else None)
    secrets = list(secrets)

    def clean(text: str) -> str:
        return redact(text.replace(request.run_id, RUN_ID) if request.run_id else text, secrets)

    return RenderedRequest(
        system=clean(profile.system_prompt if profile else ""),
        message=clean(message),
        schema=None if schema is None else clean(canonical(schema)),
    )


def key_of(request: TurnRequest) -> Key:
    return (request.step_id or "", request.member.identity, request.iteration, request.attempt)


def reply_key(reply: Reply) -> Key | None:
    """The key of a cassette's reply (None for a reply that is not keyed by all four)."""
    if reply.step is None or reply.member is None or reply.iteration is None:
        return None
    return (reply.step, reply.member, reply.iteration, reply.attempt or 1)


def describe(key: Key) -> str:
    step, member, iteration, attempt = key
    return f"step '{step}', member '{member}', iteration {iteration}, attempt {attempt}"


def changes(recorded: RenderedRequest, current: RenderedRequest) -> str:
    """A unified diff of every part of the request that changed since it was recorded."""
    parts = [
        ("system prompt", recorded.system, current.system),
        ("message", recorded.message, current.message),
        ("schema", _pretty(recorded.schema), _pretty(current.schema)),
    ]
    lines: list[str] = []
    for name, before, after in parts:
        if before == after:
            continue
        diff = list(
            difflib.unified_diff(
                before.splitlines(),
                after.splitlines(),
                f"recorded {name}",
                f"current {name}",
                lineterm="",
            )
        )
        if len(diff) > DIFF_LINES:
            diff = [*diff[:DIFF_LINES], f"... ({len(diff) - DIFF_LINES} more lines)"]
        lines += diff
    return "\n".join(lines)


def _pretty(schema: str | None) -> str:
    return "" if schema is None else json.dumps(json.loads(schema), indent=2, sort_keys=True)


def cassette_path(directory: Path, mob_id: str, flow_id: str) -> Path:
    """``DIR/<mob>.<flow>.toml``; an id that cannot name a file is refused."""
    for what, value in (("mob id", mob_id), ("flow id", flow_id)):
        if not is_slug(value):
            raise DriverError(f"the {what} {shown_id(value)!r} cannot name a cassette file")
    return directory / f"{mob_id}.{flow_id}.toml"


@dataclass(frozen=True)
class Recorded:
    """One turn as a cassette keeps it."""

    key: Key
    request: RenderedRequest
    output: str | None = None
    fail: str | None = None

    @classmethod
    def of(cls, request: TurnRequest, outcome: Outcome, secrets: list[str]) -> Recorded | None:
        """The turn's answer (a completed or failed turn; None for a canceled one)."""
        asked = rendered(request, secrets)
        if isinstance(outcome, Failed):
            return cls(key_of(request), asked, fail=redact(outcome.reason, secrets))
        if not isinstance(outcome, Completed):
            return None
        text = outcome.output
        if outcome.structured_output is not None and request.output_format == "json":
            text = json.dumps(outcome.structured_output, ensure_ascii=False)
        return cls(key_of(request), asked, output=redact(text, secrets))

    def table(self) -> Table:
        step, member, iteration, attempt = self.key
        table = tomlkit.table()
        table["step"], table["member"] = step, member
        table["iteration"], table["attempt"] = iteration, attempt
        if self.fail is not None:
            table["fail"] = _text(self.fail)
        else:
            table["output"] = _text(self.output or "")
        table["request_hash"] = self.request.digest
        request = tomlkit.table()
        request["system"] = _text(self.request.system)
        request["message"] = _text(self.request.message)
        if self.request.schema is not None:
            request["schema"] = self.request.schema
        table["request"] = request
        return table


def _text(value: str) -> Any:
    """A string as TOML: a multi-line string when it has lines (easier to review)."""
    return tomlkit.string(value, multiline="\n" in value and "\r" not in value)


HEADER = (
    "Recorded by mobctl (--record): each reply answers the request below it.",
    "Replay with --driver replay:DIR; a request that changed fails until it is recorded again.",
)


class Recorder:
    """The turns a run recorded into ``directory``, written when the run ends (:meth:`flush`).

    ``merge``: a recorded turn replaces the cassette's reply with the same key and the other
    replies stay (re-recording changed turns); otherwise each cassette written is replaced
    whole (a fresh recording)."""

    def __init__(self, directory: Path, secrets: list[str], *, merge: bool) -> None:
        self.directory = directory
        self.secrets = secrets
        self.merge = merge
        self._lock = threading.Lock()
        self._turns: dict[Path, dict[Key, Recorded]] = {}

    def add(self, request: TurnRequest, outcome: Outcome) -> None:
        turn = Recorded.of(request, outcome, self.secrets)
        if turn is None:
            return
        path = cassette_path(self.directory, request.mob_id, request.flow_id)
        with self._lock:
            self._turns.setdefault(path, {})[turn.key] = turn

    def flush(self) -> list[Path]:
        """Write every cassette that has recorded turns; the files written."""
        with self._lock:
            pending, self._turns = self._turns, {}
        for path, turns in pending.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                replace_file(path, self._document(path, turns))
            except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
                detail = (
                    exc.strerror
                    if isinstance(exc, OSError) and exc.strerror
                    else "it is not UTF-8 TOML"
                )
                raise OutputError(f"cannot write the cassette {path}: {detail}") from None
        return list(pending)

    def _document(self, path: Path, turns: dict[Key, Recorded]) -> str:
        ordered = sorted(turns.values(), key=lambda t: t.key)
        # a link or anything but a regular file is no cassette (replay skipped it too): it
        # is replaced, never read through
        if not (self.merge and path.is_file() and not path.is_symlink()):
            document = tomlkit.document()
            for line in HEADER:
                document.add(tomlkit.comment(line))
            replies = tomlkit.aot()
            for turn in ordered:
                replies.append(turn.table())
            document["reply"] = replies
            return document.as_string()
        document = tomlkit.parse(read_unlinked(path).decode("utf-8"))
        replies = document.setdefault("reply", tomlkit.aot())
        if not isinstance(replies, AoT):
            raise OSError(errno.EINVAL, "it is not a cassette ([[reply]] tables)", str(path))
        index = {_table_key(table): i for i, table in enumerate(replies)}
        for turn in ordered:
            at = index.get(turn.key)
            if at is None:
                replies.append(turn.table())
            else:
                replies[at] = turn.table()
        return document.as_string()


def _table_key(table: Any) -> Key | None:
    try:
        return (table["step"], table["member"], table["iteration"], table.get("attempt", 1))
    except (KeyError, TypeError):
        return None
