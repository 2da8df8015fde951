"""Stopping a long command: SIGTERM does what Ctrl-C does. During a search that is Tune's own stop (the trials
end, the experiment state is saved, ``resume`` continues it); elsewhere a ``KeyboardInterrupt`` that the CLI
turns into one line after shutting its Ray down (the workers and the local cluster it started)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

_requested = threading.Event()


def requested() -> bool:
    """Whether a SIGTERM asked this process to stop (a search Tune stopped returns as if it had ended)."""
    return _requested.is_set()


def stop_on_sigterm() -> None:
    """SIGTERM as Ctrl-C, from now on. ``ray.init`` installs a SIGTERM handler of its own (``sys.exit``, which
    leaves Tune's state unsaved), so ``study.cluster.connect`` calls this again once Ray is joined."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _as_interrupt)


def _as_interrupt(signum: int, frame) -> None:
    _requested.set()
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signal.SIGINT, frame)  # Tune's, while a search runs: it stops the search and saves its state
        return
    raise KeyboardInterrupt


@contextmanager
def sigint_restored():
    """Around a Tune search: Tune installs its SIGINT handler when a search starts and leaves it in place when the
    search ends, so a later Ctrl-C or SIGTERM (during the final runs) would only log Tune's stop message and go
    on. The handler that was there before the search comes back when the search ends."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
