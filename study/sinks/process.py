"""Sinks in a child process of their own, so that their CPU work (MLflow's SQL store: ~20 ms a result) does
not share the driver's GIL. The driver keeps only a bounded ``multiprocessing`` queue; the child builds its
sinks from a picklable factory (the sinks themselves, open database clients, are never pickled) and runs
:class:`~study.sinks.background.SinkLoop` on that queue: the same batches as a background thread.

When the child falls behind and the queue is full, ``when_full`` decides:

- ``"block"``: the driver waits for room (back-pressure), as with a background thread;
- ``"drop"``: an epoch result that does not fit is dropped, counted, and the driver warns once; a trial's
  start and end wait on the driver's side (never blocking it) and go out first when there is room, with
  the results behind them dropped meanwhile so that the order holds. The count reaches the sinks'
  ``missed_results(count)`` at the next flush and at close. Meant for sinks that are a view of another
  (MLflow of Parquet), whose back-fill (``smoothstudy mlflow-sync``) restores what was dropped.

A trial's artifacts folder is copied when its end is queued (the child deletes the copy once written), so the
driver need not wait for this child before Ray deletes the folder. As with any spawned process, a script
that builds these at import time needs the ``if __name__ == "__main__":`` guard (the child imports it). ``flush`` is a barrier the child
acknowledges; an error a sink raises in the child is raised again on the driver's next call, as is the
child's unexpected exit. The child ignores Ctrl-C (the driver decides when it ends: ``close``), runs at a
lower CPU priority (``nice``) and exits, writing nothing more, when the driver process is gone.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import queue
import shutil
import signal
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from study.sinks.background import MAX_QUEUE, STOP, Barrier, MissedResults, SinkLoop
from study.sinks.base import EpochResult, ResultSink, SinkEvent, TrialEnd, TrialStart

PARENT_CHECK_S = 1.0  # how often an idle child looks whether the driver is still there


class SinkProcessError(RuntimeError):
    """A sink's error in the child that could not be sent as itself, or the child's unexpected exit."""


class ProcessSinks(ResultSink):
    """The sinks ``factory()`` returns, built and run in a child process (``multiprocessing``, spawn)."""

    copies_artifacts = True  # a trial's artifacts folder is copied when its end is queued

    def __init__(self, factory: Callable[[], list[ResultSink]], name: str = "sinks", linger_s: float = 0.5,
                 max_queue: int = MAX_QUEUE, when_full: str = "block", nice: int = 0) -> None:
        if when_full not in ("block", "drop"):
            raise ValueError(f"when_full={when_full!r}; allowed: 'block', 'drop'")
        self.name = name
        self.when_full = when_full
        self.dropped = 0
        self._reported = 0  # of `dropped`, what the sinks were told
        self._held: list[SinkEvent] = []  # starts and ends waiting for room ("drop")
        self._tokens = itertools.count(1)
        self._errors: list[BaseException] = []
        self._stopping = False
        self._gone = False  # the child exited and the driver was told: nothing more is sent
        self._eof = False  # the child's end of the reply pipe is closed
        self._staging: Path | None = None
        context = multiprocessing.get_context("spawn")
        self._inbox = context.Queue(max_queue)
        self._hurry = context.Event()
        self._replies, child_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child_main, args=(factory, self._inbox, self._hurry, child_end, linger_s, nice),
            name=f"smoothstudy-{name}", daemon=True,
        )
        self._process.start()
        child_end.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    # -- ResultSink (from the driver's thread) -------------------------------------------------------
    def trial_started(self, start: TrialStart) -> None:
        self._offer(start, droppable=False)

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, Any]) -> None:
        self._offer(EpochResult(trial_id, epoch, metrics), droppable=True)

    def trial_ended(self, end: TrialEnd) -> None:
        if end.artifacts_dir is not None and Path(end.artifacts_dir).is_dir():
            end = dataclasses.replace(end, artifacts_dir=self._stage(Path(end.artifacts_dir)))
        self._offer(end, droppable=False)
        self._hurry.set()  # a trial's end is written without waiting for more

    def flush(self) -> None:
        """Returns once everything queued before this call is written (the child says so)."""
        self._raise()
        if self._gone:
            return
        self._report_dropped()
        token = next(self._tokens)
        self._put(Barrier(token))
        self._hurry.set()
        while self._process.is_alive() or self._pending():
            if self._pending(PARENT_CHECK_S) and self._receive() == token:
                break
        self._raise()

    def close(self) -> None:
        """Writes what is queued, closes the sinks in the child and waits for it to exit."""
        try:
            if self._process.is_alive() and not self._gone:
                self._report_dropped()
                self._put(STOP)
                self._stopping = True
                self._hurry.set()
                while self._process.is_alive() or self._pending():
                    if self._pending(PARENT_CHECK_S):
                        self._receive()
                self._process.join()
            self._raise()
        finally:
            self._inbox.close()
            self._inbox.cancel_join_thread()  # the child is gone: nothing can still be waiting for the pipe
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------------------
    def _offer(self, item: SinkEvent, droppable: bool) -> None:
        self._raise()
        if self._gone:
            return
        if self.when_full == "block":
            self._put(item)
            return
        while self._held:
            try:
                self._inbox.put_nowait(self._held[0])
            except queue.Full:
                break
            self._held.pop(0)
        if not self._held:
            try:
                self._inbox.put_nowait(item)
                return
            except queue.Full:
                pass
        if not droppable:
            self._held.append(item)
            return
        self.dropped += 1
        if self.dropped == 1:
            warnings.warn(
                f"the {self.name} sinks fall behind the results: what does not fit their queue is not "
                "written live (Parquet keeps every result); after the study, `smoothstudy mlflow-sync "
                "<study dir>` back-fills MLflow from Parquet", stacklevel=3,
            )

    def _put(self, item: Any) -> None:
        """A blocking put, after the held starts and ends; raises should the child exit meanwhile."""
        for pending in [*self._held, item]:
            while True:
                self._raise()
                if self._gone:
                    return
                try:
                    self._inbox.put(pending, timeout=PARENT_CHECK_S)
                    break
                except queue.Full:
                    continue
        self._held.clear()

    def _report_dropped(self) -> None:
        if self.dropped > self._reported:
            self._reported = self.dropped
            self._put(MissedResults(self.dropped))

    def _stage(self, folder: Path) -> Path:
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix=f"smoothstudy-{self.name}-"))
        copy = Path(tempfile.mkdtemp(dir=self._staging))
        shutil.copytree(folder, copy, dirs_exist_ok=True)
        return copy

    def _pending(self, timeout: float = 0.0) -> bool:
        return not self._eof and self._replies.poll(timeout)

    def _receive(self) -> int | None:
        """Takes one reply: an error is kept for :meth:`_raise`; a barrier's token is returned."""
        try:
            kind, value = self._replies.recv()
        except EOFError:  # the child exited
            self._eof = True
            return None
        if kind == "error":
            self._errors.append(value)
        elif kind == "exiting":
            self._gone = True
        return value if kind == "done" else None

    def _raise(self) -> None:
        while self._pending():
            self._receive()
        if self._errors:
            raise self._errors.pop(0)
        if self._gone or self._process.is_alive():
            return
        if self._stopping and self._process.exitcode == 0:
            return
        self._gone = True
        raise SinkProcessError(f"the {self.name} sinks' process exited (code {self._process.exitcode}) before "
                               "it was closed; what was queued for it is not written")


