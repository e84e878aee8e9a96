"""Trust item 5: no terminal injection. Text from an agent (its stderr is the failure reason),
the store or a definition reaches a terminal with its control characters escaped, as `events
tail` shows it: run progress lines, the live view, `runs show`/`list`, `members list`,
`specs list`/`show`, error lines. JSON output stays the same JSON."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from mobctl.cli.terminal import printable
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import EventKind, NewMobEvent
from tests.cli.test_definition_commands import _run_in_terminal
from tests.conftest import REPO, SAMPLES, cli
from tests.engine.test_run_processes import start
from tests.engine.test_scenarios import HEAD

# retitle the window, clear the screen, a C1 CSI (red), a bidi override
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31mboom\u202e"
SHOWN = "\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31mboom\\u202e"
RAW = ("\x1b]", "\x07", "\x1b[2J", "\x9b", "\u202e")


def assert_no_raw_control(text: str) -> None:
    for sequence in RAW:
        assert sequence not in text, (sequence, text)


def test_item5_printable_escapes_every_control_character_as_json_does() -> None:
    assert printable(HOSTILE) == SHOWN
    assert printable("a\tb\nc\rd\x00\x7f") == "a\\tb\\nc\\rd\\u0000\\u007f"
    assert printable("line 1\nline 2\x1b", keep_newlines=True) == "line 1\nline 2\\u001b"
    assert printable('caf\u00e9 \u4e2d \U0001f600 \\ "q"') == 'caf\u00e9 \u4e2d \U0001f600 \\ "q"'
    assert printable("\udcff") == "\\udcff"  # an undecodable byte from argv
    # JSON's own escapes inside a JSON document read back as the same value
    document = json.dumps({"k": HOSTILE + "\udcff"}, ensure_ascii=False, indent=2)
    assert json.loads(printable(document, keep_newlines=True)) == {"k": HOSTILE + "\udcff"}


def failing_run(tmp_path: Path, reason: str) -> list[str]:
    """`mobctl run` arguments of a one-step flow whose agent prints ``reason`` on stderr and
    fails (the store in tmp_path/store)."""
    agent = tmp_path / "agent.py"
    agent.write_text(f"import sys\nsys.stderr.write({reason!r} + '\\n')\nsys.exit(1)\n")
    mob = tmp_path / "mob.toml"
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "a"\n')
    driver = f"command:{shlex.quote(sys.executable)} {shlex.quote(str(agent))}"
    return ["run", str(mob), "--driver", driver, "--store", str(tmp_path / "store")]


def on_a_terminal(args: list[str], tmp_path: Path) -> str:
    """What a terminal shows of `mobctl ARGS` (the live view), once it exited 3."""
    environment = {"COLUMNS": "200", "TERM": "xterm", "PYTHONPATH": str(REPO)}
    code, output = _run_in_terminal(args, tmp_path, environment)
    assert code == 3, output
    return output


@pytest.fixture
def failed_run(tmp_path: Path) -> tuple[Path, str, str]:
    """(store, run id, stderr of `mobctl run`) of a run whose agent printed HOSTILE on stderr
    and failed."""
    process = start(failing_run(tmp_path, HOSTILE), tmp_path)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 3, err
    store = tmp_path / "store"
    return store, next((store / "mobs" / "s" / "runs").glob("*.json")).stem, err


def test_item5_run_progress_lines_escape_the_agents_stderr(
    failed_run: tuple[Path, str, str],
) -> None:
    _, _, err = failed_run
    assert_no_raw_control(err)
    assert f"  a: w-1 failed: {SHOWN}\n" in err
    assert f"  a: FAILED: {SHOWN}\n" in err


def test_item16_run_progress_lines_show_the_head_of_a_long_reason(tmp_path: Path) -> None:
    """An agent's 1 MiB stderr line was printed whole in the progress lines (the engine keeps
    4 KiB of it as the reason): a progress line shows its first 500 characters."""
    args = failing_run(tmp_path, "")
    agent = tmp_path / "long.py"
    agent.write_text("import sys\nsys.stderr.write('x' * (1 << 20) + '\\n')\nsys.exit(1)\n")
    args[args.index("--driver") + 1] = f"command:{shlex.quote(sys.executable)} {agent}"
    result = cli(*args)
    assert result.exit_code == 3, result.stderr
    head = "x" * 499 + "…"
    assert f"\n  a: w-1 failed: {head}\n  a: FAILED: {head}\n" in result.stderr
    assert max(map(len, result.stderr.splitlines())) < 600
    run_id = next((tmp_path / "store" / "mobs" / "s" / "runs").glob("*.json")).stem
    shown = cli("runs", "show", "s", run_id, "--store", tmp_path / "store", "--json")
    [entry] = json.loads(shown.stdout)["failure_ledger"]
    assert len(entry["reason"].encode()) == 4096  # the reason itself: as the engine keeps it


def test_item5_runs_show_and_events_tail_escape_the_reason(
    failed_run: tuple[Path, str, str],
) -> None:
    store, run_id, _ = failed_run
    shown = cli("runs", "show", "s", run_id[:8], "--store", store)
    assert shown.exit_code == 0, shown.stderr
    assert_no_raw_control(shown.stdout)
    assert re.search(rf"\n  a +failed +w-1 +1 +\S+ +\S+ +{re.escape(SHOWN)}\n", shown.stdout)
    as_json = cli("runs", "show", "s", run_id[:8], "--store", store, "--json")
    assert_no_raw_control(as_json.stdout)
    [entry] = json.loads(as_json.stdout)["failure_ledger"]
    assert entry["reason"] == HOSTILE  # the same value, as JSON escapes
    tail = cli("events", "tail", "s", "--type", "step_failed", "--store", store)
    assert_no_raw_control(tail.stdout)
    assert f'reason="{SHOWN}"' in tail.stdout


def test_item5_the_live_view_escapes_the_reason(tmp_path: Path) -> None:
    output = on_a_terminal(failing_run(tmp_path, HOSTILE), tmp_path)
    for sequence in ("\x1b]0;pwned", "\x07", "\x1b[2J", "\x9b", "\u202e"):
        assert sequence not in output, sequence  # rich's own colours and cursor moves remain
    assert SHOWN in output


def test_item5_markup_in_a_reason_stays_text_in_the_live_view(tmp_path: Path) -> None:
    markup = "[link=https://evil.example]click[/link]"
    output = on_a_terminal(failing_run(tmp_path, markup), tmp_path)
    assert "\x1b]8;" not in output  # no hyperlink escape made from the agent's text
    assert markup in output


def test_item5_lists_of_members_and_specs_escape_store_text(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert cli("register", SAMPLES / "minimal.toml", "--store", store).exit_code == 0
    opened = DirectoryStore(store)
    opened.events("hello").append(  # as someone who can write the store could
        NewMobEvent(
            mob_id="hello",
            kind=EventKind(
                type="member_spawned", agent_identity=HOSTILE, generation=0, role="assistant\t"
            ),
        )
    )
    members = cli("members", "list", "hello", "--store", store)
    width = len(SHOWN) + 2
    assert (members.exit_code, members.stdout) == (
        0,
        f"{'MEMBER':<{width}}ROLE         GENERATION\n{SHOWN}  assistant\\t  0\n",
    )
    assert_no_raw_control(cli("members", "list", "hello", "-o", "yaml", "--store", store).stdout)
    spec = store / "specs" / "hello.json"
    record = json.loads(spec.read_text())
    record["digest"] = HOSTILE  # (its times must be RFC 3339: a store read refuses others)
    spec.write_text(json.dumps(record))
    specs = cli("specs", "list", "-o", "wide", "--store", store)
    assert specs.exit_code == 0
    assert specs.stdout.splitlines()[1].endswith(f"  {SHOWN}")
    short = cli("specs", "list", "--store", store).stdout.splitlines()[1]
    assert short.endswith("  \\u001b]0;pwne")  # the first 8 characters, escaped
    shown = cli("specs", "show", "hello", "--store", store)
    assert_no_raw_control(shown.stdout)


def test_item5_a_definitions_text_is_escaped_by_specs_show_and_convert(
    tmp_path: Path,
) -> None:
    mob = tmp_path / "mob.toml"  # a raw C1 CSI is legal in a TOML string; ESC as an escape
    mob.write_text(HEAD + '[flows.main.steps.a]\nrole = "w"\nmessage = "x\x9b31m \\u001b[2J"\n')
    store = tmp_path / "store"
    assert cli("register", mob, "--store", store).exit_code == 0
    for args in (["specs", "show", "s", "--store", store], ["convert", mob, "--to", "toml"]):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert_no_raw_control(result.stdout)
        assert 'message = "x\\u009b31m \\u001b[2J"' in result.stdout
    as_json = cli("convert", mob, "--to", "json")
    assert_no_raw_control(as_json.stdout)
    assert (
        json.loads(as_json.stdout)["flows"]["main"]["steps"]["a"]["message"] == "x\x9b31m \x1b[2J"
    )


def test_item5_error_lines_escape_what_they_quote(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert cli("register", SAMPLES / "minimal.toml", "--store", store).exit_code == 0
    result = cli("runs", "show", "hello", "\x1b]0;pwned\x07", "--store", store)
    assert (result.exit_code, result.stderr) == (
        1,
        "error[not_found]: mob 'hello' has no run '\\u001b]0;pwned\\u0007'\n"
        "hint: `mobctl runs list hello` lists its runs\n",
    )
    # a line break it quotes starts an indented line: nothing can pass for mobctl's own line
    forged = cli("runs", "show", "hello", "x\nerror[fake]: y", "--store", store)
    assert forged.stderr == (
        "error[not_found]: mob 'hello' has no run 'x\n  error[fake]: y'\n"
        "hint: `mobctl runs list hello` lists its runs\n"
    )
