"""Record and replay: ``run --record DIR`` writes cassettes, ``replay:DIR`` answers from them
and fails loudly (the step, and a diff of what changed) when a request changed;
``fallback=SPEC`` records only the changed turns again; no credential is ever written."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobctl.drivers.base import Completed, Driver, Member, TurnProfile, TurnRequest
from mobctl.drivers.cassettes import Recorder, rendered
from mobctl.drivers.registry import DriverConfig, parse_drivers, runs_a_program
from mobctl.drivers.replay import ReplayDriver
from mobctl.errors import OutputError
from tests.conftest import SAMPLES, cli
from tests.drivers.llm.conftest import request as llm_request
from tests.fakes.provider_server import FakeProvider, Text

HELLO = '[[reply]]\nstep = "greet"\noutput = "Hello, Ada!"\n'
CASSETTE = """# Recorded by mobctl (--record): each reply answers the request below it.
# Replay with --driver replay:DIR; a request that changed fails until it is recorded again.

[[reply]]
step = "greet"
member = "assistant-1"
iteration = 0
attempt = 1
output = "Hello, Ada!"
request_hash = "sha256:1184650618babc44788e43701c8aab1016c91f4082608596c26dda7ac5288cfb"

[reply.request]
system = ""
message = "Say hello to Ada."
"""
STALE = (
    "the request for step 'greet', member 'assistant-1', iteration 0, attempt 1 changed since "
    "it was recorded in cas/hello.main.toml; record it again with --driver "
    "replay:DIR,fallback=llm (or mobctl test --record):\n"
    "--- recorded message\n+++ current message\n@@ -1 +1 @@\n-Say hello to Ada.\n+Say hello to Bob."
)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "minimal.toml").write_text((SAMPLES / "minimal.toml").read_text())
    (tmp_path / "hello.toml").write_text(HELLO)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(name: str, *drivers: str) -> tuple[int, dict]:
    flags = [part for spec in drivers for part in ("--driver", spec)]
    result = cli("run", "minimal.toml", "-p", f"name={name}", *flags, "--store", "st", "--json")
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def _failure(store: str = "st") -> str:
    events = cli("events", "tail", "hello", "--type", "step_failed", "--json", "--store", store)
    return json.loads(events.stdout.splitlines()[-1])["kind"]["reason"]


def test_record_writes_a_reviewable_cassette(here: Path) -> None:
    result = cli(
        "run",
        "minimal.toml",
        "-p",
        "name=Ada",
        "--driver",
        "scripted:hello.toml",
        "--record",
        "cas",
        "--store",
        "st",
    )
    assert result.exit_code == 0
    assert (here / "cas" / "hello.main.toml").read_text() == CASSETTE


def test_a_record_directory_that_cannot_be_made_is_refused_before_the_run(here: Path) -> None:
    (here / "file").write_text("")
    result = cli("run", "minimal.toml", "-p", "name=Ada", "--record", "file/cas", "--store", "st")
    assert result.stderr == (
        "error[output_not_writable]: cannot write cassettes in file/cas: Not a directory\n"
    )  # it came after a completed run, whose summary it hid
    assert result.exit_code == 2
    assert not (here / "st").exists()


def test_replay_answers_from_the_cassette(here: Path) -> None:
    (here / "cas").mkdir()
    (here / "cas" / "hello.main.toml").write_text(CASSETTE)
    code, document = _run("Ada", "replay:cas")
    assert code == 0
    assert document["outputs"] == {"greet": {"assistant-1": "Hello, Ada!"}}


def test_a_changed_request_fails_loudly_with_a_diff(here: Path) -> None:
    (here / "cas").mkdir()
    (here / "cas" / "hello.main.toml").write_text(CASSETTE)
    code, document = _run("Bob", "replay:cas")
    assert code == 3
    assert document["steps"] == {"greet": "failed"}
    assert _failure() == STALE


def test_a_missing_reply_or_hash_fails_loudly(here: Path) -> None:
    (here / "cas").mkdir()
    (here / "cas" / "hello.main.toml").write_text(
        CASSETTE.replace('member = "assistant-1"', 'member = "other-1"')
    )
    assert _run("Ada", "replay:cas")[0] == 3
    assert _failure() == (
        "the cassette cas/hello.main.toml has no reply for step 'greet', member 'assistant-1', "
        "iteration 0, attempt 1; record it again with --driver replay:DIR,fallback=llm (or "
        "mobctl test --record)"
    )
    (here / "cas" / "hello.main.toml").write_text(
        HELLO.replace('step = "greet"', 'step = "greet"\nmember = "assistant-1"\niteration = 0')
    )
    assert _run("Ada", "replay:cas")[0] == 3
    assert "without the request it answered (request_hash and [reply.request])" in _failure()


def test_a_missing_cassette_directory_is_a_usage_error(here: Path) -> None:
    result = cli("run", "minimal.toml", "--driver", "replay:nowhere", "--store", "st")
    assert result.stderr == (
        "error[invalid_driver]: the cassette directory nowhere does not exist\n"
        "hint: record one with --record DIR, or give replay a fallback=SPEC\n"
    )
    assert result.exit_code == 2


def test_fallback_records_only_the_changed_turns(here: Path) -> None:
    (here / "cas").mkdir()
    kept = "# reviewed by Ada\n" + CASSETTE
    cassette = here / "cas" / "hello.main.toml"
    cassette.write_text(kept)
    assert _run("Ada", "replay:cas,fallback=scripted:hello.toml")[0] == 0
    assert cassette.read_text() == kept  # every turn matched: nothing written
    (here / "bob.toml").write_text(HELLO.replace("Ada", "Bob"))
    code, document = _run("Bob", "replay:cas,fallback=scripted:bob.toml")
    assert code == 0
    assert document["outputs"] == {"greet": {"assistant-1": "Hello, Bob!"}}
    text = cassette.read_text()
    assert text.startswith("# reviewed by Ada\n")
    assert 'output = "Hello, Bob!"' in text
    assert 'message = "Say hello to Bob."' in text
    assert _run("Bob", "replay:cas")[0] == 0  # the re-recorded turn now replays


def test_a_fallback_never_reads_a_cassette_through_a_link(here: Path, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.toml"
    outside.write_text("reply = 5\n")  # read through the link, this was exit 70
    (here / "cas").mkdir()
    (here / "cas" / "hello.main.toml").symlink_to(outside)
    assert _run("Ada", "replay:cas,fallback=scripted:hello.toml")[0] == 0
    assert outside.read_text() == "reply = 5\n"
    assert not (here / "cas" / "hello.main.toml").is_symlink()  # replaced, as replay skipped it
    assert _run("Ada", "replay:cas")[0] == 0


def test_a_cassette_of_the_wrong_shape_is_not_merged_into(here: Path) -> None:
    (here / "cas").mkdir()
    cassette = here / "cas" / "m.main.toml"  # _request's mob and flow
    recorder = Recorder(here / "cas", [], merge=True)
    recorder.add(_request("Say hello to Bob."), Completed("Hello, Bob!"))
    cassette.write_text("reply = [1, 2]\n")  # appended to, this was a broken cassette
    with pytest.raises(OutputError) as raised:
        recorder.flush()
    assert raised.value.message == (
        f"cannot write the cassette {cassette}: it is not a cassette ([[reply]] tables)"
    )
    cassette.write_text("reply = [\nSECRET")
    recorder.add(_request("Say hello to Bob."), Completed("Hello, Bob!"))
    with pytest.raises(OutputError) as raised:
        recorder.flush()
    assert raised.value.message == f"cannot write the cassette {cassette}: it is not UTF-8 TOML"
    assert cassette.read_text() == "reply = [\nSECRET"


def test_mobctl_test_reports_a_stale_cassette_whatever_the_expectations(here: Path) -> None:
    (here / "cas").mkdir()
    (here / "cas" / "hello.main.toml").write_text(CASSETTE)
    (here / "t.test.toml").write_text(
        '[[case]]\nname = "stale"\nmob = "minimal.toml"\nparams = { name = "Bob" }\n'
        'drivers = ["replay:cas"]\n\n[case.expect]\nstatus = "failed"\n'
    )
    result = cli("test", "t.test.toml")
    cassette = here / "cas" / "hello.main.toml"
    stale = STALE.replace("cas/hello.main.toml", str(cassette))
    assert result.stdout == (
        "FAIL t.test.toml::stale\n  t.test.toml:1: stale cassette:\n"
        + "".join(f"    {line}\n" for line in stale.splitlines())
        + "0 passed, 1 failed\n"
    )
    assert result.exit_code == 1


def test_mobctl_test_record_records_every_replay_case_anew(here: Path) -> None:
    (here / "t.test.toml").write_text(
        '[[case]]\nname = "recorded"\nmob = "minimal.toml"\nparams = { name = "Ada" }\n'
        'drivers = ["replay:cas,fallback=scripted:hello.toml"]\n'
    )
    assert cli("test", "t.test.toml", "--record").exit_code == 0
    text = (here / "cas" / "hello.main.toml").read_text()
    assert 'output = "Hello, Ada!"' in text
    assert (
        'request_hash = "sha256:1184650618babc44788e43701c8aab1016c91f4082608596c26dda7ac5288cfb"'
        in text
    )
    (here / "t.test.toml").write_text(
        (here / "t.test.toml").read_text().replace(",fallback=scripted:hello.toml", "")
    )
    assert cli("test", "t.test.toml").stdout == "PASS t.test.toml::recorded\n1 passed, 0 failed\n"


def test_a_cassette_never_holds_a_credential(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-4242")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-9999")
    (here / "leak.toml").write_text(
        HELLO.replace("Hello, Ada!", "key sk-ant-secret-4242 and tok-9999")
    )
    result = cli(
        "run",
        "minimal.toml",
        "-p",
        "name=sk-ant-secret-4242",
        "--driver",
        "scripted:leak.toml",
        "--record",
        "cas",
        "--store",
        "st",
    )
    assert result.exit_code == 0
    text = (here / "cas" / "hello.main.toml").read_text()
    assert "sk-ant-secret-4242" not in text
    assert "tok-9999" not in text
    assert 'output = "key [redacted] and [redacted]"' in text
    assert 'message = "Say hello to [redacted]."' in text


def test_resume_never_runs_a_program_named_as_a_fallback() -> None:
    assert runs_a_program("replay:cas,fallback=command:./agent")
    assert runs_a_program("reviewer=replay:cas,fallback=command:./agent")
    assert not runs_a_program("replay:cas,fallback=llm:model=x,max_tool_rounds=2")
    assert not runs_a_program("replay:cas")


def _request(message: str, *, run_id: str = "r-1", system: str = "") -> TurnRequest:
    return TurnRequest(
        kind="step",
        mob_id="m",
        run_id=run_id,
        flow_id="main",
        step_id="s",
        member=Member("w-1", 0, "w"),
        message=message,
        profile=TurnProfile(name="w", model="x", system_prompt=system),
    )


def test_the_hash_covers_system_prompt_message_and_schema_not_the_run_id() -> None:
    base = rendered(_request("go in run r-1", run_id="r-1"))
    assert rendered(_request("go in run r-2", run_id="r-2")).digest == base.digest
    assert rendered(_request("go in run r-1", system="be brief")).digest != base.digest
    assert rendered(_request("go now in run r-1")).digest != base.digest
    schema = TurnRequest(
        **{**_request("go in run r-1").__dict__, "expected_schema": {"type": "object"}}
    )
    assert rendered(schema).digest != base.digest


@given(output=st.text(), message=st.text(), system=st.text())
def test_any_text_replays_as_it_was_recorded(
    tmp_path_factory, output: str, message: str, system: str
) -> None:
    directory = tmp_path_factory.mktemp("cas")
    request = _request(message, system=system)
    recorder = Recorder(directory, [], merge=False)
    recorder.add(request, Completed(output))
    recorder.flush()
    outcome = ReplayDriver(directory).run(request, threading.Event())
    assert outcome == Completed(output)


def test_the_llm_driver_records_without_its_key_and_replays_with_the_provider_gone(
    tmp_path: Path,
) -> None:
    """The real llm driver against a real HTTP provider on 127.0.0.1 (the engine does not yet
    give it profiles, so this drives it directly): the cassette holds the answer and the
    request, never the API key; replay answers with the provider gone; ``fallback=llm`` asks
    the provider again only for the turn whose request changed, and records it in its place."""
    fake = FakeProvider()
    try:
        config = DriverConfig(env=fake.env(), workdir=tmp_path)
        fake.script(Text("caching, by the model"))
        recording = parse_drivers(["llm"], replace(config, record=tmp_path / "cas"))
        assert _said(recording.default, _llm_turn()) == "caching, by the model"
        recording.close()
        text = next((tmp_path / "cas").iterdir()).read_text()
        assert 'output = "caching, by the model"' in text
        assert 'message = "Write about caching"' in text
        assert "test-secret" not in text
        fake.script(Text("queues, by the model"))
        fallback = parse_drivers([f"replay:{tmp_path / 'cas'},fallback=llm"], config)
        changed = _llm_turn(message="Write about queues")
        assert _said(fallback.default, _llm_turn()) == "caching, by the model"
        assert _said(fallback.default, changed) == "queues, by the model"
        fallback.close()
        assert len(fake.requests) == 2  # the unchanged turn was not asked again
    finally:
        fake.close()
    replay = ReplayDriver(tmp_path / "cas")
    assert _said(replay, changed) == "queues, by the model"  # the turn's new recording


def _llm_turn(**changes: Any) -> TurnRequest:
    return llm_request(run_id="4f1c2a9e-0d4b-4a51-9c07-3b7e2f6d8a10", **changes)


def _said(driver: Driver, request: TurnRequest) -> str:
    outcome = driver.run(request, threading.Event())
    assert isinstance(outcome, Completed), outcome
    return outcome.output
