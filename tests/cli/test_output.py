"""`-o/--output text|json|yaml|wide|name` on every list and show command (issue 13 items 7
and 8): one table style, short ids in tables, local times in tables and RFC 3339 UTC in
documents, YAML that reads back as the JSON document, ids only for scripts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mobctl.cli.output import yaml_text
from mobctl.cli.terminal import has_control
from tests.conftest import SAMPLES, cli

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
LOCAL = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture
def india(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC+05:30 (a POSIX TZ rule: no time zone database needed)."""
    monkeypatch.setenv("TZ", "IST-5:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with a mob, two runs, a member, a realm profile and a supervisor."""
    root = tmp_path_factory.mktemp("filled")
    store = root / "store"
    at = ("--store", str(store))
    runs = [
        cli("run", SAMPLES / "minimal.toml", "-p", f"name={name}", *at, "-o", "name").stdout
        for name in ("Ada", "Bob")
    ]
    profile = root / "writer.toml"
    profile.write_text('model = "claude-sonnet-4-6"\n')
    assert cli("profiles", "create", "house-writer", profile, *at).exit_code == 0
    assert cli("supervisor", "init", "hello", *at).exit_code == 0
    return {"store": store, "runs": [r.strip() for r in runs]}


def run_cli(filled: dict[str, Any], *args: str) -> Any:
    return cli(*args, "--store", filled["store"])


def first_run(filled: dict[str, Any]) -> str:
    return str(filled["runs"][0])


# each list or show command: its arguments and the ids `-o name` prints, from its document
LISTINGS: dict[str, tuple[list[str], Any]] = {
    "runs list": (["runs", "list"], lambda doc: [r["run_id"] for r in doc]),
    "runs list MOB": (["runs", "list", "hello"], lambda doc: [r["run_id"] for r in doc]),
    "runs show": (["runs", "show", "hello", "{run}"], lambda doc: [doc["run_id"]]),
    "specs list": (["specs", "list"], lambda doc: [s["mob_id"] for s in doc]),
    "specs show": (["specs", "show", "hello"], lambda doc: [doc["mob_id"]]),
    "members list": (["members", "list", "hello"], lambda doc: [m["identity"] for m in doc]),
    "profiles list": (["profiles", "list"], lambda doc: [p["name"] for p in doc]),
    "profiles show": (["profiles", "show", "house-writer"], lambda doc: [doc["name"]]),
    "supervisor show": (["supervisor", "show", "hello"], lambda doc: [doc["public_peer_id"]]),
}


@pytest.mark.parametrize("name", LISTINGS)
def test_every_list_and_show_command_takes_every_format(filled: dict[str, Any], name: str) -> None:
    template, ids = LISTINGS[name]
    args = [arg.replace("{run}", first_run(filled)[:8]) for arg in template]
    as_json = run_cli(filled, *args, "-o", "json")
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert run_cli(filled, *args, "--json").stdout == as_json.stdout  # the alias
    assert run_cli(filled, *args, "--output", "JSON").stdout == as_json.stdout
    as_yaml = run_cli(filled, *args, "-o", "yaml")
    assert (as_yaml.exit_code, yaml.safe_load(as_yaml.stdout)) == (0, document)
    named = run_cli(filled, *args, "-o", "name")
    assert (named.exit_code, named.stdout.splitlines()) == (0, ids(document))
    for fmt in ("text", "wide"):
        shown = run_cli(filled, *args, "-o", fmt)
        assert (shown.exit_code, shown.stderr) == (0, ""), fmt
        assert shown.stdout and not has_control(shown.stdout.replace("\n", ""))


def test_json_times_are_rfc3339_utc(filled: dict[str, Any]) -> None:
    stamps = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key.endswith("_at") and isinstance(item, str):
                    stamps.append(item)
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for template, _ in LISTINGS.values():
        args = [arg.replace("{run}", first_run(filled)) for arg in template]
        collect(json.loads(run_cli(filled, *args, "-o", "json").stdout))
    assert len(stamps) > 10
    assert [s for s in stamps if not RFC3339_UTC.fullmatch(s)] == []


def test_tables_look_alike(filled: dict[str, Any], india: None) -> None:
    """Aligned columns under an uppercase header, two spaces apart, short ids, local times."""
    record = json.loads(run_cli(filled, "specs", "show", "hello", "-o", "json").stdout)
    updated = _local(record["updated_at"])
    digest = record["digest"]
    assert run_cli(filled, "specs", "list").stdout == (
        "MOB    REVISION  UPDATED              DIGEST\n"
        f"hello  1         {updated}  sha256:{digest[7:15]}\n"
    )
    assert run_cli(filled, "specs", "list", "-o", "wide").stdout == (
        "MOB    REVISION  UPDATED              REGISTERED           DIGEST\n"
        f"hello  1         {updated}  {_local(record['registered_at'])}  {digest}\n"
    )
    assert run_cli(filled, "members", "list", "hello").stdout == (
        "MEMBER       ROLE       GENERATION\nassistant-1  assistant  0\n"
    )
    profile = json.loads(run_cli(filled, "profiles", "show", "house-writer", "--json").stdout)
    assert run_cli(filled, "profiles", "list").stdout == (
        "NAME          REVISION  MODEL              UPDATED\n"
        f"house-writer  1         claude-sonnet-4-6  {_local(profile['updated_at'])}\n"
    )
    listed = json.loads(run_cli(filled, "runs", "list", "--json").stdout)
    lines = run_cli(filled, "runs", "list", "hello").stdout.splitlines()
    assert lines[0] == "RUN       FLOW  STATUS     CAUSE  STARTED              DURATION"
    for line, run in zip(lines[1:], listed, strict=True):
        assert line.startswith(
            f"{run['run_id'][:8]}  main  completed  -      {_local(run['created_at'])}  "
        )
    wide = run_cli(filled, "runs", "list", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "RUN", "MOB", "FLOW", "STATUS", "CAUSE", "STARTED", "FINISHED", "DURATION"
    ]  # fmt: skip
    assert [line.split()[0] for line in wide[1:]] == [run["run_id"] for run in listed]


def _local(stamp: str) -> str:
    """An RFC 3339 UTC time as a table shows it in UTC+05:30."""
    from datetime import datetime, timedelta

    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(hours=5, minutes=30)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def test_show_times_are_local(filled: dict[str, Any], india: None) -> None:
    spec = json.loads(run_cli(filled, "specs", "show", "hello", "-o", "json").stdout)
    assert run_cli(filled, "specs", "show", "hello").stdout.splitlines()[1] == (
        f"# registered {_local(spec['registered_at'])}, updated {_local(spec['updated_at'])}"
    )
    profile = json.loads(run_cli(filled, "profiles", "show", "house-writer", "-o", "json").stdout)
    assert run_cli(filled, "profiles", "show", "house-writer").stdout.splitlines()[0] == (
        f"house-writer revision 1 (created {_local(profile['created_at'])}, "
        f"updated {_local(profile['updated_at'])})"
    )
    snapshot = json.loads(
        run_cli(filled, "runs", "show", "hello", first_run(filled), "--json").stdout
    )
    shown = run_cli(filled, "runs", "show", "hello", first_run(filled)).stdout
    assert f"\nstarted   {_local(snapshot['created_at'])}\n" in shown
    assert f"\nfinished  {_local(snapshot['completed_at'])}\n" in shown
    step = re.search(r"\n  greet  completed  assistant-1  1         (\S+) ", shown)
    assert step is not None and re.fullmatch(r"\d\d:\d\d:\d\d", step[1])


def test_reports_take_text_json_and_yaml(filled: dict[str, Any]) -> None:
    for args in (["store", "check"], ["events", "verify", "hello"]):
        as_json = run_cli(filled, *args, "-o", "json")
        assert as_json.exit_code == 0, as_json.stderr
        as_yaml = run_cli(filled, *args, "-o", "yaml")
        assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)
        refused = run_cli(filled, *args, "-o", "name")
        assert (refused.exit_code, refused.stderr) == (
            2,
            "error[usage]: -o/--output 'name' is not an output format of this command\n"
            "hint: use text, json or yaml\n",
        )


