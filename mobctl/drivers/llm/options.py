"""``--driver llm[:OPTION=VALUE,...]``: the options a run gives the llm driver.

``model=NAME`` replaces every profile's model (cheap CI runs; the provider stays the
profile's), ``max_tool_rounds=N`` bounds the model's tool calls per turn (default 16).
Credentials never come from here: driver specs are recorded in run snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobctl.drivers.base import DriverError

MAX_TOOL_ROUNDS = 16
HINT = "use llm, llm:model=NAME or llm:max_tool_rounds=N (options joined by ',')"


@dataclass(frozen=True)
class LlmOptions:
    model: str | None = None
    max_tool_rounds: int = MAX_TOOL_ROUNDS


def parse_options(argument: str) -> LlmOptions:
    """The options after ``llm:`` (empty for plain ``llm``)."""
    model: str | None = None
    rounds = MAX_TOOL_ROUNDS
    for item in filter(None, (part.strip() for part in argument.split(","))):
        key, equals, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not value:
            raise DriverError(f"invalid llm driver option {item!r}: expected KEY=VALUE", hint=HINT)
        if key == "model":
            model = value
        elif key == "max_tool_rounds":
            if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 1000:
                raise DriverError(
                    f"invalid llm driver option {item!r}: max_tool_rounds must be an integer "
                    "from 1 to 1000",
                    hint=HINT,
                )
            rounds = int(value)
        else:
            raise DriverError(f"unknown llm driver option {key!r}", hint=HINT)
    return LlmOptions(model, rounds)
