"""``scripted:FILE``: answers from a TOML fixtures file of ``[[reply]]`` tables.

Match keys (all optional): ``step``, ``member``, ``role``, ``iteration`` (0-based), ``attempt``
(1-based); the first matching reply in file order answers. Answers: ``output`` (raw text),
``json`` (any TOML value, given as JSON text), or ``fail`` (the turn fails); ``delay_ms`` waits
first. The file is validated up front, with file:line:col in every error.

A cassette (``--record DIR``, :mod:`mobctl.drivers.cassettes`) is a fixtures file whose replies
also carry the hash of the request they answered and that request (``request_hash``,
``[reply.request]``); ``scripted:`` ignores both, ``replay:`` checks them.
"""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from mobctl.definition.positions import toml_source_map
from mobctl.diagnostics import dotted
from mobctl.drivers.base import Canceled, Completed, DriverError, Failed, Outcome, TurnRequest

if TYPE_CHECKING:
    from mobctl.drivers.registry import DriverConfig


MAX_DELAY_MS = 36_500 * 86_400_000  # 100 years, as --timeout: longer cannot be waited for


class RecordedRequest(BaseModel):
    """The rendered request a cassette's reply answered (what its hash covers)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    system: str = ""
    message: str = ""
    schema_text: str | None = Field(default=None, alias="schema")


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    step: str | None = None
    member: str | None = None
    role: str | None = None
    iteration: int | None = Field(default=None, ge=0)
    attempt: int | None = Field(default=None, ge=1)
    output: str | None = None
    json_value: JsonValue = Field(default=None, alias="json")
    fail: str | None = None
    delay_ms: int = Field(default=0, ge=0, le=MAX_DELAY_MS)
    request_hash: str | None = None  # cassettes only
    request: RecordedRequest | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> Reply:
        given = [
            k
            for k, v in (("output", self.output), ("json", self.json_value), ("fail", self.fail))
            if v is not None
        ]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(f"a reply needs exactly one of output, json, fail (found {found})")
        return self

    def matches(self, request: TurnRequest) -> bool:
        wanted: list[tuple[object, object]] = [
            (self.step, request.step_id),
            (self.member, request.member.identity),
            (self.role, request.member.role),
            (self.iteration, request.iteration),
            (self.attempt, request.attempt),
        ]
        return all(want is None or want == actual for want, actual in wanted)


class _Fixtures(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reply: list[Reply] = Field(default_factory=list)


def load_fixtures(path: Path) -> list[Reply]:
    """The replies of a fixtures file: only read, and only a regular file (the path may come
    from a run snapshot, and a FIFO or a device would never end)."""
    if path.exists() and not path.is_file():
        raise DriverError(f"cannot read fixtures {path}: it is not a regular file")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DriverError(f"cannot read fixtures {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DriverError(f"{path}: {exc}") from exc
    try:
        return _Fixtures.model_validate(data).reply
    except ValidationError as exc:
        source = toml_source_map(text)
        lines = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p != "json_value")
            where = source.value(loc)
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}:{where.line}:{where.column}: {dotted(loc) or 'file'}: {message}")
        raise DriverError(  # the error boundary indents each further line
            "invalid fixtures file:\n" + "\n".join(lines),
            hint="each [[reply]] has match keys (step, member, role, iteration, attempt) and "
            "one answer (output, json or fail)",
        ) from exc


class ScriptedDriver:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.replies = load_fixtures(path)

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        reply = next((r for r in self.replies if r.matches(request)), None)
        if reply is None:
            return Failed(
                f"no scripted reply for step '{request.step_id}', member "
                f"'{request.member.identity}', iteration {request.iteration}"
            )
        return answer(reply, stop)


def answer(reply: Reply, stop: threading.Event) -> Outcome:
    """What a reply answers, after its delay (Canceled when ``stop`` is set meanwhile)."""
    if reply.delay_ms and stop.wait(reply.delay_ms / 1000):
        return Canceled()
    if stop.is_set():
        return Canceled()
    if reply.fail is not None:
        return Failed(reply.fail)
    if reply.output is not None:
        return Completed(reply.output)
    value: Any = reply.json_value
    return Completed(json.dumps(value, ensure_ascii=False))


def factory(argument: str, config: DriverConfig) -> ScriptedDriver:
    """``scripted:FILE``."""
    if not argument:
        from mobctl.drivers.registry import invalid

        raise invalid("scripted:")
    return ScriptedDriver(Path(argument))