def test_name_output_is_the_id_a_script_needs(tmp_path: Path) -> None:
    store = tmp_path / "store"
    registered = cli("register", SAMPLES / "minimal.toml", "-o", "name", "--store", store)
    assert (registered.exit_code, registered.stdout) == (0, "hello\n")
    ran = cli("run", "hello", "-p", "name=Ada", "-o", "name", "--store", store)
    assert ran.exit_code == 0 and re.fullmatch(r"[0-9a-f-]{36}\n", ran.stdout)
    assert cli("runs", "list", "-o", "name", "--store", store).stdout == ran.stdout
    as_yaml = yaml.safe_load(
        cli("run", "hello", "-p", "name=Bo", "-o", "yaml", "--store", store).stdout
    )
    assert (as_yaml["status"], as_yaml["result"]) == (
        "completed",
        {"assistant-1": "Say hello to Bo."},
    )


def test_events_tail_in_every_format(filled: dict[str, Any]) -> None:
    args = ["events", "tail", "hello", "--run", first_run(filled)[:8]]
    lines = [json.loads(line) for line in run_cli(filled, *args, "-o", "json").stdout.splitlines()]
    assert [e["kind"]["type"] for e in lines][:2] == ["flow_started", "step_dispatched"]
    assert list(yaml.safe_load_all(run_cli(filled, *args, "-o", "yaml").stdout)) == lines
    named = run_cli(filled, *args, "-o", "name").stdout
    assert named == "".join(f"{e['cursor']}\n" for e in lines)
    text = run_cli(filled, *args).stdout.splitlines()
    wide = run_cli(filled, *args, "-o", "wide").stdout.splitlines()
    assert f" run={first_run(filled)[:8]} " in text[0]
    assert f" run={first_run(filled)} " in wide[0]
    whole = [
        line.replace(f"run={first_run(filled)}", f"run={first_run(filled)[:8]}") for line in wide
    ]
    assert whole == text  # values this short are whole in both


