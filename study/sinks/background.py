"""Sinks off the driver loop's thread. The Tune callback's calls only put events on a bounded queue; a
thread of the sinks' own takes everything queued (at most every ``linger_s``, so that results arriving
together are written together) and hands it to its sinks as one batch. A full queue blocks the driver:
back-pressure rather than unbounded memory. What a crash loses is the queued tail, at most ``linger_s`` of
results plus what was being written; the callback flushes the Parquet sink whenever Tune snapshots the
experiment, so that a trial never resumes past a result that is not in Parquet.

:class:`SinkLoop` is that thread's loop; ``study.sinks.process`` runs the same loop in a child process.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from study.sinks.base import EpochResult, ResultSink, SinkEvent, TrialEnd, TrialStart

MAX_QUEUE = 20000  # events; about 40 s of 512 results/s
MAX_BATCH = 5000


class Barrier:
    """Released by the loop once everything queued before it is written."""

    def __init__(self, token: int = 0) -> None:
        self.token = token
        self.done = threading.Event()

    def __reduce__(self):
        return Barrier, (self.token,)


class Action:
    """Run by the loop with its sinks, after everything queued before it is written."""

    def run(self, sinks: list[ResultSink]) -> None:
        raise NotImplementedError


class MissedResults(Action):
    """Tells each sink how many results never reached it (a call that can cross to another process)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def run(self, sinks: list[ResultSink]) -> None:
        for sink in sinks:
            sink.missed_results(self.count)


class _Stop:
    def __reduce__(self):
        return "STOP"  # unpickles as this module's STOP: `item is STOP` holds in another process too


STOP = _Stop()


class SinkLoop:
    """Takes items from ``inbox`` (a ``queue.Queue`` or a ``multiprocessing`` queue), waiting up to
    ``linger_s`` after a batch unless ``hurry`` is set, and hands the events among them to ``sinks`` (in
    this order) as one batch; actions and barriers are handled in their place in the order. A sink's error
    goes to :meth:`fail`; until it is taken (``error`` cleared), nothing more is written."""

    def __init__(self, sinks: list[ResultSink], inbox: Any, hurry: Any, linger_s: float) -> None:
        self.sinks = sinks
        self.inbox = inbox
        self.hurry = hurry
        self.linger_s = linger_s
        self.batches = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        """Until the stop marker, or until :meth:`next_item` returns None."""
        last = 0.0
        while True:
            item = self.next_item()
            if item is None:
                return
            wait = self.linger_s - (time.monotonic() - last)
            if wait > 0 and not self.hurry.is_set():
                self.hurry.wait(wait)
            self.hurry.clear()
            items = [item]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            last = time.monotonic()
            if not self.handle(items):
                return

    def next_item(self) -> Any:
        return self.inbox.get()

    def handle(self, items: list[Any]) -> bool:
        """Writes ``items``' events in order, runs actions, releases barriers; False at the stop marker."""
        events: list[SinkEvent] = []
        for item in items:
            if isinstance(item, (TrialStart, EpochResult, TrialEnd)):
                events.append(item)
                continue
            self.write(events)
            events = []
            if isinstance(item, Barrier):
                self.release(item)
            elif isinstance(item, Action):
                self.guarded(lambda item=item: item.run(self.sinks))
            elif item is STOP:
                return False
        self.write(events)
        return True

    def write(self, events: list[SinkEvent]) -> None:
        if not events:
            return
        self.batches += 1
        for sink in self.sinks:
            self.guarded(lambda sink=sink: sink.write_batch(events))

    def release(self, barrier: Barrier) -> None:
        barrier.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error

    def guarded(self, action: Callable[[], Any]) -> None:
        if self.error is not None:  # a sink failed: nothing more is written until the driver hears of it
            return
        try:
            action()
        except BaseException as err:  # noqa: BLE001 - raised again on the driver's side
            self.fail(err)


class BackgroundSinks(ResultSink):
    """``sinks`` (in this order) behind a bounded queue and one thread. An error a sink raises stops this
    thread's writing and is raised again to the driver on its next call."""

    def __init__(self, sinks: list[ResultSink], name: str = "sinks", linger_s: float = 0.5,
                 max_queue: int = MAX_QUEUE) -> None:
        self.sinks = sinks
        self.linger_s = linger_s
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._hurry = threading.Event()
        self._loop = SinkLoop(sinks, self._queue, self._hurry, linger_s)
        self._thread = threading.Thread(target=self._loop.run, name=f"smoothstudy-{name}", daemon=True)
        self._thread.start()

    @property
    def batches(self) -> int:
        return self._loop.batches

    @property
    def holds_truth(self) -> bool:  # type: ignore[override]
        return any(sink.holds_truth for sink in self.sinks)

    def epochs_seen(self) -> dict[str, set[int]]:
        """What the sinks held when they were built (read before the first event is queued)."""
        seen: dict[str, set[int]] = {}
        for sink in self.sinks:
            for trial_id, epochs in sink.epochs_seen().items():
                seen.setdefault(trial_id, set()).update(epochs)
        return seen

    def running_trials(self) -> set[str]:
        """As :meth:`epochs_seen`: call it once everything queued is written (after :meth:`flush`)."""
        return set().union(*(sink.running_trials() for sink in self.sinks))

    # -- ResultSink (from the driver's thread) -------------------------------------------------------
    def trial_started(self, start: TrialStart) -> None:
        self._put(start)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, Any]) -> None:
        self._put(EpochResult(trial_id, epoch, metrics))

    def trial_ended(self, end: TrialEnd) -> None:
        self._put(end)
        self._hurry.set()  # a trial's end is written without waiting for more

    def flush(self) -> None:
        """Returns once everything queued before this call is written."""
        barrier = Barrier()
        self._put(barrier)
        self._hurry.set()
        while not barrier.done.wait(1.0):
            if not self._thread.is_alive():
                break
        self._raise()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(STOP)
            self._hurry.set()
            self._thread.join()
        self._raise()
        for sink in self.sinks:
            sink.close()

    # -- internals -----------------------------------------------------------------------------------
    def _put(self, item: Any) -> None:
        self._raise()
        self._queue.put(item)

    def _raise(self) -> None:
        if self._loop.error is not None:
            error, self._loop.error = self._loop.error, None
            raise error
