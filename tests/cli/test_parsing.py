"""One duration and time syntax for every option (issue 13 item 9): `30`, `30s`, `1m30s`,
`2h`, `1d`, RFC 3339 for absolute times; huge values clamp, nothing crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobctl.cli.parsing import MAX_DURATION_MS, parse_duration_ms, parse_time
from mobctl.errors import UsageError
from tests.conftest import SAMPLES, cli

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30", 30_000),
        ("0", 0),
        ("2.5", 2_500),
        ("30s", 30_000),
        ("500ms", 500),
        ("1m30s", 90_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("1h30m", 5_400_000),
        ("1.5h", 5_400_000),
        ("1d", 86_400_000),
        ("1d2h3m4s5ms", 93_784_005),
        (" 10s ", 10_000),
        ("36500d", MAX_DURATION_MS),
        ("36501d", MAX_DURATION_MS),
        ("9" * 5000, MAX_DURATION_MS),
        ("9" * 5000 + "d" + "9" * 5000 + "ms", MAX_DURATION_MS),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text, "--timeout") == ms


@pytest.mark.parametrize("text", ["", "soon", "-5", "1e5", "1 m", "1m30", "s", "1y", "1.2.3s"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration_ms(text, "--timeout")
    assert caught.value.message == f"--timeout {text!r} is not a duration"
    assert caught.value.hint == "use seconds (30) or a duration such as 500ms, 30s, 1m30s, 2h or 1d"


@given(st.text(max_size=40))
def test_any_text_is_a_duration_within_100_years_or_a_usage_error(text: str) -> None:
    try:
        ms = parse_duration_ms(text, "--timeout")
    except UsageError:
        return
    assert 0 <= ms <= MAX_DURATION_MS


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("30", NOW - timedelta(seconds=30)),
        ("1m30s", NOW - timedelta(seconds=90)),
        ("1d", NOW - timedelta(days=1)),
        ("9" * 400 + "d", NOW - timedelta(days=36_500)),
        ("2026-04-30T10:00:00Z", datetime(2026, 4, 30, 10, tzinfo=UTC)),
        ("2026-04-30T10:00:00", datetime(2026, 4, 30, 10, tzinfo=UTC)),
        ("2026-04-30T12:00:00+02:00", datetime(2026, 4, 30, 10, tzinfo=UTC)),
    ],
)
def test_times(text: str, moment: datetime) -> None:
    assert parse_time(text, "--since", now=NOW) == moment


def test_every_duration_option_takes_the_same_syntax(tmp_path: Path) -> None:
    store = tmp_path / "store"
    at = ("--store", store)
    ran = cli("run", SAMPLES / "minimal.toml", "-p", "name=A", "--timeout", "1m30s",
              "--lock-timeout", "1m30s", "-o", "name", *at)  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    run_id = ran.stdout.strip()
    for args in (
        ["run", "hello", "-p", "name=B", "--timeout", "90"],
        ["runs", "list", "--lock-timeout", "10s"],
        ["runs", "cancel", "hello", run_id, "--wait", "--timeout", "1m30s"],
        ["events", "tail", "hello", "--since", "30", "--until", "0"],
        ["events", "tail", "hello", "--since", "1m30s"],
        ["events", "prune", "hello", "--older-than", "3650", "--yes"],
        ["events", "prune", "hello", "--older-than", "2026-01-01T00:00:00Z", "--yes"],
        # huge values clamp to 100 years: never a crash, never a refusal
        ["run", "hello", "-p", "name=C", "--timeout", "9" * 400 + "d"],
        ["runs", "list", "--lock-timeout", "9" * 400],
        ["runs", "cancel", "hello", run_id, "--wait", "--timeout", "1" + "0" * 30 + "h"],
        ["events", "tail", "hello", "--since", "9" * 400 + "d", "--until", "2100-01-01T00:00:00Z"],
        ["events", "prune", "hello", "--older-than", "9" * 400 + "d", "--yes"],
    ):
        result = cli(*args, *at)
        assert result.exit_code == 0, (args, result.stderr)
    for option, args in (
        ("--lock-timeout", ["runs", "list", "--lock-timeout", "soon"]),
        ("--timeout", ["run", "hello", "--timeout", "1y"]),
    ):
        refused = cli(*args, *at)
        assert (refused.exit_code, refused.stderr) == (
            2,
            f"error[usage]: {option} {args[-1]!r} is not a duration\n"
            "hint: use seconds (30) or a duration such as 500ms, 30s, 1m30s, 2h or 1d\n",
        )


def test_a_params_file_that_never_ends_is_a_usage_error(tmp_path: Path) -> None:
    # /dev/zero was read until memory ran out
    result = cli("run", SAMPLES / "minimal.toml", "--params", "@/dev/zero", "--store", tmp_path)
    assert result.stderr == "error[usage]: params file /dev/zero is larger than 64 MiB\n"
    assert result.exit_code == 2
    (tmp_path / "p.json").write_text('{"name": "Ada"}')
    ran = cli("run", SAMPLES / "minimal.toml", "--params", f"@{tmp_path / 'p.json'}", "--json",
              "--store", tmp_path / "st")  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
