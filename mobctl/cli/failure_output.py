"""Why a run did not complete, for people: the run's reason and each failed step with its member
and whole reason, wrapped to the terminal (never cut), under labels in a column of their own.

Shown by ``runs show`` and at the end of ``mobctl run`` / ``runs resume``; the reasons come
from agents and the store, so their control characters are escaped.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import TYPE_CHECKING

from mobctl.cli.terminal import printable

if TYPE_CHECKING:
    from mobctl.api.failures import Failure

LABEL = 10  # "reason    ", as the other fields of `runs show`


def failure_lines(failure: Failure, width: int | None = None) -> list[str]:
    """``reason    <the run's reason>`` and ``failed    step S on MEMBER: <reason>`` lines,
    each wrapped at ``width`` (default: the terminal's, else 80) under its text."""
    width = width or shutil.get_terminal_size((80, 24)).columns
    lines = []
    if failure.reason:
        lines += _labelled("reason", failure.reason, width)
    for step in failure.steps:
        where = f"step {step.step_id}" + (f" on {step.member}" if step.member else "")
        lines += _labelled("failed", f"{where}: {step.reason}", width)
    return lines


def _labelled(label: str, text: str, width: int) -> list[str]:
    return textwrap.wrap(
        printable(text),
        width=max(width, LABEL + 20),
        initial_indent=label.ljust(LABEL),
        subsequent_indent=" " * LABEL,
        break_on_hyphens=False,
    )
