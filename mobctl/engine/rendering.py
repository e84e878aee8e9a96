"""Rendering message templates against a context (flow-semantics §9)."""

from __future__ import annotations

import json
from typing import Any

from mobctl.definition.model import ContentBlock, TextBlock
from mobctl.definition.templates import Placeholder, TemplateSyntaxError, parse_template
from mobctl.engine.context import Absent, Context, Fault, resolve


class RenderError(Exception):
    """Step-local: the message cannot be rendered."""

    def message(self, step: str) -> str:
        return f"template render failed for step '{step}': {self.args[0]}"


def render_value(value: Any) -> str:
    """A string raw; anything else compact JSON, keys sorted, non-ASCII unescaped."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def render_text(template: str, context: Context) -> str:
    try:
        parts = parse_template(template)
    except TemplateSyntaxError as exc:
        raise RenderError(str(exc)) from exc
    out = []
    for part in parts:
        if not isinstance(part, Placeholder):
            out.append(part)
            continue
        resolution = resolve(part.expression, context)
        if isinstance(resolution, Fault):
            raise RenderError(resolution.detail)
        out.append("null" if isinstance(resolution, Absent) else render_value(resolution.value))
    return "".join(out)


def render_message(message: str | list[ContentBlock], context: Context) -> str | list[ContentBlock]:
    """The rendered message: a string, or blocks with every text block rendered."""
    if isinstance(message, str):
        return render_text(message, context)
    return [
        block.model_copy(update={"text": render_text(block.text, context)})
        if isinstance(block, TextBlock)
        else block
        for block in message
    ]
