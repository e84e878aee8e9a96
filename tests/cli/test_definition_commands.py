"""`mobctl validate`: output formats, exit codes and error text, through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import CORPUS, SAMPLES, cli, mobctl_process, needs_corpus

BAD = """[mob]
id = "demo"
[profiles.worker]
model = "gpt-5.2"
[profiles.worker.tools]
shel = true
[flows.main.steps.a]
role = "worker"
message = "Summarise {{ steps.b }}"
collection_policy = "any"
"""


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "demo.toml"
    path.write_text(BAD)
    return path


def test_text_lines_and_summary(bad: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bad.parent)
    result = cli("validate", "demo.toml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "demo.toml:6:1: warning[unknown_key] profiles.worker.tools.shel: unknown key 'shel' in "
        "[profiles.worker.tools]; did you mean 'shell'?",
        "demo.toml:10:21: error[invalid_value] flows.main.steps.a.collection_policy: expected a "
        "table such as { type = \"any\" }, found the string 'any'",
        '  hint: write { type = "any" }',
        "1 error, 1 warning in 1 file",
    ]
    assert result.stderr == ""


def test_phase_three_runs_once_shape_is_fixed(bad: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad.write_text(BAD.replace('collection_policy = "any"', 'collection_policy = { type = "any" }'))
    monkeypatch.chdir(bad.parent)
    lines = cli("validate", "demo.toml").stdout.splitlines()
    assert lines[0].startswith("demo.toml:4:9: error[unknown_model] profiles.worker.model:")
    assert lines[2] == (
        "demo.toml:9:22: error[unknown_template_ref] flows.main.steps.a.message: step 'a' reads "
        "'{{ steps.b }}', but flow has no step 'b'"
    )


@needs_corpus
def test_json_document(bad: Path) -> None:
    result = cli("validate", bad, CORPUS / "01_coding_swarm_mob.toml", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["version"] == 1
    assert document["summary"] == {"files": 2, "errors": 1, "warnings": 1}
    first, second = document["files"]
    assert first["path"] == str(bad)
    assert first["valid"] is False
    assert second["valid"] is True and second["diagnostics"] == []
    record = first["diagnostics"][0]
    assert {"code", "severity", "message", "location", "line", "column"} <= set(record)
    assert record["suggestion"] == "shell"


@needs_corpus
def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    path = CORPUS / "11_warning_any_without_branch.toml"
    assert cli("validate", path).exit_code == 0
    strict = cli("validate", path, "--strict", "--format", "json")
    assert strict.exit_code == 1
    document = json.loads(strict.stdout)
    assert [d["severity"] for d in document["files"][0]["diagnostics"]] == ["error"]
    assert document["summary"]["errors"] == 1 and document["summary"]["warnings"] == 0


def test_github_annotations(bad: Path) -> None:
    result = cli("validate", bad, "--format", "github")
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"::warning file={bad},line=6,col=1,title=unknown_key::profiles.worker.tools.shel: "
        "unknown key 'shel' in [profiles.worker.tools]; did you mean 'shell'?"
    )
    assert lines[1].startswith(f"::error file={bad},line=10,col=21,title=invalid_value::")
    assert result.exit_code == 1


def test_github_escapes_properties_and_data() -> None:
    from dataclasses import replace

    from mobctl.cli.diagnostics_output import github_line
    from mobctl.diagnostics import diagnostic

    diag = replace(
        diagnostic("invalid_value", "50% done\nnext", ("a",)), file="a,b:c.toml", line=1, column=2
    )
    assert (
        github_line(diag)
        == "::error file=a%2Cb%3Ac.toml,line=1,col=2,title=invalid_value::a: 50%25 done%0Anext"
    )


def test_sarif_is_a_complete_2_1_0_log(bad: Path) -> None:
    result = cli("validate", bad, "--format", "sarif")
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "mobctl"
    assert [r["id"] for r in driver["rules"]] == ["invalid_value", "unknown_key"]
    for result_ in run["results"]:
        rule = driver["rules"][result_["ruleIndex"]]
        assert rule["id"] == result_["ruleId"]
        assert result_["level"] in ("error", "warning")
        region = result_["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    assert {r["ruleId"]: r["level"] for r in run["results"]} == {
        "unknown_key": "warning",
        "invalid_value": "error",
    }


def test_sarif_validates_against_the_sarif_schema_shape(bad: Path) -> None:
    """Structural checks GitHub code scanning applies: message text, rule ids, uri strings."""
    log = json.loads(cli("validate", bad, "--format", "sarif").stdout)
    for result in log["runs"][0]["results"]:
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert "\\" not in uri


def test_missing_path_is_a_usage_error() -> None:
    result = cli("validate", "does-not-exist.toml")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error[path_not_found]: path 'does-not-exist.toml' does not exist",
        "hint: pass definition files, directories or quoted globs such as 'mobs/**/*.toml'",
    ]
    assert result.stdout == ""


def test_glob_matching_nothing_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("validate", str(tmp_path / "*.toml"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error[path_not_found]: no file matches '{tmp_path}/*.toml'")


def test_unknown_format_is_a_usage_error(bad: Path) -> None:
    assert cli("validate", bad, "--format", "xml").exit_code == 2


def test_no_path_is_a_usage_error() -> None:
    assert cli("validate").exit_code == 2


def test_o_is_the_format_option_of_validate_graph_and_convert(bad: Path, tmp_path: Path) -> None:
    """`-o` chooses the format everywhere (issue 13 item 7); the old spellings stay."""
    for spellings in (
        [("validate", bad, flag, "github") for flag in ("-o", "--output", "--format")],
        [
            ("graph", SAMPLES / "triage.toml", flag, "dot")
            for flag in ("-o", "--output", "--format")
        ],
        [("convert", SAMPLES / "minimal.toml", flag, "json") for flag in ("-o", "--output", "--to")]
        + [("convert", SAMPLES / "minimal.toml")],  # the other format than the file's
    ):
        results = [cli(*args) for args in spellings]
        assert len({(r.exit_code, r.stdout) for r in results}) == 1, spellings
        assert results[0].stdout and results[0].exit_code in (0, 1)
    out = tmp_path / "definition.json"
    written = cli("convert", SAMPLES / "minimal.toml", "-o", "json", "--out-file", out)
    assert (written.exit_code, written.stdout) == (0, "")
    assert (
        cli("convert", out).stdout == cli("convert", SAMPLES / "minimal.toml", "-o", "toml").stdout
    )
    old_style = cli("convert", SAMPLES / "minimal.toml", "-o", "definition.json")
    assert (old_style.exit_code, old_style.stderr) == (
        2,
        "error[usage]: -o/--output 'definition.json' is not json or toml\n"
        "hint: -o picks the format; --out-file PATH writes to a file\n",
    )
    short_f = cli("graph", SAMPLES / "triage.toml", "-f", "dot")
    assert (short_f.exit_code, short_f.stderr.splitlines()[0]) == (
        2,
        "error[usage]: no such option: -f",
    )


@needs_corpus
def test_directories_and_globs(tmp_path: Path) -> None:
    (tmp_path / "mobs" / "nested").mkdir(parents=True)
    (tmp_path / "mobs" / "a.toml").write_text((CORPUS / "01_coding_swarm_mob.toml").read_text())
    (tmp_path / "mobs" / "nested" / "b.toml").write_text(BAD)
    (tmp_path / "mobs" / "nested" / "schema.json").write_text('{"type": "object"}')
    (tmp_path / "mobs" / "fixtures.toml").write_text('[[reply]]\nstep = "a"\noutput = "x"\n')
    (tmp_path / "mobs" / "broken.json").write_text("{nope")
    result = cli("validate", tmp_path / "mobs", "--format", "json")
    paths = [Path(f["path"]).name for f in json.loads(result.stdout)["files"]]
    assert paths == ["a.toml", "broken.json", "b.toml"]
    glob_result = cli("validate", str(tmp_path / "mobs" / "**" / "*.toml"), "--format", "json")
    paths = sorted(Path(f["path"]).name for f in json.loads(glob_result.stdout)["files"])
    assert paths == ["a.toml", "b.toml", "fixtures.toml"]


def test_item9_links_under_a_directory_or_glob_are_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git stores links, so a pull request can add ``mobs/b.json -> ~/.docker/config.json``:
    validating ``mobs/`` or a glob of it reads no file through a link, only says it skipped
    it; naming the link itself is the user's choice and follows it."""
    home, mobs = tmp_path / "home", tmp_path / "repo" / "mobs"
    home.mkdir()
    mobs.mkdir(parents=True)
    (home / "config.json").write_text('{"auths": {"ghcr.io": {"auth": "Z2hwX1NFQ1JFVA=="}}}')
    (home / "hosts.toml").write_text("token = ghp_SECRETTOKEN123\n")
    (mobs / "b.json").symlink_to(home / "config.json")
    (mobs / "c.toml").symlink_to(home / "hosts.toml")
    (mobs / "linked").symlink_to(home, target_is_directory=True)
    (mobs / "ok.toml").write_text((SAMPLES / "minimal.toml").read_text())
    monkeypatch.chdir(tmp_path / "repo")
    skipped = " is never followed (name it to validate it)\n"
    why = "': a symbolic link found under a directory or by a glob"
    for argument, links in (
        ("mobs", ["mobs/b.json", "mobs/c.toml", "mobs/linked"]),
        ("mobs/**/*.toml", ["mobs/c.toml", "mobs/linked/hosts.toml"]),
    ):
        for fmt in ("text", "github", "json"):
            result = cli("validate", argument, "--format", fmt)
            assert result.exit_code == 0
            assert result.stderr == "".join(
                f"warning: skipped '{link}{why}{skipped}" for link in links
            )
            assert "auth" not in result.stdout and "ghp_" not in result.stdout
    named = cli("validate", "mobs/c.toml", "--format", "json")
    assert named.exit_code == 1  # named: read, and it is no definition
    assert json.loads(named.stdout)["files"][0]["path"] == "mobs/c.toml"


