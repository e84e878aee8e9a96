"""``mobctl test``: run flow test suites (``*.test.toml``) and report as CI systems read it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mobctl.cli.common import (
    allow_path_option,
    driver_config,
    open_store,
    timeout_option,
)
from mobctl.cli.help import App
from mobctl.cli.output import REPORT, TEXT, json_option, structured
from mobctl.cli.terminal import printable, say
from mobctl.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from mobctl.suites.loading import Loaded, PreparedCase
    from mobctl.suites.runner import CaseResult

commands = App()  # gathered by mobctl.cli.app


@commands.command("test")
def run_suites(
    paths: list[str] = typer.Argument(
        None,
        metavar="PATH",
        help="Suite files, directories (their *.test.toml) or globs (default: .).",
    ),
    keyword: str | None = typer.Option(
        None,
        "-k",
        "--keyword",
        metavar="EXPR",
        help='Only cases whose name matches: "quorum and not retry".',
    ),
    jobs: int | None = typer.Option(
        None, "-j", "--jobs", metavar="N", min=1, help="Cases run at once (default: cores)."
    ),
    output: str = REPORT.option(),
    as_json: bool = json_option(),
    fmt: str = typer.Option(
        "text", "--format", metavar="FORMAT", help="text, or github (::error annotations too)."
    ),
    junit: Path | None = typer.Option(
        None, "--junit", metavar="FILE", help="Write a JUnit XML report to FILE."
    ),
    update: bool = typer.Option(
        False, "--update", help="Rewrite failing eq output assertions with the actual values."
    ),
    record: bool = typer.Option(
        False, "--record", help="Record every replay: cassette anew with its fallback (llm)."
    ),
    allow_command: bool = typer.Option(
        False, "--allow-command", help="Let suites use command: drivers (they run programs)."
    ),
    allow_path: list[Path] = allow_path_option(),
    store: Path | None = typer.Option(
        None,
        "--store",
        envvar="MOBCTL_STORE",
        metavar="PATH",
        readable=False,
        help="Where mobs a case names by id are copied from (only read; default: "
        "$MOBCTL_STORE, else ./.mobctl). Each case runs in a temporary store of its own.",
    ),
    lock_timeout: float = timeout_option(),
) -> None:
    """Run flow tests (*.test.toml) and check what each run did.

    Each case runs its flow in a temporary store of its own. Exit 0 all passed, 1 a case
    failed, 2 usage or an invalid suite.

    Examples:

      mobctl test sample-mobs/tests

      mobctl test sample-mobs/tests -k "quorum and not retry" --junit build/t.xml

      mobctl test sample-mobs/tests --format github
    """
    from mobctl.api.definitions import allowed_roots
    from mobctl.cli.parsing import parse_duration_ms
    from mobctl.suites.loading import Rules, load_suites

    output = REPORT.choose(output, as_json)
    if fmt not in ("text", "github"):
        raise UsageError(
            f"--format {printable(fmt)!r} is not a report format", hint="use text or github"
        )
    roots = allowed_roots(allow_path)
    rules = Rules(
        (Path.cwd(), *roots), lambda text: parse_duration_ms(text, "timeout"), allow_command
    )
    loaded = load_suites(paths or ["."], rules)
    for link in loaded.skipped_links:
        say(f"warning: skipped '{link}': a symbolic link is not followed", err=True)
    _refuse_invalid(loaded, output, fmt)
    cases = _selected(loaded, keyword)
    results = _run(cases, jobs, record, roots, store, lock_timeout, output, fmt, update, junit)
    raise typer.Exit(int(ExitCode.INVALID if any(r.outcome == "failed" for r in results) else 0))


def _refuse_invalid(loaded: Loaded, output: str, fmt: str) -> None:
    from mobctl.cli.diagnostics_output import diagnostic_record, github_line, text_line
    from mobctl.suites.loading import InvalidSuite

    if not loaded.diagnostics:
        return
    invalid = {
        "version": 1,
        "cases": [],
        "diagnostics": list(map(diagnostic_record, loaded.diagnostics)),
    }
    if not structured(invalid, output):
        line = github_line if fmt == "github" else text_line
        sys.stdout.write("".join(line(d) + "\n" for d in loaded.diagnostics))
    files = len({d.file for d in loaded.diagnostics})
    raise InvalidSuite(f"{len(loaded.diagnostics)} error(s) in {files} suite file(s); no case ran")


def _selected(loaded: Loaded, keyword: str | None) -> list[PreparedCase]:
    from mobctl.errors import PathNotFoundError
    from mobctl.suites.keywords import keyword_matcher

    if not loaded.cases:
        raise PathNotFoundError("no suite file (*.test.toml) with a case was found")
    if keyword is None:
        return loaded.cases
    matches = keyword_matcher(keyword)
    chosen = [case for case in loaded.cases if matches(case.name)]
    if not chosen:
        raise UsageError(f"no case matches -k {keyword!r} ({len(loaded.cases)} case(s) found)")
    return chosen


def _run(
    cases: list[PreparedCase],
    jobs: int | None,
    record: bool,
    roots: tuple[Path, ...],
    store: Path | None,
    lock_timeout: float,
    output: str,
    fmt: str,
    update: bool,
    junit: Path | None,
) -> list[CaseResult]:
    """Run the cases (each in a temporary store), streaming the text report unless --update
    must rewrite first; then --update, --junit, -o json and the closing line."""
    from mobctl.cli.junit_output import junit_xml
    from mobctl.cli.suite_output import closing_line, document, updated_line
    from mobctl.suites.runner import Setup, run_cases
    from mobctl.suites.update import Updated, apply_updates

    started = datetime.now(UTC)
    streaming = output == TEXT and not update
    with tempfile.TemporaryDirectory(prefix="mobctl-test-") as workdir:
        setup = Setup(
            # a case's store is thrown away: syncing it to the disk would only slow it down
            open_store=lambda path: open_store(path, lock_timeout, durable=False),
            workdir=Path(workdir),
            config=driver_config(rerecord=record),
            source=lambda: open_store(store, lock_timeout),
            allow_paths=roots,
        )
        results = _interruptible(
            lambda: run_cases(
                cases,
                setup,
                jobs=jobs or os.cpu_count() or 1,
                on_result=(lambda r: _show(r, fmt)) if streaming else None,
            ),
            setup.cancel,
        )
    updates: list[Updated] = []
    if update:
        results, updates = apply_updates(results)
    if junit is not None:
        from mobctl.api.definitions import write_output

        with contextlib.suppress(OSError):  # write_output says why it cannot be written
            junit.parent.mkdir(parents=True, exist_ok=True)  # as pytest's --junitxml does
        write_output(junit, junit_xml(results, started))
    if structured(document(results, updates), output):
        return results
    if not streaming:
        for result in results:
            _show(result, fmt)
    for change in updates:
        say(updated_line(change))
    say(closing_line(results))
    return results


def _show(result: CaseResult, fmt: str) -> None:
    from mobctl.cli.suite_output import case_lines, github_lines

    lines = case_lines(result) + (github_lines(result) if fmt == "github" else [])
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


def _interruptible(
    work: Callable[[], list[CaseResult]], cancel: threading.Event
) -> list[CaseResult]:
    """Ctrl-C / SIGTERM cancel every running case cleanly; then exit 130."""
    interrupted: list[int] = []

    def on_signal(number: int, frame: object) -> None:
        interrupted.append(number)
        cancel.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        results = work()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if interrupted:
        say("interrupted: the running cases were canceled", err=True)
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    return results