def test_runs_show_cuts_long_params_unless_full(tmp_path: Path) -> None:
    store = tmp_path / "store"
    big = "x" * 300_000
    ran = cli("run", SAMPLES / "minimal.toml", "-p", f"name={big}", "-o", "name", "--store", store)
    assert ran.exit_code == 0, ran.stderr
    run_id = ran.stdout.strip()
    shown = cli("runs", "show", "hello", run_id[:8], "--store", store).stdout
    text = json.dumps({"name": big})
    line = next(line for line in shown.splitlines() if line.startswith("params"))
    assert line == f"params    {text[:200]}... (300012 characters; --full shows them all)"
    assert len(shown) < 2 * 300_000 + 2000  # the outputs still show whole, once each
    full = cli("runs", "show", "hello", run_id[:8], "--full", "--store", store).stdout
    assert f"params    {text}\n" in full
    tail = ["events", "tail", "hello", "--run", run_id, "--type", "flow_started", "--store", store]
    started = f"params={json.dumps({'name': big}, separators=(',', ':'))}"
    assert cli(*tail).stdout.endswith(f"{started[:64]}...\n")  # a value is cut at 60
    assert cli(*tail, "-o", "wide").stdout.endswith(f"{started}\n")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_yaml_reads_back_as_the_same_document_with_no_raw_control(document: Any) -> None:
    text = yaml_text(document)
    assert yaml.safe_load(text) == document
    assert not has_control(text.replace("\n", ""))
