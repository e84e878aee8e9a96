"""Shell completion: ``mobctl completion bash|zsh|fish`` prints the script (Typer's), and the
functions here complete mob ids, flows, run ids and step names from the store.

A completion runs at every Tab, in whatever directory the shell is in, where the store may be
missing, locked, damaged or planted: it reads without locking or waiting, never writes, never
prints, and a store it cannot read completes nothing. It offers only values a shell can take
as they are (no whitespace, no control character), so a hostile store cannot inject text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from mobctl.definition.model import MobDefinition
    from mobctl.store.contract import Store

SHELLS = ("bash", "zsh", "fish")
PROG = "mobctl"
COMPLETE_VAR = "_MOBCTL_COMPLETE"  # what Typer's scripts set to ask mobctl for completions
_SAFE = re.compile(r"[A-Za-z0-9._:@+-]+")  # a value the shell can take as it is
MOST = 200  # values offered at once


def script(shell: str) -> str:
    """The completion script of ``shell`` (Typer's, for the ``mobctl`` command)."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)


Find = Callable[[typer.Context, str], Iterable[str]]


def _quietly(find: Find) -> Callable[..., list[str]]:
    """A completion function of Typer's: the values ``find(ctx, typed)`` gives that start with
    what was typed, shell-safe, sorted; nothing at all if anything goes wrong."""

    def complete(ctx: typer.Context, incomplete: str) -> list[str]:
        try:
            found = {value for value in find(ctx, incomplete) if value.startswith(incomplete)}
        except Exception:  # a missing, locked or hostile store completes nothing
            return []
        return sorted(value for value in found if _SAFE.fullmatch(value))[:MOST]

    return complete


def _store(ctx: typer.Context) -> Store:
    from mobctl.cli.common import open_store

    return open_store(ctx.params.get("store"), 0.0)  # never wait for a lock


def _mob(ctx: typer.Context) -> str:
    mob = ctx.params.get("mob") or ctx.params.get("target")
    if not isinstance(mob, str):
        raise LookupError("no mob given yet")
    return mob


def _definition(ctx: typer.Context) -> MobDefinition:
    """The definition the command line names so far: a definition file (`graph FILE`, `run
    FILE`), or a registered mob."""
    from pathlib import Path

    from mobctl import api
    from mobctl.api.running import names_a_file
    from mobctl.definition.loader import load_file

    file, target = ctx.params.get("file"), ctx.params.get("target")
    if isinstance(target, str) and names_a_file(target):
        file = Path(target)
    if isinstance(file, Path):
        loaded = load_file(file).definition
        if loaded is None:
            raise LookupError("the file holds no usable definition")
        return loaded
    return api.registered_definition(_store(ctx), _mob(ctx))


@_quietly
def complete_mob(ctx: typer.Context, typed: str) -> Iterable[str]:
    """Mob ids of the store."""
    return _store(ctx).mob_ids()


@_quietly
def complete_flow(ctx: typer.Context, typed: str) -> Iterable[str]:
    """Flow ids of the mob (or definition file) named so far."""
    return _definition(ctx).flows


@_quietly
def complete_run(ctx: typer.Context, typed: str) -> Iterable[str]:
    """Run ids of the mob named so far that start with what was typed; with nothing typed,
    the newest (as many as are offered)."""
    runs = _store(ctx).runs(_mob(ctx))
    newest = None if typed else runs.newest_runs()
    if newest is None:  # something typed, or no index to read newest first
        return runs.match_runs(typed.lower())
    return [entry.run_id for entry in islice(newest, MOST)]


@_quietly
def complete_step(ctx: typer.Context, typed: str) -> Iterable[str]:
    """Step ids of the mob's flows."""
    return {step for flow in _definition(ctx).flows.values() for step in flow.steps}


@_quietly
def complete_member(ctx: typer.Context, typed: str) -> Iterable[str]:
    """Active members of the mob named so far."""
    return _store(ctx).events(_mob(ctx)).roster().active


def complete_from(values: Iterable[str]) -> Callable[..., Any]:
    """A completion function offering fixed ``values`` (output formats, shells, statuses)."""
    fixed = tuple(values)
    return _quietly(lambda ctx, typed: fixed)
