"""The driver registry: a kind (``echo``, ``scripted``, ``command``, ``llm``) names a factory
that builds the driver from its argument and a :class:`DriverConfig`; ``--driver KIND[:ARG]``
applies to every role, ``--driver ROLE=KIND[:ARG]`` to one.

A new kind of driver is one module with a ``factory(argument, config)`` and one line in
:data:`FACTORIES`; the engine only ever sees the :class:`~mobctl.drivers.base.Driver` contract.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mobctl.drivers.base import Driver, DriverError, Drivers
from mobctl.drivers.command import OUTPUT_CAP
from mobctl.drivers.echo import EchoDriver
from mobctl.errors import OutputError


@dataclass(frozen=True)
class DriverConfig:
    """What the person running gives every driver (never the store or a definition): the
    record cap a command's stdout may fill, the environment credentials and base URLs come
    from, whether a profile may have a shell or start the stdio MCP servers it names, and the
    working directory; ``record``: save every turn's answer as a cassette in that directory
    (``--record DIR``); ``rerecord``: a ``replay:`` driver asks its fallback every turn and
    records it anew (``test --record``)."""

    output_cap: int = OUTPUT_CAP
    env: Mapping[str, str] = field(default_factory=dict)
    allow_shell: bool = False
    allow_mcp: bool = False
    workdir: Path | None = None
    record: Path | None = None
    rerecord: bool = False


Factory = Callable[[str, DriverConfig], Driver]

# kind -> the module whose ``factory`` builds it (imported when used: the llm driver's SDKs
# are heavy and optional)
FACTORIES: dict[str, str] = {
    "echo": "mobctl.drivers.echo",
    "scripted": "mobctl.drivers.scripted",
    "command": "mobctl.drivers.command",
    "llm": "mobctl.drivers.llm",
    "replay": "mobctl.drivers.replay",
}
KINDS = tuple(FACTORIES)
KINDS_HINT = (
    "use echo, scripted:FILE, command:CMD, llm[:OPTIONS] or replay:DIR[,fallback=SPEC] "
    "(optionally ROLE=... for one role)"
)


SHOWN_CHARS = 200  # of a driver spec echoed in an error (it may come from a run snapshot)


def shown_spec(spec: str) -> str:
    """A driver spec as an error echoes it: at most :data:`SHOWN_CHARS` characters, then "…"."""
    return spec if len(spec) <= SHOWN_CHARS else spec[:SHOWN_CHARS] + "…"


def split_role(spec: str) -> tuple[str | None, str]:
    """``ROLE=KIND[:ARG]`` as (ROLE, KIND[:ARG]); (None, spec) for every role."""
    head, equals, rest = spec.partition("=")
    # an '=' inside a command (command:env X=1 ...) is not a role
    if equals and ":" not in head and head not in KINDS:
        return head, rest
    return None, spec


def runs_a_program(spec: str) -> bool:
    """Whether the spec (for all roles or one) is a ``command:`` driver, or a ``replay:``
    driver whose fallback is one."""
    kind, _, argument = split_role(spec)[1].partition(":")
    if kind == "replay":
        return runs_a_program(argument.partition(",fallback=")[2])
    return kind == "command"


def build_driver(spec: str, config: DriverConfig | None = None) -> Driver:
    """The driver a ``KIND[:ARG]`` spec names."""
    kind, _, argument = spec.partition(":")
    module = FACTORIES.get(kind)
    if module is None:
        raise DriverError(f"invalid driver {shown_spec(spec)!r}", hint=KINDS_HINT)
    factory: Factory = importlib.import_module(module).factory
    return factory(argument, config or DriverConfig())


def invalid(spec: str) -> DriverError:
    """The error of a spec whose argument its kind does not take."""
    return DriverError(f"invalid driver {shown_spec(spec)!r}", hint=KINDS_HINT)


def _require_text(spec: str) -> None:
    """No NUL (no file name or command can hold one), nothing but UTF-8 (argv may hold other
    bytes; a run records its specs as JSON)."""
    problem = "it contains a NUL character" if "\x00" in spec else None
    try:
        spec.encode("utf-8")
    except UnicodeEncodeError:
        problem = "it is not UTF-8 text"
    if problem is not None:
        raise DriverError(f"invalid driver {shown_spec(spec)!r}: {problem}", hint=KINDS_HINT)


def parse_drivers(specs: list[str], config: DriverConfig | None = None) -> Drivers:
    """The drivers of ``--driver`` specs (the last one for a role wins)."""
    drivers = Drivers(EchoDriver(), specs=list(specs))
    for spec in specs:
        _require_text(spec)
        role, driver = split_role(spec)
        if role is None:
            drivers.default = build_driver(driver, config)
        else:
            drivers.by_role[role] = build_driver(driver, config)
    if config is not None and config.record is not None:
        _record(drivers, config)
    return drivers


def _record(drivers: Drivers, config: DriverConfig) -> None:
    """Every driver's answers recorded into ``config.record`` (one recorder: one file per
    mob and flow, written when the run ends)."""
    from mobctl.drivers.cassettes import Recorder, secret_values
    from mobctl.drivers.recording import RecordingDriver

    assert config.record is not None
    try:  # now, not when the run has ended: its outcome would be lost behind the error
        config.record.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write cassettes in {config.record}: {exc.strerror}") from None
    recorder = Recorder(config.record, secret_values(config.env), merge=False)
    drivers.default = RecordingDriver(drivers.default, recorder)
    drivers.by_role = {role: RecordingDriver(d, recorder) for role, d in drivers.by_role.items()}
