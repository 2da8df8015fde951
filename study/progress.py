"""Progress of a running study in the terminal: trials completed / stopped / failed / running of N, the best
objective so far per method, elapsed time and an ETA.

Live, :class:`ProgressSink` (a result sink of the driver) keeps a status line at the bottom of a terminal; when
stdout is not a terminal (a log file, ``nohup``) it writes plain lines instead (no control characters), one
per ended trial and at most one every ``interval_s`` otherwise. ``smoothstudy status --watch`` shows the
same line for a study running elsewhere, from its Parquet files (:func:`watch`).
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from analysis.core.statuses import BROKEN, NOT_ENDED, TrialStatus
from analysis.core.tables import METHOD
from study.sinks.base import ResultSink, TrialEnd, TrialStart

CLEAR_LINE = "\r\x1b[2K"
TTY_INTERVAL_S = 0.2  # a terminal's status line is rewritten at most this often (results come by hundreds a second)


@dataclass
class Progress:
    total: int
    objective: str
    mode: str
    states: dict[str, str] = field(default_factory=dict)  # trial id -> running/completed/stopped/diverged/...
    methods: dict[str, str] = field(default_factory=dict)  # trial id -> method
    best: dict[str, float] = field(default_factory=dict)  # method -> best objective value so far
    finished_at: float | None = None  # epoch seconds the last trial ended (from the files), if known

    _counts: Counter = field(default_factory=Counter)  # status -> trials: a line costs O(statuses), not O(trials)

    def _set(self, trial_id: str, status: str) -> None:
        old = self.states.get(trial_id)
        if old is not None:
            self._counts[old] -= 1
        self.states[trial_id] = status
        self._counts[status] += 1

    def started(self, trial_id: str, method: str | None) -> None:
        self._set(trial_id, TrialStatus.RUNNING)
        if method:
            self.methods[trial_id] = method

    def observed(self, trial_id: str, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return
        method = self.methods.get(trial_id, "?")
        old = self.best.get(method)
        better = max if self.mode == "max" else min
        self.best[method] = float(value) if old is None else better(old, float(value))

    def ended(self, trial_id: str, status: str) -> None:
        self._set(trial_id, status)

    def count(self, *statuses: str) -> int:
        return sum(self._counts[s] for s in set(statuses))

    @property
    def done(self) -> int:
        """Trials that count towards N (a ``lost`` trial was replaced by another)."""
        return sum(n for s, n in self._counts.items() if s not in NOT_ENDED)

    def line(self, elapsed_s: float, since_start_done: int | None = None) -> str:
        """One line, e.g. ``3/6 trials: 1 completed, 1 stopped, 1 failed, 2 running | best val/acc: ce 0.95,
        ls 0.97 | elapsed 1m02s, ETA 1m10s``. The ETA assumes the remaining trials take as long on average as
        the ones ended while this process watched (``since_start_done``; all of them when None)."""
        parts = [f"{self.done}/{self.total} trials: {self.count(TrialStatus.COMPLETED)} completed, "
                 f"{self.count(TrialStatus.STOPPED)} stopped, {self.count(*BROKEN)} failed, "
                 f"{self.count(TrialStatus.RUNNING)} running"]
        if self.best:
            shown = ", ".join(f"{m} {v:.4g}" for m, v in sorted(self.best.items()))
            parts.append(f"best {self.objective} ({self.mode}, any epoch): {shown}")
        timing = f"elapsed {duration(elapsed_s)}"
        rate_done = self.done if since_start_done is None else since_start_done
        left = max(self.total - self.done, 0)
        if left == 0:
            timing += ", finished"
        elif rate_done > 0:
            timing += f", ETA {duration(elapsed_s / rate_done * left)}"
        parts.append(timing)
        return " | ".join(parts)


def runs_line(what: str, done: int, total: int, elapsed_s: float) -> str:
    """The progress of runs trained after the search (``final runs 4/18 | elapsed 1m10s, ETA 3m20s``): the ETA
    assumes the runs left take as long on average as the ones done (several at once on Ray included)."""
    timing = f"elapsed {duration(elapsed_s)}"
    left = max(total - done, 0)
    if left == 0:
        timing += ", finished"
    elif done > 0:
        timing += f", ETA {duration(elapsed_s / done * left)}"
    return f"{what} {done}/{total} | {timing}"


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Printer:
    """A status line rewritten in place on a terminal; plain lines, rate-limited, anywhere else."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = 30.0, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = interval_s
        self.clock = clock
        self._last = -math.inf
        self._shown = False

    def show(self, line: str | Callable[[], str], force: bool = False) -> None:
        """``line``: the text, or what makes it (called only when it is printed)."""
        due = self.clock() - self._last >= (TTY_INTERVAL_S if self.tty else self.interval_s)
        if not (force or due):
            return
        text = line() if callable(line) else line
        self.stream.write(CLEAR_LINE + text if self.tty else f"[progress] {text}\n")
        self._shown = self.tty
        self._last = self.clock()
        self.stream.flush()

    def clear(self) -> None:
        """Before another line is printed: the status line goes (a terminal only)."""
        if self.tty and self._shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self._shown = False

    def finish(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


class ProgressSink(ResultSink):
    """A result sink that prints the study's progress (see the module's doc)."""

    def __init__(self, progress: Progress, printer: Printer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self.printer = printer or Printer()
        self.clock = clock
        self._start = clock()
        self._done_before = progress.done

    def _show(self, force: bool = False) -> None:
        self.printer.show(lambda: self.progress.line(self.clock() - self._start,
                                                     self.progress.done - self._done_before), force=force)

    def trial_started(self, start: TrialStart) -> None:
        self.progress.started(start.trial_id, start.config.get("loss"))
        self._show()

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self.progress.observed(trial_id, metrics.get(self.progress.objective))
        self._show()

    def trial_ended(self, end: TrialEnd) -> None:
        self.progress.ended(end.trial_id, end.status)
        self.progress.observed(end.trial_id, end.final_metrics.get(self.progress.objective))
        if self.printer.tty:
            self.printer.clear()  # the driver prints the trial's own line next; the status line follows it
        else:
            self._show(force=True)

    def close(self) -> None:
        self.printer.finish()


def progress_from_files(trials, epochs, total: int, objective: str, mode: str) -> Progress:
    """The progress of a study from its Parquet tables (``read_trials``, ``read_epochs``)."""
    progress = Progress(total, objective, mode)
    for row in trials.to_dict("records") if len(trials) else []:
        progress.started(str(row["trial_id"]), row.get(METHOD))
        progress.ended(str(row["trial_id"]), str(row.get("status", TrialStatus.RUNNING)))
    if len(epochs) and objective in epochs:
        for trial_id, value in zip(epochs["trial_id"], epochs[objective]):
            progress.observed(str(trial_id), value)
    if "ended_at" in trials and trials["ended_at"].notna().any():
        progress.finished_at = trials["ended_at"].max().timestamp()
    return progress


def watch(read: Callable[[], Progress], started_at: float | None, interval_s: float = 5.0,
          printer: Printer | None = None, sleep: Callable[[float], None] = time.sleep,
          max_rounds: int | None = None) -> Progress:
    """Shows ``read()`` every ``interval_s`` until every trial has ended (or ``max_rounds``)."""
    printer = printer or Printer(interval_s=0.0)
    rounds = 0
    while True:
        progress = read()
        finished = progress.done >= progress.total
        now = progress.finished_at if finished and progress.finished_at else time.time()
        elapsed = now - started_at if started_at else 0.0
        printer.show(progress.line(elapsed), force=True)
        rounds += 1
        if finished or (max_rounds is not None and rounds >= max_rounds):
            printer.finish()
            return progress
        sleep(interval_s)


def progress_sink(parquet: Any, total: int, objective: str, mode: str) -> ProgressSink:
    """A progress sink that starts from what the study's Parquet sink restored (a resumed study)."""
    progress = Progress(total, objective, mode)
    for trial_id, state in getattr(parquet, "trials", {}).items():
        progress.started(trial_id, state.row.get(METHOD))
        progress.ended(trial_id, str(state.row.get("status") or TrialStatus.RUNNING))
        progress.observed(trial_id, state.best.get(objective))
    return ProgressSink(progress)
