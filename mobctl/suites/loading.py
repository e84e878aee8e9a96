"""Finding, reading and checking suite files: every problem a located diagnostic
(``file:line:col``, as ``validate`` reports definitions), every path checked before a run.

A suite may come from a pull request, so the paths it names (definitions, fixtures, cassette
directories, realm profiles, schemas) are relative to the suite file and must stay inside the
current directory or an ``--allow-path`` root (``path_outside_suite``), and it runs no program
(``command:``) unless ``--allow-command`` says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import regex
from pydantic import ValidationError

from mobctl.api.definitions import expand_paths
from mobctl.api.running import names_a_file
from mobctl.definition.files import DefinitionFiles, PathOutsideDefinition, read_regular
from mobctl.definition.loader import parse_document
from mobctl.definition.positions import Position, SourceMap, toml_source_map
from mobctl.definition.references import Unparsable, parse_reference
from mobctl.definition.schemas import outside_refs, schema_validator
from mobctl.diagnostics import Diagnostic, Severity, dotted
from mobctl.drivers.registry import KINDS, KINDS_HINT, split_role
from mobctl.errors import MobctlError, UsageError
from mobctl.ids import is_slug
from mobctl.suites.model import Case, Suite

SUFFIX = ".test.toml"
DocPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Rules:
    """What the person running allows a suite: the roots its paths may lead into (the current
    directory and ``--allow-path`` directories), programs (``--allow-command``), and how a
    duration (``timeout = "30s"``) is read (the CLI's own rule)."""

    roots: tuple[Path, ...]
    parse_duration: Callable[[str], int]
    allow_command: bool = False


@dataclass(frozen=True)
class SuiteFile:
    path: Path  # resolved
    shown: str  # as named on the command line
    text: str
    source: SourceMap

    def position(self, where: DocPath, *, key: bool = False) -> Position:
        """Where ``where`` is written: its key, or its value; a value the file does not spell
        out (``order = [...]`` for ``order.exact``) is found at its nearest written parent."""
        if key:
            return self.source.key(where)
        source = self.source
        while len(where) > 1 and where not in source.values and where not in source.keys:
            where = where[:-1]
        return source.value(where)


@dataclass(frozen=True)
class PreparedCase:
    """A case with every path it names checked and resolved."""

    suite: SuiteFile
    index: int
    case: Case
    mob: str  # an absolute definition path, or a registered mob id
    mob_is_file: bool
    drivers: list[str]
    realm_profiles: dict[str, Path]
    timeout_ms: int | None
    schemas: dict[int, Any]  # output assertion index -> its JSON Schema

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def where(self) -> DocPath:
        return ("case", self.index)

    @property
    def line(self) -> int:
        return self.suite.position(self.where, key=True).line


@dataclass
class Loaded:
    cases: list[PreparedCase] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    skipped_links: list[str] = field(default_factory=list)
    files: int = 0


def is_suite(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def load_suites(arguments: list[str], rules: Rules) -> Loaded:
    """Every suite the arguments name (files, directories: their ``*.test.toml``, globs), each
    checked; a bad file never stops the others."""
    found = expand_paths(arguments, is_suite)
    loaded = Loaded(skipped_links=found.skipped_links, files=len(found.files))
    for path, shown in found.files.items():
        _Reader(path, shown, rules, loaded).read()
    return loaded


class _Reader:
    def __init__(self, path: Path, shown: str, rules: Rules, loaded: Loaded) -> None:
        self.path, self.shown, self.rules, self.loaded = path, shown, rules, loaded
        self.files = DefinitionFiles(path.parent, rules.roots)
        self.suite: SuiteFile | None = None
        self.problems: list[Diagnostic] = []

    def read(self) -> None:
        try:
            text = read_regular(self.path).decode("utf-8").removeprefix("\ufeff")
        except (OSError, UnicodeDecodeError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
            self.loaded.diagnostics.append(_syntax(self.shown, f"cannot read file: {detail}"))
            return
        parsed = parse_document(text, "toml", self.shown)
        if isinstance(parsed, Diagnostic):
            self.loaded.diagnostics.append(parsed)
            return
        self.suite = SuiteFile(self.path, self.shown, text, toml_source_map(text))
        try:
            model = Suite.model_validate(parsed)
        except ValidationError as exc:
            for error in exc.errors():
                self._shape(error)
        else:
            cases = [self._prepare(i, case) for i, case in enumerate(model.case)]
            self._duplicates(model)
            if not self.problems:
                self.loaded.cases += [c for c in cases if c is not None]
        self.loaded.diagnostics += self.problems

    # --- diagnostics ----------------------------------------------------------------------

    def problem(
        self,
        code: str,
        message: str,
        where: DocPath,
        point: Literal["key", "value"] = "value",
        hint: str | None = None,
    ) -> None:
        assert self.suite is not None
        position = self.suite.position(where, key=point == "key")
        self.problems.append(
            Diagnostic(
                code=code,
                severity=Severity.ERROR,
                message=message,
                location=dotted(where) or None,
                path=where,
                point=point,
                file=self.shown,
                line=position.line,
                column=position.column,
                end_line=position.end_line,
                end_column=position.end_column,
                hint=hint,
            )
        )

    def _shape(self, error: Any) -> None:
        where: DocPath = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            self.problem("unknown_key", f"unknown key '{where[-1]}'", where, "key")
        elif error["type"] == "missing":
            self.problem("invalid_value", f"missing required key '{where[-1]}'", where[:-1])
        else:
            self.problem("invalid_value", error["msg"].removeprefix("Value error, "), where)

    def _duplicates(self, model: Suite) -> None:
        seen: set[str] = set()
        for index, case in enumerate(model.case):
            if case.name in seen:
                self.problem(
                    "duplicate_case",
                    f"a case named '{case.name}' comes earlier in this suite",
                    ("case", index, "name"),
                )
            seen.add(case.name)

    # --- a case's paths -------------------------------------------------------------------

    def _prepare(self, index: int, case: Case) -> PreparedCase | None:
        assert self.suite is not None
        at: DocPath = ("case", index)
        before = len(self.problems)
        mob = case.mob
        mob_is_file = names_a_file(mob)
        if mob_is_file:
            located = self.locate(mob, (*at, "mob"), "file")
            mob = str(located) if located else mob
        elif not is_slug(mob):
            self.problem(
                "invalid_value", f"'{mob}' is neither a definition file nor a mob id", (*at, "mob")
            )
        drivers = [self.driver(spec, (*at, "drivers", i)) for i, spec in enumerate(case.drivers)]
        profiles = {}
        for name, file in case.realm_profiles.items():
            if is_slug(name):
                profiles[name] = self.locate(file, (*at, "realm_profiles", name), "file")
            else:  # it names a file in the case's store
                self.problem(
                    "invalid_value",
                    f"'{name}' cannot name a realm profile (letters, digits, '.', '_', '-')",
                    (*at, "realm_profiles", name),
                    "key",
                )
        timeout_ms = None
        if case.timeout is not None:
            try:
                timeout_ms = self.rules.parse_duration(case.timeout)
            except MobctlError as exc:
                self.problem("invalid_value", exc.message, (*at, "timeout"), hint=exc.hint)
        schemas: dict[int, Any] = {}
        for i, check in enumerate(case.expect.output):
            reference = parse_reference(check.path)
            if isinstance(reference, Unparsable):
                self.problem(
                    "invalid_value",
                    f"'{check.path}' is not a flow path ({reference.describe()})",
                    (*at, "expect", "output", i, "path"),
                    hint="steps.STEP[.KEY...], params[.KEY...] or "
                    "loops.LOOP.iterations.N.steps.STEP[.KEY...]",
                )
            where = (*at, "expect", "output", i, "value")
            if check.op == "matches":
                self.pattern(str(check.value), where)
            elif check.op == "schema":
                schema = self.schema(check.value, where)
                if schema is not None:
                    schemas[i] = schema
        if len(self.problems) > before:
            return None
        return PreparedCase(
            self.suite,
            index,
            case,
            mob,
            mob_is_file,
            [d for d in drivers if d is not None],
            {name: path for name, path in profiles.items() if path is not None},
            timeout_ms,
            schemas,
        )

    def locate(
        self, name: str, where: DocPath, kind: Literal["file", "directory"] | None
    ) -> Path | None:
        """The path ``name`` names, relative to the suite, if it stays inside a root (and is a
        file, when ``kind`` says so)."""
        try:
            target = self.files.locate(name)
        except PathOutsideDefinition:
            self.problem(
                "path_outside_suite",
                f"path '{name}' leads outside the suite's directory, the current directory "
                "and every --allow-path root",
                where,
                hint="a suite names files inside the directory mobctl test runs in; "
                "--allow-path DIR trusts another one",
            )
            return None
        except (OSError, ValueError):
            target = None
        if target is None or (kind == "file" and not target.is_file()):
            self.problem("path_not_found", f"no file '{name}' (relative to the suite)", where)
            return None
        return target

    def driver(self, spec: str, where: DocPath) -> str | None:
        """The spec with the paths it names resolved (``scripted:FILE``, ``replay:DIR``, a
        fallback's), or None when it is refused."""
        role, body = split_role(spec)
        kind, _, argument = body.partition(":")
        if kind not in KINDS:
            self.problem("invalid_driver", f"unknown driver kind '{kind}'", where, hint=KINDS_HINT)
            return None
        if kind == "command" and not self.rules.allow_command:
            self.problem(
                "invalid_driver",
                "a suite runs no program (command:) unless mobctl test is given --allow-command",
                where,
            )
            return None
        if kind == "scripted":
            located = self.locate(argument, where, "file")
            body = f"scripted:{located}" if located else ""
        elif kind == "replay":
            directory, has_fallback, fallback = argument.partition(",fallback=")
            located = self.locate(directory, where, None)
            resolved = self.driver(fallback, where) if has_fallback else ""
            if located is None or resolved is None:
                return None
            body = f"replay:{located}" + (f",fallback={resolved}" if has_fallback else "")
        if not body:
            return None
        return f"{role}={body}" if role else body

    def pattern(self, text: str, where: DocPath) -> None:
        try:
            regex.compile(text)
        except regex.error as exc:
            self.problem("invalid_regex", f"not a regular expression: {exc}", where)
        except (RecursionError, OverflowError):  # groups nested thousands deep
            self.problem("invalid_regex", "the regular expression is nested too deep", where)

    def schema(self, value: Any, where: DocPath) -> Any:
        if isinstance(value, str):
            located = self.locate(value, where, "file")
            if located is None:
                return None
            try:
                value = json.loads(self.files.read_text(value))
            except (OSError, ValueError) as exc:
                self.problem("invalid_schema", f"cannot read schema '{value}': {exc}", where)
                return None
        try:
            schema_validator(value).check_schema(value)
        except Exception as exc:  # jsonschema's SchemaError, or a non-schema value
            self.problem("invalid_schema", f"not a JSON Schema: {_first_line(exc)}", where)
            return None
        if outside_refs(value):
            self.problem(
                "invalid_schema",
                "the schema has a $ref outside itself (never read or fetched)",
                where,
            )
            return None
        return value


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "message", exc)).splitlines()[0]


def _syntax(shown: str, message: str) -> Diagnostic:
    return Diagnostic("toml_syntax", Severity.ERROR, message, None, file=shown)


class InvalidSuite(UsageError):
    """A suite file has errors (its diagnostics are printed); no case ran."""

    code = "invalid_suite"
