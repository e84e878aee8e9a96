"""A small mob whose run has every behaviour an expectation reads (a retry, a JSON output, a
condition, a loop that stops), and a helper that writes a suite beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

MOB = """
[mob]
id = "t"

[profiles.w]
model = "claude-sonnet-4-6"

[flows.main.steps.a]
role = "w"
message = "A {{ params.x }}"
dispatch_mode = "one_to_one"
collection_policy = { type = "any" }

[flows.main.steps.b]
role = "w"
message = "B after {{ steps.a }}"
depends_on = ["a"]
dispatch_mode = "one_to_one"
collection_policy = { type = "any" }
expected_schema_ref = '{"type": "object"}'

[flows.main.steps.c]
role = "w"
message = "C"
depends_on = ["b"]
condition = { op = "eq", path = "params.run_c", value = true }

[flows.main.steps.d]
role = "w"
message = "D"
dispatch_mode = "one_to_one"
collection_policy = { type = "any" }
expected_schema_ref = '{"type": "object"}'

[flows.main.root.nodes.a]
kind = "step"
step_id = "a"
depends_on = []
depends_on_mode = "all"

[flows.main.root.nodes.b]
kind = "step"
step_id = "b"
depends_on_mode = "all"
depends_on = ["a"]

[flows.main.root.nodes.c]
kind = "step"
step_id = "c"
depends_on_mode = "all"
depends_on = ["b"]

[flows.main.root.nodes.rounds]
kind = "repeat_until"
loop_id = "rounds"
depends_on = ["b"]
depends_on_mode = "all"
max_iterations = 3
until = { op = "eq", path = "steps.d.done", value = true }

[flows.main.root.nodes.rounds.body.nodes.d]
kind = "step"
step_id = "d"
depends_on = []
depends_on_mode = "all"

[limits]
max_step_retries = 1
"""

FIXTURES = """
[[reply]]
step = "a"
attempt = 1
fail = "flaky"

[[reply]]
step = "a"
output = "alpha"

[[reply]]
step = "b"
json = { n = 3, word = "bravo" }

[[reply]]
step = "d"
iteration = 0
json = { done = false }

[[reply]]
step = "d"
json = { done = true }
"""

CASE = """
[[case]]
name = "the case"
mob = "mob.toml"
params = { x = 1, run_c = false }
drivers = ["scripted:fixtures.toml"]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with mob.toml and fixtures.toml, and the current directory (a suite's
    paths must stay inside it)."""
    (tmp_path / "mob.toml").write_text(MOB)
    (tmp_path / "fixtures.toml").write_text(FIXTURES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_suite(project: Path, expect: str, *, case: str = CASE, name: str = "t.test.toml") -> Path:
    """A suite of one case (``case``) with ``expect`` after it (``[case.expect]`` tables)."""
    path = project / name
    path.write_text(case.lstrip() + "\n" + expect.lstrip())
    return path
