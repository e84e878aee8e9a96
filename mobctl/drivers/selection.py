"""``--driver KIND[:ARG]`` for all roles, ``--driver ROLE=KIND[:ARG]`` for one role."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mobctl.drivers.base import Driver, DriverError
from mobctl.drivers.command import OUTPUT_CAP, CommandDriver
from mobctl.drivers.echo import EchoDriver
from mobctl.drivers.scripted import ScriptedDriver

KINDS = ("echo", "scripted", "command")


@dataclass
class Drivers:
    """The driver of each role, and the default for the others."""

    default: Driver = field(default_factory=EchoDriver)
    by_role: dict[str, Driver] = field(default_factory=dict)
    specs: list[str] = field(default_factory=list)  # as given: recorded so a resume reuses them

    def for_role(self, role: str) -> Driver:
        return self.by_role.get(role, self.default)


def build_driver(spec: str, *, output_cap: int = OUTPUT_CAP) -> Driver:
    kind, _, argument = spec.partition(":")
    if "\x00" in spec:  # no file name or command can hold one
        raise DriverError(
            f"invalid driver {spec!r}: it contains a NUL character",
            hint="use echo, scripted:FILE or command:CMD (optionally ROLE=... for one role)",
        )
    if kind == "echo" and not argument:
        return EchoDriver()
    if kind == "scripted" and argument:
        return ScriptedDriver(Path(argument))
    if kind == "command" and argument:
        return CommandDriver(argument, output_cap=output_cap)
    raise DriverError(
        f"invalid driver {spec!r}",
        hint="use echo, scripted:FILE or command:CMD (optionally ROLE=... for one role)",
    )


def parse_drivers(specs: list[str], *, output_cap: int = OUTPUT_CAP) -> Drivers:
    """``output_cap``: the most a command driver's stdout may hold (the store's record cap)."""
    drivers = Drivers(specs=list(specs))
    for spec in specs:
        head, equals, rest = spec.partition("=")
        # ROLE=KIND[:ARG]; an '=' inside a command (command:env X=1 ...) is not a role
        if equals and ":" not in head and head not in KINDS:
            drivers.by_role[head] = build_driver(rest, output_cap=output_cap)
        else:
            drivers.default = build_driver(spec, output_cap=output_cap)
    return drivers
