"""Turns in flight: the worker threads that run drivers, their deadlines, their transcripts,
and stopping them.

Workers only run turns, write each turn's transcript, and report (``TurnDone`` on
``reports``); they never touch the run state, which the scheduler's main thread owns. At most
``max_concurrency`` turns of a run are in flight (``--max-concurrency``); the others wait for a
worker, and a turn's deadline counts from its start. A turn's deadline and a cancel set its
stop event; the driver must then kill whatever the turn started and return promptly.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from mobctl.clock import timestamp
from mobctl.drivers.base import (
    Canceled,
    DispatchError,
    Drivers,
    Failed,
    Member,
    Outcome,
    TurnRequest,
)
from mobctl.engine.deadlines import Deadlines
from mobctl.engine.reasons import clip_reason
from mobctl.engine.records import StepTask, TurnDone
from mobctl.engine.transcripts import TranscriptWriter

DEFAULT_CONCURRENCY = 16
MAX_CONCURRENCY = 1024


class Turns:
    def __init__(
        self,
        drivers: Drivers,
        *,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        transcripts: TranscriptWriter | None = None,
    ) -> None:
        self.drivers = drivers
        self.transcripts = transcripts
        self.reports: queue.Queue[TurnDone] = queue.Queue()
        self.deadlines = Deadlines()
        self._lock = threading.Lock()  # guards ``_stops``
        self._stops: set[threading.Event] = set()
        self._halted = False  # the run is stopping: a turn not started yet never starts
        self._queued: list[tuple[StepTask, Member, TurnRequest]] = []
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="turn")

    def queue(self, task: StepTask, member: Member, request: TurnRequest) -> None:
        """A dispatched turn, started at the next ``start_queued`` (once its dispatch is
        written)."""
        self._queued.append((task, member, request))

    def reject(self, task: StepTask, member: Member, error: DispatchError) -> None:
        """A turn refused before it started (a dispatch error): reported like any other."""
        self.reports.put(TurnDone(task, member, error, False))

    def start_queued(self) -> None:
        queued, self._queued = self._queued, []
        for task, member, request in queued:
            self._pool.submit(self._work, task, member, request)

    def drop_queued(self) -> list[StepTask]:
        """The turns that never started (a run-fatal error before the flush): the tasks they
        belonged to, once per turn."""
        queued, self._queued = self._queued, []
        return [task for task, _, _ in queued]

    def _work(self, task: StepTask, member: Member, request: TurnRequest) -> None:
        """On a worker thread: run the turn and report."""
        if self._halted:  # it waited for a worker while the run was stopped: never started
            self.reports.put(TurnDone(task, member, Canceled(), False))
            return
        try:
            outcome, timed_out = self.run(request, member, task.timeout_ms)
        except Exception as exc:  # its transcript could not be written: the run stops (a
            # StoreError is the store's to report; anything else is a bug, never a hang)
            self.reports.put(TurnDone(task, member, Canceled(), False, failure=exc))
            return
        self.reports.put(TurnDone(task, member, outcome, timed_out))

    def run(
        self, request: TurnRequest, member: Member, timeout_ms: int
    ) -> tuple[Outcome | DispatchError, bool]:
        """Run one turn on this thread, bounded by ``timeout_ms``, and write its transcript:
        its outcome, and whether the deadline cut it."""
        stop = threading.Event()
        timed_out = threading.Event()
        with self._lock:
            self._stops.add(stop)

        def expire() -> None:
            timed_out.set()
            stop.set()

        started_at, began = timestamp(), time.monotonic()
        deadline = self.deadlines.add(timeout_ms / 1000, expire)
        outcome: Outcome | DispatchError
        try:
            outcome = self.drivers.for_role(member.role).run(request, stop)
        except DispatchError as exc:
            outcome = DispatchError(clip_reason(str(exc)))
        except Exception as exc:  # a driver bug: report it as a failed dispatch, never hang
            outcome = DispatchError(clip_reason(f"internal error in the driver: {exc}"))
        finally:
            self.deadlines.cancel(deadline)
            with self._lock:
                self._stops.discard(stop)
        if isinstance(outcome, Failed):  # where a driver's reason enters the engine: bounded
            outcome = dataclasses.replace(outcome, reason=clip_reason(outcome.reason))
        cut = timed_out.is_set() and not isinstance(outcome, DispatchError)
        if self.transcripts is not None:  # durable before the turn's result is recorded
            self.transcripts.write(
                request,
                outcome,
                timed_out=cut,
                started_at=started_at,
                duration_ms=round((time.monotonic() - began) * 1000),
            )
        return outcome, cut

    def stop_all(self) -> None:
        """Tell every turn in flight to stop; a turn that has not started yet never will."""
        self._halted = True
        with self._lock:
            for stop in list(self._stops):
                stop.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.deadlines.close()
