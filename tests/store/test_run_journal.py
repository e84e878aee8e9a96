"""The run journal (store/journal.py): base snapshot + change lines, folds, torn tails, and
readers in other processes that cache what they read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobctl.errors import StoreCorrupt
from mobctl.store.changes import Output, RunExpectation, RunMutation
from mobctl.store.directory import DirectoryStore
from mobctl.store.models import FrameSnapshot, StepLedgerEntry
from tests.store.conformance import MOB, new_run, state


def open_store(root: Path) -> DirectoryStore:
    return DirectoryStore(root, lock_timeout=5)


def document(store: DirectoryStore, run_id: str) -> dict[str, Any]:
    run = store.runs(MOB).get_run(run_id)
    assert run is not None
    return run.document()


def step(step_id: str, status: str = "completed") -> StepLedgerEntry:
    return StepLedgerEntry(step_id=step_id, status=status, timestamp="2026-01-01T00:00:00Z")


def test_a_mutation_is_one_journal_line_and_the_end_folds_it(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    run = new_run()
    store.runs(MOB).create_run(run)
    runs = store.runs(MOB)
    assert runs.mutate_run(
        run.run_id, RunExpectation(), RunMutation(outputs=[Output("a", {"x": 1})])
    )
    journal = runs.journal_path(run.run_id)
    lines = journal.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"seq": 1, "ops": [["set", ["root_step_outputs", "a"], {"x": 1}]]}
    ]
    base = json.loads(runs.path(run.run_id).read_bytes())
    assert base["root_step_outputs"] == {}  # not folded yet
    assert open_store(tmp_path / "s").runs(MOB).get_run(run.run_id).root_step_outputs == {
        "a": {"x": 1}
    }
    assert runs.cas_run_status(run.run_id, "running", "completed")
    assert not journal.exists()  # a finished run is one plain JSON file
    base = json.loads(runs.path(run.run_id).read_bytes())
    assert (base["status"], base["root_step_outputs"]) == ("completed", {"a": {"x": 1}})
    assert base["mobctl"]["journal_seq"] == 2


def test_a_torn_line_is_ignored_then_cut_by_the_next_writer(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    run = new_run()
    runs = store.runs(MOB)
    runs.create_run(run)
    runs.mutate_run(run.run_id, RunExpectation(), RunMutation(outputs=[Output("a", 1)]))
    journal = runs.journal_path(run.run_id)
    good = journal.read_bytes()
    with journal.open("ab") as handle:
        handle.write(b'{"seq":2,"ops":[["set",["status"],"fa')  # a crash mid-append
    reader = open_store(tmp_path / "s").runs(MOB)
    assert reader.get_run(run.run_id).status == "running"
    assert reader.get_run(run.run_id).root_step_outputs == {"a": 1}
    runs.mutate_run(run.run_id, RunExpectation(), RunMutation(outputs=[Output("b", 2)]))
    data = journal.read_bytes()
    assert data.startswith(good) and b'"fa' not in data
    assert json.loads(data.splitlines()[-1])["seq"] == 2
    assert reader.get_run(run.run_id).root_step_outputs == {"a": 1, "b": 2}


def test_a_crash_between_the_fold_and_the_journal_reset_applies_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "s")
    run = new_run()
    runs = store.runs(MOB)
    runs.create_run(run)
    real = runs.files.write_atomic

    def killed_after_the_base(path: Path, data: bytes, **options: Any) -> None:
        real(path, data, **options)
        if path.suffix == ".json":
            raise SystemExit("killed between the two writes")

    monkeypatch.setattr(runs.files, "write_atomic", killed_after_the_base)
    ending = RunMutation(status="completed", step_entries=[step("a")])
    with pytest.raises(SystemExit):
        runs.mutate_run(run.run_id, RunExpectation(), ending)
    monkeypatch.undo()
    assert runs.journal_path(run.run_id).exists()  # its line is in the base too
    fresh = open_store(tmp_path / "s").runs(MOB)
    assert [e.step_id for e in fresh.get_run(run.run_id).step_ledger] == ["a"]
    fresh.mutate_run(run.run_id, RunExpectation(), RunMutation(mobctl={"terminal_detail": "x"}))
    again = open_store(tmp_path / "s").runs(MOB).get_run(run.run_id)
    assert [e.step_id for e in again.step_ledger] == ["a"]
    assert again.mobctl is not None and again.mobctl.terminal_detail == "x"


def test_a_corrupt_line_mid_journal_is_reported_with_its_file(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    run = new_run()
    runs = store.runs(MOB)
    runs.create_run(run)
    for key in "ab":
        runs.mutate_run(run.run_id, RunExpectation(), RunMutation(outputs=[Output(key, 1)]))
    journal = runs.journal_path(run.run_id)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"garbage\n" + lines[1])
    with pytest.raises(StoreCorrupt) as raised:
        open_store(tmp_path / "s").runs(MOB).get_run(run.run_id)
    assert raised.value.message.startswith(f"run journal {journal} is corrupt: unreadable journal")
    assert raised.value.message.endswith(" at byte 0")


operations = st.lists(
    st.tuples(
        st.integers(0, 2),  # which of three store instances (processes) writes
        st.sampled_from(["state", "frame", "output", "ledger", "fold"]),
        st.integers(0, 5),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_cached_readers_always_see_what_a_fresh_reader_sees(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, str, int]]
) -> None:
    """Three store instances (as three processes would) interleave writes, some forcing folds;
    after every write each instance (with its cache) reads exactly what a fresh one reads."""
    root = tmp_path_factory.mktemp("journal")
    stores = [open_store(root) for _ in range(3)]
    run = new_run()
    stores[0].runs(MOB).create_run(run)
    for index, (who, kind, n) in enumerate(steps):
        runs = stores[who].runs(MOB)
        if kind == "state":
            runs.mutate_run(run.run_id, RunExpectation(), RunMutation(flow_state=state(n)))
        elif kind == "frame":
            mutation = RunMutation(frames={f"f{n}": FrameSnapshot(kernel_state={"i": index})})
            runs.mutate_run(run.run_id, RunExpectation(), mutation)
        elif kind == "output":
            runs.mutate_run(
                run.run_id, RunExpectation(), RunMutation(outputs=[Output(f"o{n}", index)])
            )
        elif kind == "ledger":
            runs.append_step_entry_if_absent(run.run_id, step(f"s{n}", "dispatched"))
        else:
            loaded = runs._load(run.run_id, writer=True)
            assert loaded is not None
            runs._fold(run.run_id, loaded)
        expected = document(open_store(root), run.run_id)
        for other in stores:
            assert document(other, run.run_id) == expected


def test_item16_a_loop_output_journals_only_what_changed(tmp_path: Path) -> None:
    """A loop iteration's output is a new iteration map and its key, never the loop's whole
    history again: the line of iteration 60 is no bigger than the line of iteration 1 (with
    whole histories, a loop of 10 KB outputs reached the 1 MiB record cap near iteration 105).
    Gaps are padded with empty maps, and several outputs of one change land in order."""
    store = open_store(tmp_path / "s")
    run = new_run()
    runs = store.runs(MOB)
    runs.create_run(run)
    pad = "x" * 10_000
    sizes = []
    for k in range(60):
        output = Output("s", {"k": k, "pad": pad}, ("l", k))
        assert runs.mutate_run(run.run_id, RunExpectation(), RunMutation(outputs=[output]))
        lines = runs.journal_path(run.run_id).read_bytes().splitlines()
        sizes += [len(lines[-1])] if lines else []  # none: just folded into the base
    assert len(sizes) > 50
    assert max(sizes) < 10_200  # the output and a few dozen bytes, at iteration 1 and at 60
    last = json.loads(runs.journal_path(run.run_id).read_bytes().splitlines()[-1])
    assert last["ops"] == [
        ["push", ["loop_iteration_outputs", "l"], {}],
        ["set", ["loop_iteration_outputs", "l", 59, "s"], {"k": 59, "pad": pad}],
    ]
    outputs = [Output("t", 1, ("m", 2)), Output("u", 2, ("m", 0)), Output("t", 3, ("l", 59))]
    assert runs.mutate_run(run.run_id, RunExpectation(), RunMutation(outputs=outputs))
    history = open_store(tmp_path / "s").runs(MOB).get_run(run.run_id).loop_iteration_outputs
    assert history["m"] == [{"u": 2}, {}, {"t": 1}]
    assert history["l"] == [{"s": {"k": k, "pad": pad}} for k in range(59)] + [
        {"s": {"k": 59, "pad": pad}, "t": 3}
    ]
