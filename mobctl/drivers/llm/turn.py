"""One llm turn: ask the model, run the tools it calls (up to ``max_tool_rounds`` rounds),
check structured output and repair it (up to 2 repair turns)."""

from __future__ import annotations

import time

from mobctl.drivers.base import Completed, Failed
from mobctl.drivers.llm import structured
from mobctl.drivers.llm.conversation import Conversation, Reply, ToolSpec
from mobctl.drivers.llm.retry import Attempt, with_retries
from mobctl.drivers.llm.tools import Toolbox
from mobctl.drivers.llm.transcript import Transcript


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


async def run_turn(
    conversation: Conversation,
    *,
    toolbox: Toolbox,
    offered: list[ToolSpec],
    json_wanted: bool,
    schema: dict[str, object] | None,
    deadline: float,
    call_timeout: float | None,
    max_tool_rounds: int,
    transcript: Transcript,
) -> Completed | Failed:
    """The turn's outcome, without its transcript (the caller finishes it)."""
    rounds = repairs = 0
    while True:
        reply = await _ask(conversation, deadline, call_timeout, transcript)
        if reply.tool_calls:
            if rounds == max_tool_rounds:
                return Failed(
                    f"the model still called tools after max_tool_rounds={max_tool_rounds} "
                    "rounds; the turn stops here (raise it with --driver "
                    "llm:max_tool_rounds=N)",
                    usage=transcript.usage,
                )
            rounds += 1
            results = []
            for call in reply.tool_calls:
                started = time.monotonic()
                result = await toolbox.call(call, offered, deadline)
                transcript.tool_result(result, _ms(started))
                results.append(result)
            conversation.add_tool_results(results)
            continue
        if not json_wanted:
            return Completed(reply.text, usage=transcript.usage)
        value, problem = structured.check(reply.text, schema)
        if problem is None:
            return Completed(reply.text, structured_output=value, usage=transcript.usage)
        if repairs == structured.MAX_REPAIRS:
            return Failed(
                f"structured output still invalid after {structured.MAX_REPAIRS} repair turns: "
                f"{problem}",
                usage=transcript.usage,
            )
        repairs += 1
        prompt = structured.repair_prompt(problem)
        transcript.user(prompt, purpose="repair")
        conversation.add_user(prompt)


async def _ask(
    conversation: Conversation, deadline: float, call_timeout: float | None, transcript: Transcript
) -> Reply:
    retries: list[Attempt] = []
    started = time.monotonic()
    try:
        reply = await with_retries(
            conversation.ask, deadline=deadline, call_timeout=call_timeout, attempts=retries
        )
    except Exception as exc:
        transcript.failed_call(str(exc), _ms(started), retries)
        raise
    transcript.model_call(reply, _ms(started), retries)
    return reply
