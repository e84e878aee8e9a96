"""The library: one function per user action, typed against the store contract.

``from mobctl import api`` then ``api.start_run(store, "review.toml", params=...)``. Nothing
here prints, exits or reads the environment; errors are :class:`mobctl.errors.MobctlError`
subclasses, and a run's outcome carries its :class:`~mobctl.errors.ExitCode`. The functions
live in modules named after what they act on; they are imported when first used, so that
importing ``mobctl.api`` stays cheap.

- definitions: ``validate``, ``register``, ``get_spec``, ``delete_spec``, ``graph``,
  ``convert``, ``definition_schema``, ``registered_definition``, ``read_profile_file``,
  ``copy_spec``
- running: ``start_run``, ``resume_run`` (→ ``RunOutcome``)
- runs: ``list_runs``, ``show_run``, ``resolve_run``; custody: ``cancel_run``, ``recover``;
  transcripts: ``run_logs``
- events: ``events_tail``, ``events_verify``, ``events_prune``
- members: ``spawn``, ``active``, ``retire``
- supervisor: ``supervisor_init``, ``supervisor_rotate``, ``supervisor_show``, ``seal``,
  ``verify_signatures``
- stores: ``store_init``, ``store_check``; session: ``writing`` (the writing-command rules)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobctl.api.custody import cancel_run, recover
    from mobctl.api.definitions import (
        convert,
        copy_spec,
        definition_schema,
        delete_spec,
        get_spec,
        graph,
        read_profile_file,
        register,
        registered_definition,
        validate,
    )
    from mobctl.api.events import events_prune, events_tail, events_verify
    from mobctl.api.members import active, retire, spawn
    from mobctl.api.running import RunOutcome, Watch, resume_run, start_run
    from mobctl.api.runs import list_runs, resolve_run, show_run
    from mobctl.api.session import writing
    from mobctl.api.stores import store_check, store_init
    from mobctl.api.supervisor import (
        seal,
        supervisor_init,
        supervisor_rotate,
        supervisor_show,
        verify_signatures,
    )
    from mobctl.api.transcripts import run_logs

_MODULES = {
    "custody": ("cancel_run", "recover"),
    "definitions": (
        "convert",
        "copy_spec",
        "definition_schema",
        "delete_spec",
        "get_spec",
        "graph",
        "read_profile_file",
        "register",
        "registered_definition",
        "validate",
    ),
    "events": ("events_prune", "events_tail", "events_verify"),
    "members": ("active", "retire", "spawn"),
    "running": ("RunOutcome", "Watch", "resume_run", "start_run"),
    "runs": ("list_runs", "resolve_run", "show_run"),
    "session": ("writing",),
    "stores": ("store_check", "store_init"),
    "transcripts": ("run_logs",),
    "supervisor": (
        "seal",
        "supervisor_init",
        "supervisor_rotate",
        "supervisor_show",
        "verify_signatures",
    ),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}
__all__ = [
    "RunOutcome",
    "Watch",
    "active",
    "cancel_run",
    "convert",
    "copy_spec",
    "definition_schema",
    "delete_spec",
    "events_prune",
    "events_tail",
    "events_verify",
    "get_spec",
    "graph",
    "list_runs",
    "read_profile_file",
    "recover",
    "register",
    "registered_definition",
    "resolve_run",
    "resume_run",
    "retire",
    "run_logs",
    "seal",
    "show_run",
    "spawn",
    "start_run",
    "store_check",
    "store_init",
    "supervisor_init",
    "supervisor_rotate",
    "supervisor_show",
    "validate",
    "verify_signatures",
    "writing",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mobctl.api' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mobctl.api.{module}"), name)