class _ChildLoop(SinkLoop):
    def __init__(self, sinks: list[Any], inbox: Any, hurry: Any, linger_s: float, replies: Any) -> None:
        super().__init__(sinks, inbox, hurry, linger_s)
        self.replies = replies
        self.parent = multiprocessing.parent_process()

    def next_item(self) -> Any:
        """None once the driver is gone: what it had not flushed is lost, as with a thread. Not written
        after all, so that a resumed trial's replay of it is not logged twice."""
        while True:
            try:
                item = self.inbox.get(timeout=PARENT_CHECK_S)
            except queue.Empty:
                item = None
            if self.parent is not None and not self.parent.is_alive():
                return None
            if item is not None:
                return item

    def write(self, events: list[SinkEvent]) -> None:
        super().write(events)
        for event in events:
            if isinstance(event, TrialEnd) and event.artifacts_dir is not None:
                shutil.rmtree(event.artifacts_dir, ignore_errors=True)  # the copy made for this process

    def release(self, barrier: Barrier) -> None:
        self.replies.send(("done", barrier.token))

    def fail(self, error: BaseException) -> None:
        self.replies.send(("error", _sendable(error)))


def _sendable(error: BaseException) -> BaseException:
    """``error`` with its traceback as a note, or, should it not pickle, a :class:`SinkProcessError` naming it."""
    import pickle

    text = "".join(traceback.format_exception(error))
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any exception type may refuse pickling
        copy = SinkProcessError(f"{type(error).__name__}: {error}")
    if hasattr(copy, "add_note"):  # Python 3.11+
        copy.add_note(f"raised in the sinks' process:\n{text}")
    return copy


def _child_main(factory: Callable[[], list[Any]], inbox: Any, hurry: Any, replies: Any, linger_s: float,
                nice: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        os.nice(nice)
    try:
        sinks = factory()
    except BaseException as err:  # noqa: BLE001 - the driver raises it
        replies.send(("error", _sendable(err)))
        replies.send(("exiting", None))
        return
    loop = _ChildLoop(sinks, inbox, hurry, linger_s, replies)
    loop.run()
    if loop.parent is not None and not loop.parent.is_alive():
        return
    for sink in sinks:
        loop.guarded(sink.close)