def test_the_caret_line_is_the_one_validated_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The source lines under a diagnostic come from the text validated: the file is not
    opened a second time (it may have been replaced by then, or be a FIFO)."""
    from mobctl import api
    from mobctl.cli.diagnostics_output import render

    (tmp_path / "demo.toml").write_text(BAD)
    run = api.validate([str(tmp_path / "demo.toml")])
    (tmp_path / "demo.toml").write_text("replaced = true\n" * 20)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: show what a terminal gets
    monkeypatch.setenv("NO_COLOR", "1")
    render(run, "text")
    lines = capsys.readouterr().out.splitlines()
    index = next(i for i, line in enumerate(lines) if 'collection_policy = "any"' in line)
    assert lines[index + 1].strip() == "^"
    assert not any("replaced" in line for line in lines)


def test_a_bad_file_never_stops_the_others(tmp_path: Path) -> None:
    (tmp_path / "garbage.toml").write_bytes(b"\xff\xfe\x00 not toml")
    (tmp_path / "ok.toml").write_text((SAMPLES / "minimal.toml").read_text())
    result = cli("validate", tmp_path / "garbage.toml", tmp_path / "ok.toml", "--format", "json")
    files = json.loads(result.stdout)["files"]
    assert [f["valid"] for f in files] == [False, True]
    assert files[0]["diagnostics"][0]["code"] == "toml_syntax"
    assert files[0]["diagnostics"][0]["message"] == "file is not valid UTF-8 (byte 0)"
    assert result.exit_code == 1


@needs_corpus
def test_catalog_override(tmp_path: Path) -> None:
    catalog = tmp_path / "models.json"
    catalog.write_text(
        json.dumps(
            {
                "catalog": "custom",
                "image_generation_providers": ["gemini"],
                "models": [{"id": "gpt-5.2", "provider": "openai"}],
            }
        )
    )
    path = CORPUS / "14_mobkit_fallback_with_stale_mob_tasks_key.toml"
    assert cli("validate", path).exit_code == 1
    assert cli("validate", path, "--catalog", catalog).exit_code == 0
    # the replacement is whole: models of the bundled catalogue are now unknown
    assert cli("validate", CORPUS / "01_coding_swarm_mob.toml", "--catalog", catalog).exit_code == 1


def test_malformed_catalog_is_a_usage_error(tmp_path: Path) -> None:
    catalog = tmp_path / "models.json"
    catalog.write_text('{"catalog": "x", "models": "nope"}')
    result = cli("validate", SAMPLES / "minimal.toml", "--catalog", catalog)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error[invalid_catalog]: malformed model catalogue {catalog}:")
    missing = cli("validate", SAMPLES / "minimal.toml", "--catalog", tmp_path / "nope.json")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error[invalid_catalog]: cannot read catalogue")
    endless = cli("validate", SAMPLES / "minimal.toml", "--catalog", "/dev/zero")  # was OOM
    assert endless.exit_code == 2
    assert endless.stderr == (
        "error[invalid_catalog]: cannot read catalogue /dev/zero: [Errno 22] not a regular file "
        "(a FIFO, device or directory): '/dev/zero'\n"
    )


def test_internal_error_is_exit_70_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The line names the exception's type and the innermost function of mobctl it passed
    through, never its text (which may quote a value read from the store, a secret); the
    traceback, text included, is behind MOBCTL_DEBUG=1."""
    import mobctl.api

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("invalid literal: 'sk-live-SECRET-TOKEN'")

    monkeypatch.setattr(mobctl.api, "validate", boom)
    result = cli("validate", SAMPLES / "minimal.toml")
    assert result.exit_code == 70
    assert result.stderr.splitlines() == [
        "error[internal]: this is a bug in mobctl 0.1.0: RuntimeError in "
        "mobctl.cli.definition_commands.validate",
        "hint: re-run with MOBCTL_DEBUG=1 for the traceback and report it",
    ]
    monkeypatch.setenv("MOBCTL_DEBUG", "1")
    debug = cli("validate", SAMPLES / "minimal.toml")
    assert "Traceback (most recent call last)" in debug.stderr
    assert "sk-live-SECRET-TOKEN" in debug.stderr
    assert debug.exit_code == 70


