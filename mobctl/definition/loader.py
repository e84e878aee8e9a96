"""Load a definition: parse (phase 1), build the model (phase 2), place diagnostics.

The loader never raises for bad input: every problem becomes a diagnostic. Phase 1 is the
syntax (``toml_syntax`` / ``json_syntax``); phase 2 the shape: pydantic's errors translated to
``invalid_value`` / ``invalid_mcp_server`` / ``unknown_key``, plus ``deprecated_key`` and
``realm_profile_mixed_keys`` found in the raw document.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path as FsPath
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mobctl.definition.files import read_regular
from mobctl.definition.model import (
    JSON_ONLY_KEYS,
    Flow,
    MobDefinition,
    StepNode,
    Table,
    synthesised_root,
)
from mobctl.definition.positions import Position, SourceMap, json_source_map, toml_source_map
from mobctl.diagnostics import Diagnostic, Path, Severity, diagnostic, dotted

Format = Literal["toml", "json"]

_TOML_AT = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)
_JSON_TOP_LEVEL = ("id", "orchestrator")
# Top-level fields older meerkat-mob versions wrote into the JSON form: (message, hint).
_LEGACY_JSON_KEYS = {
    "owner_session_id": (
        "a meerkat-mob 0.5.x field",
        "renamed owner_bridge_session_id in meerkat-mob 0.6.0, removed in 0.7.0; has no effect",
    ),
    "owner_bridge_session_id": (
        "a meerkat-mob 0.6.x field",
        "a MobDefinition field from meerkat-mob 0.6.0 until 0.7.0; has no effect",
    ),
    "session_cleanup_policy": (
        "a meerkat-mob 0.5.x and 0.6.x field",
        "removed in meerkat-mob 0.7.0; has no effect",
    ),
    "is_implicit": (
        "a meerkat-mob 0.5.x and 0.6.x field",
        "removed in meerkat-mob 0.7.0; has no effect",
    ),
}


@dataclass
class Document:
    """One parsed definition file: its text, its raw value and where things are in it."""

    display: str
    format: Format
    text: str
    raw: dict[str, Any]
    base_dir: FsPath
    # model path prefix -> document path prefix, for the reshaped JSON form
    remap: list[tuple[Path, Path]] = field(default_factory=list)

    @cached_property
    def source(self) -> SourceMap:
        return toml_source_map(self.text) if self.format == "toml" else json_source_map(self.text)

    def document_path(self, path: Path) -> Path:
        for model_prefix, doc_prefix in self.remap:
            if path[: len(model_prefix)] == model_prefix:
                return doc_prefix + path[len(model_prefix) :]
        return path


@dataclass
class LoadResult:
    display: str
    document: Document | None
    definition: MobDefinition | None
    diagnostics: list[Diagnostic]
    text: str | None = None  # what was read, for showing lines (a file is never read twice)


def detect_format(path: FsPath) -> Format:
    return "json" if path.suffix.lower() == ".json" else "toml"


def load_file(path: FsPath, display: str | None = None) -> LoadResult:
    """Load a definition file; unreadable or malformed files give diagnostics, not errors."""
    shown = display or str(path)
    fmt = detect_format(path)
    try:
        data = read_regular(path)
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
        return LoadResult(shown, None, None, [_syntax(fmt, message, None, shown)])
    return load_bytes(data, fmt, shown, path.resolve().parent)


def load_bytes(data: bytes, fmt: Format, display: str, base_dir: FsPath) -> LoadResult:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start]
        line = prefix.count(b"\n") + 1
        column = len(prefix[prefix.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        message = f"file is not valid UTF-8 (byte {exc.start})"
        return LoadResult(display, None, None, [_syntax(fmt, message, (line, column), display)])
    return load_text(text.removeprefix("\ufeff"), fmt, display, base_dir)


def load_text(text: str, fmt: Format, display: str, base_dir: FsPath) -> LoadResult:
    """Phases 1 and 2. ``definition`` is None when a phase-1 or phase-2 error exists."""
    parsed = parse_document(text, fmt, display)
    if isinstance(parsed, Diagnostic):
        return LoadResult(display, None, None, [parsed], text)
    document = Document(display, fmt, text, parsed, base_dir)
    notes = _reshape_json(document) if fmt == "json" else []
    non_finite = _non_finite(document.raw)
    if non_finite:
        diagnostics = notes + non_finite
        found = locate(diagnostics + _raw_checks(document), document)
        return LoadResult(display, document, None, found, text)
    definition, diagnostics = _build(document)
    if any(d.severity is Severity.ERROR for d in notes):
        definition = None
    diagnostics = notes + diagnostics + _raw_checks(document)
    return LoadResult(display, document, definition, locate(diagnostics, document), text)


def parse_document(text: str, fmt: Format, display: str) -> dict[str, Any] | Diagnostic:
    """Phase 1 alone: the parsed document, or the syntax diagnostic that stops it (also for a
    document nested deeper than :data:`MAX_NESTING`). ``mobctl test`` reads suites with it."""
    parsed = _parse(text, fmt, display)
    if isinstance(parsed, Diagnostic):
        return parsed
    too_deep = _nesting_problem(parsed)
    return parsed if too_deep is None else _syntax(fmt, too_deep, (1, 1), display)


MAX_NESTING = 200


def _nesting_problem(raw: Any) -> str | None:
    """Deeper than any real definition needs (and than the parsers' recursion can take)."""
    pending: list[tuple[Any, int]] = [(raw, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_NESTING:
            return f"the document is nested more than {MAX_NESTING} levels deep"
        children = node.values() if type(node) is dict else node
        pending.extend((c, depth + 1) for c in children if type(c) in (dict, list))
    return None


def _non_finite(raw: Any) -> list[Diagnostic]:
    """``nan`` and ``inf`` parse in TOML but have no JSON form: refuse them everywhere."""
    found = []
    pending: list[tuple[Any, Path]] = [(raw, ())]
    while pending:
        node, path = pending.pop()
        items = node.items() if type(node) is dict else enumerate(node)
        for key, value in items:
            kind = type(value)
            if kind is float and not math.isfinite(value):
                found.append(
                    diagnostic(
                        "invalid_value",
                        f"{value} is not a valid value here (definitions must be representable "
                        "as JSON)",
                        (*path, key),
                    )
                )
            elif kind is dict or kind is list:
                pending.append((value, (*path, key)))
    return found


def locate(diagnostics: list[Diagnostic], document: Document) -> list[Diagnostic]:
    """Fill in file, line and column of each diagnostic from the document's source map."""
    located = []
    for diag in diagnostics:
        pos = _position(diag, document)
        located.append(
            replace(
                diag,
                file=document.display,
                line=pos.line if pos else None,
                column=pos.column if pos else None,
                end_line=pos.end_line if pos else None,
                end_column=pos.end_column if pos else None,
            )
        )
    return located


def _position(diag: Diagnostic, document: Document) -> Position | None:
    source = document.source
    path = document.document_path(diag.path)
    if diag.point == "key":
        return source.key(path)
    if diag.point == "missing":
        for depth in range(len(path) - 1, 0, -1):
            span = source.values.get(path[:depth])
            if span is not None:
                return source.at(span[0])
            offset = source.keys.get(path[:depth])
            if offset is not None:
                return source.at(offset)
        return source.at(source.first or 0)
    if diag.offset is not None:
        decoded = _raw_at(document.raw, diag.path)
        if isinstance(decoded, str):
            return source.in_string(path, decoded, diag.offset)
    return source.value(path)


# --- phase 1 --------------------------------------------------------------------------------


def _syntax(fmt: Format, message: str, at: tuple[int, int] | None, display: str) -> Diagnostic:
    diag = diagnostic(f"{fmt}_syntax", message, (), location=None)
    if at is None:
        return replace(diag, location=None, file=display)
    return replace(diag, location=None, file=display, line=at[0], column=at[1])


def _parse(text: str, fmt: Format, display: str) -> dict[str, Any] | Diagnostic:
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except RecursionError:
            return _syntax(
                fmt, f"the document is nested more than {MAX_NESTING} levels deep", (1, 1), display
            )
        except tomllib.TOMLDecodeError as exc:
            match = _TOML_AT.match(str(exc))
            if match is None:
                lines = text.count("\n") + 1
                return _syntax(
                    fmt, str(exc).replace(" (at end of document)", ""), (lines, 1), display
                )
            at = (int(match["line"]), int(match["col"]))
            return _syntax(fmt, match["msg"], at, display)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError:
        return _syntax(
            fmt, f"the document is nested more than {MAX_NESTING} levels deep", (1, 1), display
        )
    except json.JSONDecodeError as exc:
        return _syntax(fmt, exc.msg, (exc.lineno, exc.colno), display)
    except ValueError as exc:
        source = json_source_map(text)
        where = source.at(source.problems[0]) if source.problems else None
        return _syntax(fmt, str(exc), (where.line, where.column) if where else None, display)
    if not isinstance(value, dict):
        return _syntax(fmt, "a definition must be a JSON object", (1, 1), display)
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _reshape_json(document: Document) -> list[Diagnostic]:
    """Meerkat's JSON form keeps ``id``/``orchestrator`` at the top; the model nests them.

    Returns what does not belong in the JSON form (a TOML-style ``mob`` table, a string
    orchestrator).
    """
    raw = document.raw
    notes = []
    if "mob" in raw:
        raw.pop("mob")
        notes.append(
            diagnostic(
                "unknown_key",
                "unknown key 'mob' in the top level",
                ("mob",),
                point="key",
                location="mob",
                hint="the JSON form keeps id and orchestrator at the top level",
            )
        )
    mob = {key: raw.pop(key) for key in _JSON_TOP_LEVEL if key in raw}
    if mob.get("orchestrator", 0) is None:
        del mob["orchestrator"]
    if isinstance(mob.get("orchestrator"), str):
        notes.append(
            diagnostic(
                "invalid_value",
                'the JSON form writes the orchestrator as an object such as {"profile": "lead"}',
                ("mob", "orchestrator"),
                location="orchestrator",
            )
        )
    document.raw = {"mob": mob, **raw}
    if "mcp_servers" in document.raw:
        document.raw["mcp"] = document.raw.pop("mcp_servers")
        document.remap.append((("mcp",), ("mcp_servers",)))
    document.remap += [(("mob", key), (key,)) for key in _JSON_TOP_LEVEL]
    document.remap.append((("mob",), ()))
    return notes


# --- phase 2 --------------------------------------------------------------------------------


def _build(document: Document) -> tuple[MobDefinition | None, list[Diagnostic]]:
    raw = document.raw
    if document.format == "toml":  # the JSON-only keys are reported by _raw_checks
        raw = _without(raw, [(key,) for key in JSON_ONLY_KEYS])
    try:
        definition = MobDefinition.model_validate(raw)
    except ValidationError as exc:
        diagnostics = [_translate(err, raw) for err in exc.errors()]
        if any(d.severity is Severity.ERROR for d in diagnostics):
            return None, diagnostics
        # Only unknown keys in open tables: they are warnings, so build without them.
        stripped = _without(raw, [d.path for d in diagnostics])
        try:
            definition = MobDefinition.model_validate(stripped)
        except ValidationError as again:  # pragma: no cover - stripping cannot add errors
            return None, diagnostics + [_translate(e, stripped) for e in again.errors()]
        return _normalise(definition, document), diagnostics
    return _normalise(definition, document), []


def _normalise(definition: MobDefinition, document: Document) -> MobDefinition:
    """A JSON root that equals the one synthesised from ``steps`` is not an explicit root."""
    if document.format != "json":
        return definition
    flows = {
        flow_id: flow.model_copy(update={"root": None}) if _is_synthesised(flow) else flow
        for flow_id, flow in definition.flows.items()
    }
    return definition.model_copy(update={"flows": flows})


def _is_synthesised(flow: Flow) -> bool:
    """Whether an explicit root is exactly what the flat steps compile to (0.5.2 roots carry
    no failure_policy: absent counts as the step's)."""
    if flow.root is None:
        return False
    expected = synthesised_root(flow.steps).nodes
    actual = flow.root.nodes
    if list(actual) != list(expected):
        return False
    for node_id, node in actual.items():
        if not isinstance(node, StepNode):
            return False
        want = expected[node_id]
        assert isinstance(want, StepNode)
        policy = node.failure_policy or want.failure_policy
        if node.model_copy(update={"failure_policy": policy}) != want:
            return False
    return True


def _without(raw: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    """A copy of ``raw`` without the keys at ``paths`` (copying only what changes)."""

    def drop(node: Any, path: Path) -> Any:
        if not path:
            return node
        head, rest = path[0], path[1:]
        if isinstance(node, dict):
            copy = dict(node)
            if rest:
                copy[head] = drop(copy[head], rest)
            else:
                copy.pop(head, None)
            return copy
        if isinstance(node, list) and isinstance(head, int):
            items = list(node)
            items[head] = drop(items[head], rest)
            return items
        return node

    result = raw
    for path in paths:
        result = drop(result, path)
    return result


def _document_path(
    raw: Any, loc: tuple[str | int, ...], missing: bool, root: type[Table] = MobDefinition
) -> Path:
    """The path in the document named by a pydantic error location.

    The model's types are walked alongside, so union tags (which pydantic puts in locations)
    are told apart from document keys even when a key is spelled like a tag.
    """
    path: list[str | int] = []
    node = raw
    tp: Any = root
    last = len(loc) - 1
    for index, part in enumerate(loc):
        member = _tagged_member(tp, part)
        if member is not None:
            tp = member
            continue
        tp = _descend(tp, part) if tp is not None else None
        if _contains(node, part):
            node = node[part]
            path.append(part)
        elif missing and index == last:
            path.append(part)
    return tuple(path)


def _contains(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _translate(
    err: ErrorDetails, raw: dict[str, Any], root: type[Table] = MobDefinition
) -> Diagnostic:
    """A pydantic error of ``root`` (the definition, or one inline profile) as a diagnostic."""
    kind = err["type"]
    loc = tuple(err["loc"])
    value = err.get("input")
    ctx = err.get("ctx") or {}
    path = _document_path(raw, loc, missing=kind == "missing", root=root)
    name = next((p for p in reversed(path) if isinstance(p, str)), "value")
    if kind == "missing":
        return diagnostic("invalid_value", f"missing required key '{name}'", path, point="missing")
    if kind == "extra_forbidden":
        return _unknown_key(loc, path, root)
    if kind == "invalid_mcp_server":
        return diagnostic("invalid_mcp_server", err["msg"], path, point="key")
    if kind == "union_tag_invalid":
        return _bad_tag(str(ctx.get("tag", "")), str(ctx.get("expected_tags", "")), value, path)
    expected = _EXPECTED.get(kind)
    if expected is not None:
        message = f"expected {expected}, found {describe(value)}"
    elif kind == "literal_error":
        message = f"invalid value {_show(value)} for '{name}': expected {ctx.get('expected')}"
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        message = f"{_show(value)} is out of range for '{name}': must be {_BOUNDS[kind]} {bound}"
    elif kind == "invalid_value":
        message = err["msg"]
        if "word" in ctx:
            return diagnostic(
                "invalid_value", message, path, hint=f'write {{ type = "{ctx["word"]}" }}'
            )
    else:
        message = f"invalid value for '{name}': {err['msg']}"
    return diagnostic("invalid_value", message, path)


_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "none_required": "nothing",
    "json_type": "a JSON value",
}


def describe(value: object) -> str:
    """How a value reads in TOML terms, for messages ('an integer', 'a table', ...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date-time"
    if value is None:
        return "null"
    return type(value).__name__


def _show(value: object) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return "'" + text.replace("'", "\\'") + "'"
    return json.dumps(value) if isinstance(value, int | float | bool) else describe(value)


def _bad_tag(tag: str, expected: str, value: object, path: Path) -> Diagnostic:
    key, _, word = tag.partition("=")
    if word == "<not a table>":
        return diagnostic("invalid_value", f"expected a table, found {describe(value)}", path)
    if word == "<missing>":
        old = value.get("type") if isinstance(value, dict) and key == "kind" else None
        return diagnostic(
            "invalid_value",
            f"missing required key '{key}'",
            (*path, key),
            point="missing",
            hint=f'write kind = "{old}" (not type = ...)' if old is not None else None,
        )
    if word == "<not a string>":
        tag_value = value.get(key) if isinstance(value, dict) else None
        return diagnostic(
            "invalid_value", f"expected a string, found {describe(tag_value)}", (*path, key)
        )
    choices = ", ".join(part.partition("=")[2] for part in re.findall(r"'([^']*)'", expected))
    return diagnostic(
        "invalid_value", f"unknown {key} '{word}': expected one of {choices}", (*path, key)
    )


def _unknown_key(
    loc: tuple[str | int, ...], path: Path, root: type[Table] = MobDefinition
) -> Diagnostic:
    table = _model_at(loc[:-1], root)
    key = str(path[-1])
    known = sorted(table.model_fields) if table else []
    closed = bool(table and table.closed)
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    suggestion = match[0] if match else None
    where = f"[{dotted(path[:-1])}]" if len(path) > 1 else "the top level"
    message = f"unknown key '{key}' in {where}"
    if suggestion:
        message += f"; did you mean '{suggestion}'?"
    hint = None
    if len(path) > 1 and root is MobDefinition and key in MobDefinition.model_fields:
        hint = "top-level keys must come before the first [table]"
        suggestion = None
        message = f"unknown key '{key}' in {where}"
    elif closed:
        hint = "Meerkat rejects unknown keys in this table"
    severity = Severity.ERROR if closed else Severity.WARNING
    return diagnostic(
        "unknown_key",
        message,
        path,
        point="key",
        suggestion=suggestion,
        hint=hint,
        severity=severity,
    )


# --- model introspection (which table a pydantic location is in) ---------------------------


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _tagged_member(tp: Any, part: str | int) -> Any:
    """The member of a tagged union whose tag is ``part``, else None."""
    tp = _unwrap(tp)
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for member in typing.get_args(tp):
        if any(getattr(t, "tag", None) == part for t in getattr(member, "__metadata__", ())):
            return typing.get_args(member)[0]
        inner = _tagged_member(member, part) if member is not type(None) else None
        if inner is not None:
            return inner
    return None


def _descend(tp: Any, part: str | int) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(tp)
        for member in members:
            tags = getattr(member, "__metadata__", ())
            if any(getattr(t, "tag", None) == part for t in tags):
                return typing.get_args(member)[0]
        non_null = [m for m in members if m is not type(None)]
        return _descend(non_null[0], part) if len(non_null) == 1 else None
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
        info = tp.model_fields.get(part)
        return None if info is None else info.annotation
    return None


def _model_at(loc: tuple[str | int, ...], root: type[Table] = MobDefinition) -> type[Table] | None:
    tp: Any = root
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return None
    tp = _unwrap(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        non_null = [m for m in typing.get_args(tp) if m is not type(None)]
        tp = _unwrap(non_null[0]) if len(non_null) == 1 else None
    return tp if isinstance(tp, type) and issubclass(tp, Table) else None


# --- raw-document checks --------------------------------------------------------------------


def _raw_checks(document: Document) -> list[Diagnostic]:
    raw = document.raw
    found: list[Diagnostic] = []
    profiles = raw.get("profiles")
    for name, profile in profiles.items() if isinstance(profiles, dict) else ():
        if not isinstance(profile, dict):
            continue
        if "realm_profile" in profile:
            others = [k for k in profile if k != "realm_profile"]
            if others:
                found.append(
                    diagnostic(
                        "realm_profile_mixed_keys",
                        f"profile '{name}' is a realm_profile reference; its other keys are "
                        f"ignored: {', '.join(others)}",
                        ("profiles", name),
                        point="key",
                        hint="keep only realm_profile, or remove it to define the profile inline",
                    )
                )
            continue
        tools = profile.get("tools")
        if isinstance(tools, dict) and "mob_tasks" in tools:
            found.append(
                diagnostic(
                    "deprecated_key",
                    "'mob_tasks' is a meerkat-mob 0.5.x tool flag",
                    ("profiles", name, "tools", "mob_tasks"),
                    point="key",
                    hint="removed after meerkat-mob 0.5.x; has no effect",
                )
            )
    if "mcp" in raw:
        found.append(
            diagnostic(
                "deprecated_key",
                "top-level MCP servers are a meerkat-mob 0.5.x feature",
                ("mcp",),
                point="key",
                location="mcp_servers" if document.format == "json" else "mcp",
                hint="newer Meerkat uses profiles.<p>.tools.mcp_servers",
            )
        )
    json_form = document.format == "json"
    for key in JSON_ONLY_KEYS:
        if key not in raw:
            continue
        if not json_form:
            found.append(
                diagnostic(
                    "unknown_key",
                    f"unknown key '{key}' in the top level",
                    (key,),
                    point="key",
                    hint="this key exists only in Meerkat's JSON form",
                )
            )
        elif key in _LEGACY_JSON_KEYS:
            what, hint = _LEGACY_JSON_KEYS[key]
            found.append(
                diagnostic("deprecated_key", f"'{key}' is {what}", (key,), point="key", hint=hint)
            )
    found += _stale_loop_syntax(raw)
    return found


def _stale_loop_syntax(raw: dict[str, Any]) -> list[Diagnostic]:
    """``type = "repeat_until"`` with ``until = "all_pass"`` (old Meerkat docs): say both."""
    found = []
    flows = raw.get("flows")
    pending: list[tuple[Any, Path]] = [
        (flow.get("root"), ("flows", flow_id, "root"))
        for flow_id, flow in (flows.items() if isinstance(flows, dict) else ())
        if isinstance(flow, dict)
    ]
    while pending:
        frame, path = pending.pop()
        nodes = frame.get("nodes") if isinstance(frame, dict) else None
        for node_id, node in nodes.items() if isinstance(nodes, dict) else ():
            if not isinstance(node, dict):
                continue
            base = (*path, "nodes", node_id)
            if "kind" not in node and "until" in node and not isinstance(node["until"], dict):
                found.append(
                    diagnostic(
                        "invalid_value",
                        f'expected a condition table such as {{ op = "eq", path = ..., '
                        f"value = ... }}, found {describe(node['until'])}",
                        (*base, "until"),
                    )
                )
            pending.append((node.get("body"), (*base, "body")))
    return found


def _raw_at(raw: Any, path: Path) -> Any:
    node = raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node
