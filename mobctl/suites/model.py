"""The suite file format: ``[[case]]`` tables, each a run and what it expects of it.

```toml
[[case]]
name = "quorum holds with one abstention"
mob = "../code-review.toml"          # a definition file (relative to the suite) or a mob id
flow = "main"
params = { change = "PR-1" }
drivers = ["scripted:../fixtures/code-review.toml"]
members = { reviewer = 3 }           # spawned before the run
timeout = "30s"

[case.expect]
status = "completed"
steps = { review = "completed", publish = "skipped" }

[[case.expect.output]]
path = "steps.merge.verdict"
op = "eq"
value = "approve"
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, model_validator

RunStatus = Literal["pending", "running", "completed", "failed", "canceled"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped", "canceled"]
Op = Literal["eq", "ne", "in", "gt", "lt", "exists", "absent", "matches", "schema"]
VALUE_OPS = frozenset({"eq", "ne", "gt", "lt", "matches", "schema"})
Count = Annotated[int, Field(ge=0)]


class _Closed(BaseModel):
    """A table whose keys are all known (a misspelt expectation must not pass unnoticed)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _exact(value: Any) -> Any:
    """A plain list means the exact sequence."""
    return {"exact": value} if isinstance(value, list) else value


class OrderExpect(_Closed):
    """The steps in the order they completed (``step_completed``), exactly or as a
    subsequence."""

    exact: list[str] | None = None
    subsequence: list[str] | None = None


class EventsExpect(_Closed):
    """The run's event types: exactly, as a subsequence, and types (globs) it never has."""

    exact: list[str] | None = None
    subsequence: list[str] | None = None
    never: list[str] | None = None


class OutputAssertion(_Closed):
    """A value of the run, read with a flow path (``steps.merge.verdict``, ``params.x``,
    ``loops.rounds.iterations.0.steps.draft``), judged with a flow condition operator
    (``eq``, ``ne``, ``in``, ``gt``, ``lt``), ``exists`` / ``absent``, ``matches`` (a regular
    expression searched in a string) or ``schema`` (a JSON Schema, inline or a file)."""

    path: str
    op: Op
    value: JsonValue = None
    values: list[JsonValue] | None = None

    @model_validator(mode="after")
    def _operands(self) -> OutputAssertion:
        if self.op in VALUE_OPS and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        if self.op not in VALUE_OPS and self.value is not None:
            raise ValueError(f"op '{self.op}' takes no value")
        if (self.op == "in") != (self.values is not None):
            raise ValueError("op 'in' needs values (and only 'in' takes them)")
        if self.op == "matches" and not isinstance(self.value, str):
            raise ValueError("op 'matches' needs a regular expression (a string) as its value")
        if self.op == "schema" and not isinstance(self.value, str | dict):
            raise ValueError("op 'schema' needs a JSON Schema (a table) or a file name as value")
        return self


class Expect(_Closed):
    status: RunStatus | None = None
    cause: str | None = None
    steps: dict[str, StepStatus] = Field(default_factory=dict)
    order: Annotated[OrderExpect | None, BeforeValidator(_exact)] = None
    dispatches: dict[str, Count] = Field(default_factory=dict)
    retries: dict[str, Count] = Field(default_factory=dict)
    events: Annotated[EventsExpect | None, BeforeValidator(_exact)] = None
    loops: dict[str, Count] = Field(default_factory=dict)
    output: list[OutputAssertion] = Field(default_factory=list)


class Case(_Closed):
    name: str = Field(min_length=1)
    mob: str = Field(min_length=1)
    flow: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    drivers: list[str] = Field(default_factory=list)
    timeout: str | None = None
    members: dict[str, Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=dict)
    realm_profiles: dict[str, str] = Field(default_factory=dict)
    skip: str | None = None
    expect: Expect = Field(default_factory=Expect)


class Suite(_Closed):
    case: list[Case] = Field(min_length=1)
