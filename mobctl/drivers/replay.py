"""``replay:DIR[,fallback=SPEC]``: answers from the cassettes in DIR (recorded with
``--record DIR``, :mod:`mobctl.drivers.cassettes`).

A turn is answered by the reply recorded for its step, member, iteration and attempt, only if
the request it answered hashes the same as the request now: a changed prompt, skill or schema
fails the turn loudly (its reason names the step and shows what changed) and is kept in
:attr:`ReplayDriver.problems`, never answered with a stale reply. With ``fallback=SPEC``
(``fallback=llm``) such a turn is asked of that driver instead and its answer recorded in the
cassette, so only the changed turns are recorded again.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mobctl.drivers.base import (
    DispatchError,
    Driver,
    DriverError,
    Outcome,
    TurnProfile,
    TurnRequest,
    close,
    preflight,
)
from mobctl.drivers.cassettes import (
    Key,
    Recorder,
    RenderedRequest,
    cassette_path,
    changes,
    describe,
    key_of,
    rendered,
    reply_key,
    secret_values,
)
from mobctl.drivers.scripted import Reply, answer, load_fixtures

if TYPE_CHECKING:
    from mobctl.drivers.registry import DriverConfig

FALLBACK = ",fallback="
HINT = "use replay:DIR or replay:DIR,fallback=SPEC (e.g. fallback=llm)"


class ReplayDriver:
    def __init__(
        self,
        directory: Path,
        *,
        fallback: Driver | None = None,
        secrets: list[str] | None = None,
        rerecord: bool = False,
    ) -> None:
        self.directory = directory
        self.fallback = fallback
        self.rerecord = rerecord  # ask the fallback every turn, recording it anew
        self.secrets = secrets or []
        self.recorder = Recorder(directory, self.secrets, merge=True) if fallback else None
        self.problems: list[str] = []  # every turn a stale or missing reply failed
        self._lock = threading.Lock()
        self.cassettes = {} if rerecord else _load(directory, required=fallback is None)

    def run(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        if self.rerecord:
            return self._ask(request, stop)
        path = cassette_path(self.directory, request.mob_id, request.flow_id)
        key = key_of(request)
        reply = self.cassettes.get(path, {}).get(key)
        current = rendered(request, self.secrets)
        if reply is not None and reply.request_hash == current.digest:
            return answer(reply, stop)
        if self.fallback is not None:
            return self._ask(request, stop)
        problem = _problem(path, key, reply, current)
        with self._lock:
            self.problems.append(problem)
        raise DispatchError(problem)

    def _ask(self, request: TurnRequest, stop: threading.Event) -> Outcome:
        assert self.fallback is not None
        assert self.recorder is not None
        outcome = self.fallback.run(request, stop)
        self.recorder.add(request, outcome)
        return outcome

    def preflight(self, profiles: list[TurnProfile]) -> list[str]:
        return preflight(self.fallback, profiles) if self.fallback is not None else []

    def close(self) -> None:
        try:
            if self.fallback is not None:
                close(self.fallback)
        finally:
            if self.recorder is not None:
                self.recorder.flush()


def _problem(path: Path, key: Key, reply: Reply | None, current: RenderedRequest) -> str:
    again = "; record it again with --driver replay:DIR,fallback=llm (or mobctl test --record)"
    if reply is None:
        return f"the cassette {path} has no reply for {describe(key)}{again}"
    if reply.request is None or reply.request_hash is None:
        return (
            f"the cassette {path} has a reply for {describe(key)} without the request it "
            f"answered (request_hash and [reply.request]){again}"
        )
    return f"the request for {describe(key)} changed since it was recorded in {path}{again}:\n" + (
        changes(RenderedRequest.recorded(reply.request), current) or "(the hash differs)"
    )


def _load(directory: Path, *, required: bool) -> dict[Path, dict[Key, Reply]]:
    """Every cassette in ``directory`` (``*.toml``, regular files; a link is not followed),
    checked up front like a fixtures file."""
    if not directory.is_dir():
        if required:
            raise DriverError(
                f"the cassette directory {directory} does not exist",
                hint="record one with --record DIR, or give replay a fallback=SPEC",
            )
        return {}
    cassettes: dict[Path, dict[Key, Reply]] = {}
    for path in sorted(directory.glob("*.toml")):
        if path.is_symlink() or not path.is_file():
            continue
        replies: dict[Key, Reply] = {}
        for number, reply in enumerate(load_fixtures(path), 1):
            key = reply_key(reply)
            if key is None:
                raise DriverError(
                    f"the cassette {path}: reply {number} is not keyed by step, member and "
                    "iteration",
                    hint="a cassette is written by --record DIR",
                )
            replies.setdefault(key, reply)
        cassettes[path] = replies
    return cassettes


def factory(argument: str, config: DriverConfig) -> ReplayDriver:
    """``replay:DIR[,fallback=SPEC]`` (SPEC is any driver spec: the rest of the argument)."""
    from mobctl.drivers.registry import build_driver, invalid

    directory, has_fallback, spec = argument.partition(FALLBACK)
    if not directory or (has_fallback and not spec):
        raise invalid(f"replay:{argument}")
    if spec.partition(":")[0] == "replay":
        raise DriverError("a replay driver's fallback cannot be another replay", hint=HINT)
    fallback = build_driver(spec, config) if spec else None
    if config.rerecord and fallback is None:
        fallback = build_driver("llm", config)
    return ReplayDriver(
        Path(directory),
        fallback=fallback,
        secrets=secret_values(config.env),
        rerecord=config.rerecord,
    )
