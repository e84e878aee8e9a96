"""Many turns in flight on one driver (one event loop, one SDK client)."""

from __future__ import annotations

import threading

from mobctl.drivers.base import Completed, Member
from tests.drivers.llm.conftest import request, run
from tests.fakes.provider_server import Recorded, Status, Text


def test_fifty_members_at_once(fake, make_driver) -> None:
    """The server answers no request before all fifty are in flight."""
    all_in = threading.Barrier(50, timeout=60)

    def answer(sent: Recorded) -> Text | Status:
        try:
            all_in.wait()
        except threading.BrokenBarrierError:
            return Status(400, "the turns were not all in flight together")
        return Text(f"done: {sent.body['messages'][0]['content']}")

    fake.default = answer
    driver = make_driver()
    outcomes: dict[str, object] = {}
    start = threading.Barrier(50)

    def member(n: int) -> None:
        start.wait()
        turn = request(member=Member(f"w-{n}", 0, "writer"), message=f"task {n}")
        outcomes[f"w-{n}"] = run(driver, turn)

    threads = [threading.Thread(target=member, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(fake.requests) == 50
    assert outcomes == {
        f"w-{n}": Completed(
            f"done: task {n}",
            usage=outcomes[f"w-{n}"].usage,  # type: ignore[attr-defined]
            transcript=outcomes[f"w-{n}"].transcript,  # type: ignore[attr-defined]
        )
        for n in range(50)
    }
