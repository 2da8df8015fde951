"""Sinks off the driver loop's thread. The Tune callback's calls only put events on a bounded queue; a
thread of the sinks' own takes everything queued (at most every ``linger_s``, so that results arriving
together are written together) and hands it to its sinks as one batch. A full queue blocks the driver:
back-pressure rather than unbounded memory. What a crash loses is the queued tail, at most ``linger_s`` of
results plus what was being written; the callback flushes at each trial checkpoint so that a trial never
resumes past a result that is not in Parquet.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from study.sinks.base import EpochResult, SinkEvent, TrialEnd, TrialStart, write_events

MAX_QUEUE = 20000  # events; about 40 s of 512 results/s
MAX_BATCH = 5000


class _Barrier:
    def __init__(self) -> None:
        self.done = threading.Event()


class _Call:
    def __init__(self, action: Callable[[], Any]) -> None:
        self.action = action


_STOP = object()


class BackgroundSinks:
    """``sinks`` (in this order) behind a bounded queue and one thread. An error a sink raises stops this
    thread's writing and is raised again to the driver on its next call."""

    def __init__(self, sinks: list[Any], name: str = "sinks", linger_s: float = 0.5,
                 max_queue: int = MAX_QUEUE) -> None:
        self.sinks = sinks
        self.linger_s = linger_s
        self.batches = 0
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._hurry = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"smoothstudy-{name}", daemon=True)
        self._thread.start()

    # -- ResultSink (from the driver's thread) -------------------------------------------------------
    def trial_started(self, start: TrialStart) -> None:
        self._put(start)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, Any]) -> None:
        self._put(EpochResult(trial_id, epoch, metrics))

    def trial_ended(self, end: TrialEnd) -> None:
        self._put(end)
        self._hurry.set()  # a trial's end is written without waiting for more

    def call(self, action: Callable[[], Any]) -> None:
        """``action()`` on the sinks' thread, after everything queued before it."""
        self._put(_Call(action))

    def flush(self) -> None:
        """Returns once everything queued before this call is written."""
        barrier = _Barrier()
        self._put(barrier)
        self._hurry.set()
        while not barrier.done.wait(1.0):
            if not self._thread.is_alive():
                break
        self._raise()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
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
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        last = 0.0
        while True:
            item = self._queue.get()
            wait = self.linger_s - (time.monotonic() - last)
            if wait > 0 and not self._hurry.is_set():
                self._hurry.wait(wait)
            self._hurry.clear()
            items = [item]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            last = time.monotonic()
            if not self._handle(items):
                return

    def _handle(self, items: list[Any]) -> bool:
        """Writes ``items``' events in order, runs calls, releases barriers; False at the stop marker."""
        events: list[SinkEvent] = []
        for item in items:
            if isinstance(item, (TrialStart, EpochResult, TrialEnd)):
                events.append(item)
                continue
            self._write(events)
            events = []
            if isinstance(item, _Barrier):
                item.done.set()
            elif isinstance(item, _Call):
                self._guarded(item.action)
            elif item is _STOP:
                return False
        self._write(events)
        return True

    def _write(self, events: list[SinkEvent]) -> None:
        if not events:
            return
        self.batches += 1
        for sink in self.sinks:
            self._guarded(lambda sink=sink: write_events(sink, events))

    def _guarded(self, action: Callable[[], Any]) -> None:
        if self._error is not None:  # a sink failed: nothing more is written until the driver hears of it
            return
        try:
            action()
        except BaseException as err:  # noqa: BLE001 - raised again on the driver's thread
            self._error = err
