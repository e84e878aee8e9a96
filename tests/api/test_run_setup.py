"""What a run does before anything is written (profiles resolved, drivers' preflight), and
what the llm driver gets and gives back through a real run: the fake provider server, the
real SDK, the real CLI (in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobctl.store.directory.store import DirectoryStore
from tests.conftest import cli
from tests.fakes.provider_server import FakeProvider, Text

MOB = """
[mob]
id = "m"

[skills.facts]
source = "inline"
content = "Cite sources."

[skills.style]
source = "path"
path = "style.md"

[profiles.writer]
model = "claude-haiku-4-5"
skills = ["style", "facts"]
runtime_mode = "turn_driven"
provider_params = { max_output_tokens = 900 }
output_schema = { type = "object" }

[profiles.writer.tools]
comms = true

[flows.main.steps.draft]
role = "writer"
message = "Write about {{ params.topic }}."
output_format = "json"
collection_policy = { type = "any" }
expected_schema_ref = '{"type": "object", "required": ["title"]}'
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    server = FakeProvider()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    yield server
    server.close()


@pytest.fixture
def mob(tmp_path: Path) -> Path:
    (tmp_path / "style.md").write_text("Be brief.")
    path = tmp_path / "mob.toml"
    path.write_text(MOB)
    return path


def llm_run(mob: Path, store: Path, *more: str) -> tuple[int, dict[str, object], str]:
    result = cli(
        "run", mob, "-p", "topic=caching", "--driver", "llm", "--store", store, "--json", *more
    )
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, document, result.stderr


def test_the_turn_carries_the_profile_system_prompt_and_expected_schema(
    fake: FakeProvider, mob: Path, tmp_path: Path
) -> None:
    fake.default = Text('{"title": "Caching"}')
    code, doc, stderr = llm_run(mob, tmp_path / "store")
    assert code == 0, stderr
    assert doc["result"] == {"title": "Caching"}
    (sent,) = fake.requests
    assert sent.api == "anthropic" and sent.body["model"] == "claude-haiku-4-5"
    # skills in profile order, joined by a blank line; the path skill from its stored copy
    assert sent.body["system"] == "Be brief.\n\nCite sources."
    assert sent.body["max_tokens"] == 900
    # the step's expected schema (policy any: the aggregate is the answer) asked for natively
    schema = sent.body["output_config"]["format"]["schema"]
    assert schema["required"] == ["title"]
    # the once-per-run warning of the preflight, printed before the run starts
    assert stderr.startswith(
        "warning: profile 'writer': the comms tools are Meerkat-runtime features; the llm "
        "driver does not provide them\n"
    )


def test_usage_is_kept_per_member_and_per_step_and_shown(
    fake: FakeProvider, mob: Path, tmp_path: Path
) -> None:
    fake.default = Text('{"title": "T"}', usage=(100, 20, 5, 1))
    store = tmp_path / "store"
    code, doc, stderr = llm_run(mob, store)
    assert code == 0, stderr
    usage = {
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "cache_read_tokens": 5,
        "cache_creation_tokens": 1,
    }
    assert doc["accounting"] == {
        "attribution": "run_turns",
        "members": [{"agent_identity": "writer-1", "role": "writer", "turns": 1, "usage": usage}],
        "steps": [{"step_id": "draft", "turns": 1, "usage": usage}],
        "usage_total": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
        "members_usage_unavailable": 0,
        "unpriced_reason": "no price data in the model catalog; token counts are exact, "
        "monetary cost is not computed",
    }
    shown = cli("runs", "show", "m", str(doc["run_id"])[:8], "--store", store)
    assert shown.stdout.endswith(
        "\naccounting (tokens)\n"
        "  MEMBER    ROLE    TURNS  INPUT  OUTPUT  CACHE READ  CACHE WRITE\n"
        "  writer-1  writer  1      100    20      5           1\n"
        "  total                    100    20\n"
    )


def test_the_llm_turn_leaves_its_transcript(fake: FakeProvider, mob: Path, tmp_path: Path) -> None:
    fake.default = Text('{"title": "T"}')
    store = tmp_path / "store"
    code, doc, stderr = llm_run(mob, store)
    assert code == 0, stderr
    (kept,) = DirectoryStore(store).transcripts("m").list_transcripts(str(doc["run_id"]))
    record = kept.record
    assert isinstance(record, dict) and record["status"] == "completed"
    assert record["structured_output"] == {"title": "T"}
    assert record["usage"] == {
        "input_tokens": 11,
        "output_tokens": 7,
        "total_tokens": 18,
        "cache_read_tokens": 3,
        "cache_creation_tokens": 2,
    }
    driver = record["driver"]
    assert isinstance(driver, dict)
    assert driver["system_prompt"] == "Be brief.\n\nCite sources."
    assert "sk-ant-test-secret" not in json.dumps(record)


def test_a_missing_key_is_reported_before_anything_is_written(
    fake: FakeProvider, mob: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    store = tmp_path / "store"
    result = cli("run", mob, "-p", "topic=x", "--driver", "llm", "--store", store)
    assert result.exit_code == 2
    assert result.stderr.startswith("error[missing_credentials]: ")
    assert "ANTHROPIC_API_KEY" in result.stderr
    assert not (store / "specs").exists() and not (store / "mobs").exists()
    assert fake.requests == []


@pytest.mark.parametrize("value", ["0", "1025"])
def test_max_concurrency_is_bounded(mob: Path, tmp_path: Path, value: str) -> None:
    result = cli("run", mob, "--driver", "echo", "--max-concurrency", value, "--store", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error[usage]: --max-concurrency must be between 1 and 1024, not {value}\n"
        "hint: the default is 16 turns in flight per run\n"
    )


@pytest.mark.parametrize("granted", [False, True])
def test_a_shell_and_stdio_mcp_servers_need_the_person_running_to_allow_them(
    fake: FakeProvider, mob: Path, tmp_path: Path, granted: bool
) -> None:
    mob.write_text(
        MOB.replace("comms = true", "shell = true")
        + '\n[[profiles.writer.tools.mcp_servers]]\nname = "git"\ncommand = "mcp-server-git"\n'
    )
    fake.default = Text('{"title": "T"}')
    flags = ("--allow-shell", "--allow-mcp") if granted else ()
    code, _, stderr = llm_run(mob, tmp_path / "store", *flags)
    refusals = [
        "warning: profile 'writer' names stdio MCP servers (git): programs a definition names "
        "are not started (run with --allow-mcp)",
        "warning: profile 'writer' asks for a shell; not granted (run with --allow-shell)",
    ]
    if granted:  # mcp-server-git does not exist here: the turn fails trying to start it
        assert code == 3 and not any(line in stderr for line in refusals)
    else:
        assert code == 0, stderr
        assert stderr.splitlines()[:2] == refusals
        (sent,) = fake.requests
        assert sent.body.get("tools", []) == []
