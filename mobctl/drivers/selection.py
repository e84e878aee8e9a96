"""``--driver KIND[:ARG]`` for all roles, ``--driver ROLE=KIND[:ARG]`` for one role."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from mobctl.drivers.base import Driver, DriverError, TurnProfile, close, preflight
from mobctl.drivers.command import OUTPUT_CAP, CommandDriver
from mobctl.drivers.echo import EchoDriver
from mobctl.drivers.scripted import ScriptedDriver

KINDS = ("echo", "scripted", "command", "llm")
KINDS_HINT = (
    "use echo, scripted:FILE, command:CMD or llm[:OPTIONS] (optionally ROLE=... for one role)"
)


@dataclass
class Drivers:
    """The driver of each role, and the default for the others."""

    default: Driver = field(default_factory=EchoDriver)
    by_role: dict[str, Driver] = field(default_factory=dict)
    specs: list[str] = field(default_factory=list)  # as given: recorded so a resume reuses them

    def for_role(self, role: str) -> Driver:
        return self.by_role.get(role, self.default)

    def preflight(self, profiles: Mapping[str, TurnProfile]) -> list[str]:
        """Each driver's check of the profiles of the roles it serves (role -> profile);
        the once-per-run warnings."""
        served: dict[int, tuple[Driver, list[TurnProfile]]] = {}
        for role, profile in profiles.items():
            driver = self.for_role(role)
            served.setdefault(id(driver), (driver, []))[1].append(profile)
        return [w for driver, mine in served.values() for w in preflight(driver, mine)]

    def close(self) -> None:
        for driver in {id(d): d for d in (self.default, *self.by_role.values())}.values():
            close(driver)


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
    """Whether the spec (for all roles or one) is a ``command:`` driver."""
    return split_role(spec)[1].partition(":")[0] == "command"


def build_driver(
    spec: str,
    *,
    output_cap: int = OUTPUT_CAP,
    env: Mapping[str, str] | None = None,
    allow_shell: bool = False,
    workdir: Path | None = None,
) -> Driver:
    """``env`` (credentials, base URLs), ``allow_shell`` and ``workdir`` are the llm
    driver's; the CLI passes the process environment and ``--allow-shell``."""
    kind, _, argument = spec.partition(":")
    if kind == "echo" and not argument:
        return EchoDriver()
    if kind == "scripted" and argument:
        return ScriptedDriver(Path(argument))
    if kind == "command" and argument:
        return CommandDriver(argument, output_cap=output_cap)
    if kind == "llm":
        from mobctl.drivers.llm.driver import LlmDriver
        from mobctl.drivers.llm.options import parse_options

        return LlmDriver(
            parse_options(argument), env=env or {}, allow_shell=allow_shell, workdir=workdir
        )
    raise DriverError(f"invalid driver {shown_spec(spec)!r}", hint=KINDS_HINT)


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


def parse_drivers(
    specs: list[str],
    *,
    output_cap: int = OUTPUT_CAP,
    env: Mapping[str, str] | None = None,
    allow_shell: bool = False,
    workdir: Path | None = None,
) -> Drivers:
    """``output_cap``: the most a command driver's stdout may hold (the store's record cap)."""
    drivers = Drivers(specs=list(specs))
    build = partial(
        build_driver, output_cap=output_cap, env=env, allow_shell=allow_shell, workdir=workdir
    )
    for spec in specs:
        _require_text(spec)
        role, driver = split_role(spec)
        if role is None:
            drivers.default = build(driver)
        else:
            drivers.by_role[role] = build(driver)
    return drivers
