"""``mobctl test --junit FILE``: JUnit XML as GitHub, GitLab, Jenkins and Buildkite read it.

One ``<testsuite>`` per suite file, one ``<testcase>`` per case (``classname`` the suite,
``name`` the case, ``file`` and ``line`` where it is, ``time`` in seconds); a failed case has a
``<failure>`` (its expectations) or, when it could not run as written, an ``<error>``; a
skipped one a ``<skipped>``. Text is escaped for a terminal first, so no control character
(which XML 1.0 cannot hold) reaches the file, and so are U+FFFE and U+FFFF, which XML 1.0
cannot hold either.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mobctl.cli.suite_output import case_lines
from mobctl.cli.terminal import printable

if TYPE_CHECKING:
    from mobctl.suites.runner import CaseResult

_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")  # left by printable(), refused by XML 1.0


def _xml(text: str, *, keep_newlines: bool = False) -> str:
    escaped = printable(text, keep_newlines=keep_newlines)
    return _NOT_XML.sub(lambda found: f"\\u{ord(found[0]):04x}", escaped)


def junit_xml(results: list[CaseResult], started: datetime) -> str:
    root = ET.Element("testsuites", name="mobctl test")
    suites: dict[str, list[CaseResult]] = {}
    for result in results:
        suites.setdefault(result.case.suite.shown, []).append(result)
    for shown, cases in suites.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_xml(shown),
            tests=str(len(cases)),
            failures=str(sum(r.outcome == "failed" and r.error is None for r in cases)),
            errors=str(sum(r.error is not None for r in cases)),
            skipped=str(sum(r.outcome == "skipped" for r in cases)),
            time=_seconds(sum(r.duration_ms for r in cases)),
            timestamp=started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            hostname=_xml(socket.gethostname()),
        )
        for result in cases:
            _case(suite, result)
    _totals(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _case(suite: ET.Element, result: CaseResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_xml(result.case.suite.shown),
        name=_xml(result.case.name),
        file=_xml(result.case.suite.shown),
        line=str(result.case.line),
        time=_seconds(result.duration_ms),
    )
    report = "\n".join(case_lines(result)[1:])
    if result.outcome == "skipped":
        ET.SubElement(case, "skipped", message=_xml(result.case.case.skip or ""))
    elif result.error is not None:
        error = ET.SubElement(
            case, "error", message=_xml(result.error.message), type=result.error.code
        )
        error.text = _xml(report, keep_newlines=True)
    elif result.outcome == "failed":
        count = len(result.failures) + len(result.stale)
        first = result.failures[0].message if result.failures else "stale cassette"
        message = first if count == 1 else f"{count} expectations failed; the first: {first}"
        failure = ET.SubElement(case, "failure", message=_xml(message), type="expectation")
        failure.text = _xml(report, keep_newlines=True)


def _totals(root: ET.Element) -> None:
    for name in ("tests", "failures", "errors", "skipped"):
        root.set(name, str(sum(int(s.get(name, "0")) for s in root)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in root):.3f}")


def _seconds(milliseconds: float) -> str:
    return f"{milliseconds / 1000:.3f}"
