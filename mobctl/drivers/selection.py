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
HINT = "use echo, scripted:FILE, command:CMD or llm[:OPTIONS] (optionally ROLE=... for one role)"


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
    if "\x00" in spec:  # no file name or command can hold one
        raise DriverError(f"invalid driver {spec!r}: it contains a NUL character", hint=HINT)
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
    raise DriverError(f"invalid driver {spec!r}", hint=HINT)


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
        head, equals, rest = spec.partition("=")
        # ROLE=KIND[:ARG]; an '=' inside a command (command:env X=1 ...) is not a role
        if equals and ":" not in head and head not in KINDS:
            drivers.by_role[head] = build(rest)
        else:
            drivers.default = build(spec)
    return drivers
