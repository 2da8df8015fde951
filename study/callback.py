"""Thin Ray Tune callback: translates Tune's trial events into the Ray-free sink calls, on the driver.

Sinks that write sit behind a queue: Parquet behind a background thread
(:class:`~study.sinks.background.BackgroundSinks`), MLflow in a process of its own
(:class:`~study.sinks.process.ProcessSinks`); the driver loop only queues. It waits for Parquet when Tune snapshots
the experiment, so that Ray never records a checkpoint past a result Parquet does not hold (a trial restored
from it after a crash replays what was lost), for the sinks that still read a trial's artifacts folder before Ray
deletes it (a process sink copies it instead), and for every sink at the experiment's end."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ray import tune

from analysis.core.catalogue import HEADLINE
from analysis.core.statuses import TrialStatus
from analysis.core.tables import KIND, SEARCH_KIND
from study.sinks.base import ResultSink, TrialEnd, TrialStart
from trainables.config import flatten, resolve_trial_config
from trainables.tune_reporting import ARTIFACTS_DIR, result_metrics

NODE_IP, NODE_ID = "sys/node_ip", "sys/node_id"  # text columns in Parquet: where the trial ran


def node_ids_by_ip() -> dict[str, str]:
    """Alive Ray nodes by IP address; an IP shared by several nodes (one machine, one IP) maps to ""."""
    import ray

    found: dict[str, str] = {}
    for node in ray.nodes():
        if node.get("Alive"):
            ip = node["NodeManagerAddress"]
            found[ip] = "" if ip in found else node["NodeID"]
    return found


class SinkCallback(tune.Callback):
    """Tune pickles its callbacks into the experiment state, so the sinks (open database clients) are made
    lazily by ``make_sinks`` and rebuilt after a restore instead of being pickled."""

    def __init__(self, make_sinks: Callable[[], list[ResultSink]], base: dict[str, Any], epochs: int,
                 echo: Callable[[str], None] | None = None) -> None:
        self.make_sinks = make_sinks
        self.base = base
        self.epochs = epochs
        self.echo = echo
        self.finished = 0
        self._sinks: list[ResultSink] | None = None
        self._opening: Future | None = None  # make_sinks() running in a thread since setup()
        self._seen: dict[str, set[int]] = {}  # epochs already in the sinks, per trial
        self._nodes: dict[str, str] = {}

    def setup(self, **info: Any) -> None:
        """Open the sinks (MLflow's database, the parent run) in a thread while Ray starts the first trials'
        worker processes: done on the first trial's start instead, it delayed every first trial by ~1.5 s."""
        if self._sinks is None and self._opening is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="smoothstudy-sinks")
            self._opening = pool.submit(self.make_sinks)
            pool.shutdown(wait=False)

    @property
    def sinks(self) -> list[ResultSink]:
        if self._sinks is None:
            opening, self._opening = self._opening, None
            self._sinks = opening.result() if opening is not None else self.make_sinks()  # re-raises its error
            for sink in self._sinks:  # a resumed study: the epochs written before the driver stopped
                for trial_id, epochs in sink.epochs_seen().items():
                    self._seen.setdefault(trial_id, set()).update(epochs)
        return self._sinks

    def flush(self, parquet_only: bool = False, artifacts: bool = False) -> None:
        """Returns once what the sinks were handed is written: every sink's, only the sinks with Parquet
        (``parquet_only``), or only those that read a trial's artifacts folder after its end was handed over
        (``artifacts``: not a sink that copies the folder then)."""
        for sink in self.sinks:
            if (parquet_only and not sink.holds_truth) or (artifacts and sink.copies_artifacts):
                continue
            sink.flush()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sinks": None, "_opening": None, "_seen": {}, "_nodes": {}}

    def _first_time(self, trial_id: str, epoch: int) -> bool:
        """False for an epoch the sinks already hold: a trial restored from a checkpoint older than the last
        result it reported (the driver died in between) runs that epoch again; the first values are kept."""
        self.sinks  # noqa: B018 - building them loads what a resumed study wrote before
        seen = self._seen.setdefault(trial_id, set())
        if epoch in seen:
            return False
        seen.add(epoch)
        return True

    def node_of(self, result: dict[str, Any]) -> dict[str, str]:
        ip = result.get("node_ip")
        if not ip:
            return {}
        if ip not in self._nodes:
            self._nodes = node_ids_by_ip()
        return {NODE_IP: ip, NODE_ID: self._nodes.get(ip, "")}

    def trial_config(self, trial: Any) -> dict[str, Any]:
        return flatten(resolve_trial_config(self.base, trial.config))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        start = TrialStart(trial.trial_id, self.trial_config(trial), tags={KIND: SEARCH_KIND})
        for sink in self.sinks:
            sink.trial_started(start)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        metrics = result_metrics(result)
        if metrics and self._first_time(trial.trial_id, epoch):
            metrics.update(self.node_of(result))
            for sink in self.sinks:
                sink.epoch(trial.trial_id, epoch, metrics)

    def get_state(self) -> None:
        """Tune calls this as it snapshots the experiment (every trial and its latest checkpoint), before the
        snapshot goes to storage: waiting for Parquet here means no snapshot records a checkpoint past a result
        Parquet does not hold (a trial restored from it after a crash replays what was lost). Once a snapshot
        (at least 10 s apart, or when a trial has two new checkpoints), not once a trial checkpoint: that held
        the driver loop ~16 ms for each trial of a 1000-trial run. No state of its own to keep: None."""
        if self._sinks is not None:  # else nothing was handed to them yet
            self.flush(parquet_only=True)
        return None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        epochs_run = int(last.get("epoch", 0))
        if last.get("status") == TrialStatus.DIVERGED:
            status, reason = TrialStatus.DIVERGED, str(last.get("reason", "loss became NaN or inf"))
        elif epochs_run >= self.epochs:
            status, reason = TrialStatus.COMPLETED, ""
        else:
            status, reason = TrialStatus.STOPPED, f"asha: stopped after epoch {epochs_run} of {self.epochs}"
        final = {**result_metrics(last), **self.node_of(last)}
        artifacts = None
        if status == TrialStatus.COMPLETED and trial.checkpoint is not None:
            with trial.checkpoint.as_directory() as d:
                artifacts = Path(d) / ARTIFACTS_DIR
                if not artifacts.is_dir():
                    artifacts = None
                self._end(TrialEnd(trial.trial_id, status, reason, final, artifacts), trial)
                if artifacts is not None:
                    self.flush(artifacts=True)  # the sinks read the artifacts before the folder goes
            return
        self._end(TrialEnd(trial.trial_id, status, reason, final, artifacts), trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        message = str(getattr(trial, "error_message", None) or "trial raised an error").strip()
        reason = message.splitlines()[-1] if message else "error"
        self._end(TrialEnd(trial.trial_id, TrialStatus.ERROR, reason, result_metrics(trial.last_result or {})), trial)

    def _end(self, end: TrialEnd, trial: Any) -> None:
        for sink in self.sinks:
            sink.trial_ended(end)
        self._seen.pop(end.trial_id, None)  # an ended trial reports no more: a study of thousands keeps none
        self.finished += 1
        cfg = trial.config
        params = " ".join(f"{k}={_fmt(v)}" for k, v in (cfg.get(cfg.get("loss"), {}) or {}).items())
        # validation only: a search trial's test metrics are for the final report, not for watching the search
        shown = {k: end.final_metrics[k] for k in (f"val/{h.split('/', 1)[1]}" for h in HEADLINE)
                 if k in end.final_metrics}
        (self.echo or print)(f"[{self.finished}] {end.trial_id} {cfg.get('loss')} {params} -> {end.status}"
                  + (f" ({end.reason})" if end.reason and end.status != TrialStatus.COMPLETED else "")
                  + "".join(f"  {k}={_fmt(v)}" for k, v in shown.items()))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()
        self._end_lost_trials({t.trial_id for t in trials})
        for sink in self._sinks or []:
            sink.close()

    def _end_lost_trials(self, known: set[str]) -> None:
        """A driver killed between a trial's first result and Ray's next experiment snapshot leaves that trial
        out of the state ``resume`` restores: it never ends, and the searcher asks for another in its place.
        Its rows stay, marked ``lost``, so the study's ended trials are the number it asked for."""
        running = set().union(*(sink.running_trials() for sink in self.sinks))
        for trial_id in sorted(running - known):
            end = TrialEnd(trial_id, TrialStatus.LOST, LOST_REASON, {})
            for sink in self.sinks:
                sink.trial_ended(end)


LOST_REASON = "lost: the driver died before Ray recorded this trial; the search ran another in its place"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)