def test_keyboard_interrupt_is_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import mobctl.api

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mobctl.api, "validate", interrupted)
    result = cli("validate", SAMPLES / "minimal.toml")
    assert result.exit_code == 130
    assert result.stderr == "error[interrupted]: interrupted\n"


def test_real_process_text_json_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "demo.toml").write_text(BAD)
    text = mobctl_process("validate", "demo.toml", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert text.returncode == 1
    assert "\x1b[" not in text.stdout
    assert text.stdout.endswith("1 error, 1 warning in 1 file\n")
    ok = mobctl_process("validate", SAMPLES / "minimal.toml", "--format", "json")
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["summary"] == {"files": 1, "errors": 0, "warnings": 0}
    usage = mobctl_process("validate", "nope.toml", cwd=tmp_path)
    assert usage.returncode == 2
    assert usage.stderr.startswith("error[path_not_found]")


def _run_in_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run mobctl with stdout and stderr on a pseudo-terminal; return (exit code, output)."""
    import pty
    import shutil
    import subprocess
    import sys

    master, slave = pty.openpty()
    exe = shutil.which("mobctl")
    command = [exe] if exe else [sys.executable, "-m", "mobctl"]
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    process = subprocess.Popen(
        [*command, *args], cwd=cwd, stdout=slave, stderr=slave, env=base | env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = process.wait(timeout=60)
    os.close(master)
    return code, b"".join(chunks).decode()


def test_terminal_output_shows_source_and_caret(tmp_path: Path) -> None:
    """Under a pseudo-terminal the text format adds the source line and a caret, in colour."""
    import re

    (tmp_path / "demo.toml").write_text(BAD)
    code, output = _run_in_terminal(
        ["validate", "demo.toml"], tmp_path, {"COLUMNS": "200", "TERM": "xterm"}
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    assert "\x1b[" in output
    lines = plain.splitlines()
    index = next(i for i, line in enumerate(lines) if 'collection_policy = "any"' in line)
    assert lines[index + 1].index("^") == lines[index].index('"any"')
    assert code == 1


def test_no_color_is_honoured_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "demo.toml").write_text(BAD)
    code, output = _run_in_terminal(
        ["validate", "demo.toml"], tmp_path, {"COLUMNS": "200", "TERM": "xterm", "NO_COLOR": "1"}
    )
    assert "\x1b[" not in output
    assert "^" in output  # still a terminal: the caret stays
    assert code == 1


def test_definitions_only_skips_named_files_that_are_not_definitions(tmp_path: Path) -> None:
    (tmp_path / "fixtures.toml").write_text('[[reply]]\noutput = "x"\n')
    (tmp_path / "s.test.toml").write_text('[[case]]\nname = "n"\nmob = "m.toml"\n')
    (tmp_path / "bad.toml").write_text('[mob]\nid = "bad"\n')
    files = [tmp_path / "fixtures.toml", tmp_path / "s.test.toml", tmp_path / "bad.toml"]
    everything = cli("validate", *files)
    assert "fixtures.toml" in everything.stdout and "s.test.toml" in everything.stdout
    only = cli("validate", *files, "--definitions-only")
    assert only.stdout == (
        f"{tmp_path / 'bad.toml'}:1:1: error[empty_profiles] profiles: mob definition must "
        "define at least one profile\n1 error, 0 warnings in 1 file\n"
    )
    assert only.exit_code == 1
    none = cli("validate", tmp_path / "fixtures.toml", "--definitions-only")
    assert (none.exit_code, none.stdout) == (0, "0 errors, 0 warnings in 0 files\n")


def test_item14_a_directory_with_no_definitions_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said `0 errors, 0 warnings in 0 files` and exited 0: a CI gate that checks nothing
    passed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mobs").mkdir()
    (tmp_path / "mobs" / "fixtures.toml").write_text('[[reply]]\noutput = "x"\n')  # not one
    (tmp_path / "mobs" / "notes.md").write_text("# not one either\n")
    stderr = (
        "error[no_definitions]: no definitions under 'mobs': no .toml or .json file there has "
        "mob, id, profiles or flows at its top level\n"
        "hint: name the directory that holds your mob files (a check of nothing never passes)\n"
    )
    for args in (["mobs"], ["mobs", "--format", "sarif"], [str(SAMPLES / "minimal.toml"), "mobs"]):
        result = cli("validate", *args)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", stderr)
    (tmp_path / "mobs" / "hello.toml").write_text((SAMPLES / "minimal.toml").read_text())
    found = cli("validate", "mobs")
    assert (found.exit_code, found.stdout) == (0, "0 errors, 0 warnings in 1 file\n")


def test_item14_sarif_uris_are_relative_to_srcroot(
    bad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Absolute or ./ paths made code scanning miss the repository's files."""
    repo = tmp_path / "repo"
    (repo / "mobs dir").mkdir(parents=True)
    inside = repo / "mobs dir" / "demo.toml"
    inside.write_text(bad.read_text())
    monkeypatch.chdir(repo)
    for argument in ("mobs dir/demo.toml", "./mobs dir/demo.toml", str(inside), "mobs dir"):
        run = json.loads(cli("validate", argument, "--format", "sarif").stdout)["runs"][0]
        assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.as_uri() + "/"}}
        for result in run["results"]:
            assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
                "uri": "mobs%20dir/demo.toml",
                "uriBaseId": "%SRCROOT%",
            }
    outside = json.loads(cli("validate", bad, "--format", "sarif").stdout)["runs"][0]
    for result in outside["results"]:  # not under the root: its own absolute URI
        assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
            "uri": bad.as_uri()
        }
