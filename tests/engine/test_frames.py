"""The frame state machine (§5), with properties over random DAGs."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mobctl.engine.frames import TERMINAL, FrameState, NodeSpec, ordered_nodes


def spec(
    node: str, *deps: str, mode: str = "all", branch: str | None = None, policy: str = "escalate"
) -> NodeSpec:
    return NodeSpec(node, tuple(deps), mode, branch, policy)  # type: ignore[arg-type]


def test_order_is_kahn_with_document_order() -> None:
    specs = [spec("c", "a"), spec("a"), spec("b"), spec("d", "b", "c"), spec("e", "a")]
    assert ordered_nodes(specs) == ["a", "b", "c", "e", "d"]


def test_linear_success_and_skip_reasons() -> None:
    frame = FrameState.seed([spec("a"), spec("b", "a"), spec("c", "b")])
    assert frame.ready_queue() == ["a"]
    assert frame.admit() == "a"
    assert frame.finish("a", "Failed") == [
        ("b", "dependency 'a' failed"),
        ("c", "dependency 'b' was skipped"),
    ]
    assert frame.sealed() == "Failed"


def test_condition_false_cascades() -> None:
    frame = FrameState.seed([spec("a"), spec("b", "a")])
    frame.admit()
    assert frame.finish("a", "Skipped", "condition evaluated to false") == [
        ("b", "dependency 'a' was skipped")
    ]
    assert frame.skip_reasons == {
        "a": "condition evaluated to false",
        "b": "dependency 'a' was skipped",
    }
    assert frame.sealed() == "Completed"


def test_any_join_and_continue_policy() -> None:
    frame = FrameState.seed(
        [spec("a", policy="continue"), spec("b"), spec("j", "a", "b", mode="any")]
    )
    frame.admit()
    frame.admit()
    assert frame.finish("a", "Failed") == []
    assert frame.status["j"] == "Pending"
    frame.finish("b", "Completed")
    assert frame.status["j"] == "Ready"
    frame.admit()
    frame.finish("j", "Completed")
    assert frame.sealed() == "Completed"  # a failed with failure_policy = continue
    all_bad = FrameState.seed([spec("a"), spec("b"), spec("j", "a", "b", mode="any")])
    all_bad.admit(), all_bad.admit()
    all_bad.finish("a", "Failed")
    assert all_bad.finish("b", "Skipped", "x") == [
        ("j", "all dependencies failed, were skipped or were canceled")
    ]


def test_branch_members_are_tried_one_at_a_time() -> None:
    frame = FrameState.seed(
        [
            spec("s"),
            spec("l", "s", branch="g"),
            spec("r", "s", branch="g"),
            spec("j", "l", "r", mode="any"),
        ]
    )
    frame.admit()
    frame.finish("s", "Completed")
    assert frame.ready_queue() == ["l", "r"]
    assert frame.admit() == "l"
    assert frame.status["r"] == "Pending"
    frame.finish("l", "Skipped", "condition evaluated to false")
    assert frame.ready_queue() == ["r"]
    frame.admit()
    assert frame.finish("r", "Completed") == []
    assert frame.winners == {"g": "r"}
    frame.admit()
    frame.finish("j", "Completed")
    assert frame.sealed() == "Completed"


def test_a_winner_skips_the_rest_and_all_join_is_unreachable() -> None:
    frame = FrameState.seed(
        [spec("s"), spec("l", "s", branch="g"), spec("r", "s", branch="g"), spec("j", "l", "r")]
    )
    frame.admit()
    frame.finish("s", "Completed")
    frame.admit()
    assert frame.finish("l", "Completed") == [
        ("r", "branch 'g' was won by 'l'"),
        ("j", "dependency 'r' was skipped"),
    ]


def test_canceled_seals_canceled_and_empty_frames_complete() -> None:
    frame = FrameState.seed([spec("a")])
    frame.admit()
    frame.finish("a", "Canceled")
    assert frame.sealed() == "Canceled"
    assert FrameState.seed([]).sealed() == "Completed"


@st.composite
def dags(draw: Any) -> list[NodeSpec]:
    count = draw(st.integers(1, 12))
    specs = []
    for index in range(count):
        earlier = [f"n{i}" for i in range(index)]
        deps = draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True)) if earlier else []
        specs.append(
            NodeSpec(
                f"n{index}",
                tuple(deps),
                draw(st.sampled_from(["all", "any"])),
                draw(st.sampled_from([None, None, "g", "h"])),
                draw(st.sampled_from(["escalate", "continue"])),
            )
        )
    # author order need not be topological
    return draw(st.permutations(specs))


@settings(max_examples=300, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_random_dags_run_in_dependency_order(specs: list[NodeSpec], rng: random.Random) -> None:
    frame = FrameState.seed(specs)
    admitted: list[str] = []
    while True:
        while rng.random() < 0.7 and (node := frame.admit()) is not None:
            spec_ = frame.specs[node]
            deps = [frame.status[d] for d in spec_.depends_on]
            if spec_.depends_on:
                if spec_.mode == "all":
                    assert all(s == "Completed" for s in deps), (node, deps)
                else:
                    assert any(s == "Completed" for s in deps), (node, deps)
            assert node not in admitted  # no node runs twice in a frame
            admitted.append(node)
            running_branches = [
                frame.specs[n].branch for n in frame.running() if frame.specs[n].branch
            ]
            assert len(running_branches) == len(set(running_branches))  # one member at a time
        running = frame.running()
        if not running:
            if not frame.ready_queue():
                break  # nothing running and nothing to admit: the frame must be sealed
            continue
        node = rng.choice(running)
        outcome = rng.choice(["Completed", "Completed", "Failed", "Skipped"])
        frame.finish(
            node, outcome, "condition evaluated to false" if outcome == "Skipped" else None
        )
    assert all(status in TERMINAL for status in frame.status.values()), frame.status
    assert frame.sealed() is not None
    for branch in {s.branch for s in specs if s.branch}:
        winners = [
            n
            for n in frame.order
            if frame.specs[n].branch == branch and frame.status[n] == "Completed"
        ]
        assert len(winners) <= 1
    # skip propagation is transitive: a node whose mode-all dependency did not complete is skipped
    for node, spec_ in frame.specs.items():
        if node in admitted or not spec_.depends_on:
            continue
        assert frame.status[node] == "Skipped", (node, frame.status)


_NOT_DONE = {"Failed": "failed", "Skipped": "was skipped", "Canceled": "was canceled"}


def reference_pass(frame: FrameState, finished: str, completed: bool) -> list[tuple[str, str]]:
    """The definition of propagation (§5.4): the branch rule, then one pass over every node of
    the frame in order. The engine visits only the nodes a transition can affect; this test
    holds it to the full pass."""
    status, skipped = dict(frame.status), []
    branch = frame.specs[finished].branch

    def skip(node: str, why: str) -> None:
        status[node] = "Skipped"
        skipped.append((node, why))

    if completed and branch is not None:
        for node in frame.order:
            same = frame.specs[node].branch == branch and node != finished
            if same and status[node] not in TERMINAL and status[node] != "Running":
                skip(node, f"branch '{branch}' was won by '{finished}'")
    for node in frame.order:
        spec_ = frame.specs[node]
        if status[node] != "Pending":
            continue
        if spec_.branch is not None and any(
            o != node and frame.specs[o].branch == spec_.branch and status[o] == "Running"
            for o in frame.order
        ):
            continue
        deps = [status[d] for d in spec_.depends_on]
        if not deps:
            status[node] = "Ready"
        elif spec_.mode == "all":
            bad = next((d for d in spec_.depends_on if status[d] in _NOT_DONE), None)
            if bad is not None:
                skip(node, f"dependency '{bad}' {_NOT_DONE[status[bad]]}")
            elif all(s == "Completed" for s in deps):
                status[node] = "Ready"
        elif all(s in _NOT_DONE for s in deps):
            skip(node, "all dependencies failed, were skipped or were canceled")
        elif any(s == "Completed" for s in deps):
            status[node] = "Ready"
    frame.status_reference = status  # type: ignore[attr-defined]
    return skipped


@settings(max_examples=300, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_incremental_propagation_equals_the_full_pass(
    specs: list[NodeSpec], rng: random.Random
) -> None:
    frame = FrameState.seed(specs)
    while True:
        while rng.random() < 0.7 and frame.admit() is not None:
            pass
        running = frame.running()
        if not running:
            if not frame.ready_queue():
                break
            continue
        node = rng.choice(running)
        outcome = rng.choice(["Completed", "Completed", "Failed", "Skipped", "Canceled"])
        before = dict(frame.status)
        probe = FrameState.seed(specs)
        for key, value in before.items():
            probe.status[key] = value
        probe.status[node] = outcome
        expected = reference_pass(probe, node, outcome == "Completed")
        assert frame.finish(node, outcome, "why" if outcome == "Skipped" else None) == expected
        assert dict(frame.status) == probe.status_reference  # type: ignore[attr-defined]
        assert frame.status.ready == {n for n, s in frame.status.items() if s == "Ready"}
        assert frame.status.open == sum(1 for s in frame.status.values() if s not in TERMINAL)
