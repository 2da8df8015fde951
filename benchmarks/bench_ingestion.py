"""Benchmark: how many results per second the driver ingests from N concurrent trials, with and without our sinks.

N synthetic trials (``trainables.synthetic``: the real reporting loop and checkpoint policy, a sleep for
training, ~50 metrics a result, packed for Tune as a real trial's are) run at once on fractional CPUs, each reporting R results/s for T seconds,
through a real Ray Tune run; with ``sinks`` the study's callback and sinks take every result (Parquet behind a
background thread of the driver, MLflow in a process of its own that drops what does not fit its queue),
with ``none`` Tune runs alone (the same run, no callback, Tune's default file loggers: CSV, JSON,
TensorBoard). A study keeps only the JSON one (``study.tune_loggers``), and so does ``sinks``; ``json`` is Tune
alone with those loggers, the same Tune work as ``sinks`` without our callback.

Printed and written (``--json``), per mode:
- ``results_per_s``: results the driver received per second while every slot was busy (between the moment
  the last of the first wave reported and the first trial's end; over the whole run when there is no such
  window, e.g. one-result trials);
- ``ratio_to_minimum``: wall time of the trials (first start to last end, at the driver) over the minimum,
  ``ceil(N / slots) · T``; ``trial_ratio``: the median trial's first-to-last result over its ideal
  ``(epochs - 1) / R`` (does the driver keep up once a trial runs);
- the driver process's CPU (cores) and memory (RSS at start, peak, and at each quarter of the trials ended),
  and the MLflow process's peak RSS;
- ``mlflow_live``: results MLflow holds at the end (steps of ``val/acc``, counted per run) and
  ``mlflow_dropped``: results dropped from its queue (``smoothstudy mlflow-sync`` back-fills them).

Goals (the issue): >= 500 results/s with both sinks, ratio <= 1.2, >= 0.9 of the rate without our sinks;
driver memory flat over the bookkeeping run (``--trials 1000 --slots 16 --rate 1 --seconds 1``).
Theoretical minimum: ``N · R`` results/s, ratio 1.

Usage: python -m benchmarks.bench_ingestion --trials 64 --rate 8 --seconds 30 [--slots N] [--modes none,sinks]
       [--mlflow-uri URI | --mlflow-server] [--checkpoint-mb 0] [--every-s 60] [--json PATH] [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import header, load_average


def rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def make_meter():
    from ray import tune

    class Meter(tune.Callback):
        """Driver-side arrival times of results, trial starts and ends, and the driver's RSS as trials end."""

        def __init__(self) -> None:
            self.started: dict[str, float] = {}
            self.first: dict[str, float] = {}
            self.last: dict[str, float] = {}
            self.ended: list[float] = []
            self.arrivals: list[float] = []
            self.rss_at_end: list[float] = []

        def on_trial_start(self, iteration, trials, trial, **info):
            self.started.setdefault(trial.trial_id, time.perf_counter())

        def on_trial_result(self, iteration, trials, trial, result, **info):
            now = time.perf_counter()
            self.arrivals.append(now)
            self.first.setdefault(trial.trial_id, now)
            self.last[trial.trial_id] = now

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.ended.append(time.perf_counter())
            self.rss_at_end.append(rss_mb())

    return Meter()


class RssPeak:
    """Peak RSS of the driver, and of its ``multiprocessing`` children (the MLflow process) together."""

    def __init__(self) -> None:
        self.peak = rss_mb()
        self.children_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, rss_mb())
            children = [rss_mb(p.pid) for p in multiprocessing.active_children()]
            self.children_peak = max([self.children_peak, *(c for c in children if not math.isnan(c))])

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_mb())


def study_sinks(root: Path, mlflow_uri: str | None) -> list:
    """The study's writing sinks as ``study.runner.build_sinks`` arranges them (no Optuna link or progress
    line: the benchmark has no Optuna study)."""
    from study.mlflow_group import MlflowGroup, mlflow_sinks
    from study.sinks.background import BackgroundSinks
    from study.sinks.parquet import LIVE_TRIALS_EVERY_S, ParquetSink

    uri = mlflow_uri or f"sqlite:///{root / 'mlflow.db'}"
    return [BackgroundSinks([ParquetSink(root / "parquet", "ingest", trials_every_s=LIVE_TRIALS_EVERY_S)], "parquet"),
            mlflow_sinks(MlflowGroup(uri, experiment=f"ingest-{root.name}", study_name="ingest", study_id=root.name))]


def mlflow_dropped(callback) -> int:
    return sum(getattr(sink, "dropped", 0) for sink in callback._sinks or [])


def mlflow_live(root: Path, mlflow_uri: str | None) -> int:
    """Results MLflow holds for the run: steps of ``val/acc`` over its trial runs."""
    from mlflow import MlflowClient

    from study.sinks.mlflow_runs import find_study_runs

    client = MlflowClient(mlflow_uri or f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"ingest-{root.name}")
    if experiment is None:
        return 0
    runs = find_study_runs(client, experiment.experiment_id, root.name)["trials"].values()
    return sum(len(client.get_metric_history(run_id, "val/acc")) for run_id in runs)


class MlflowServer:
    """``mlflow server`` (as ``smoothstudy mlflow-server`` runs it) on a free local port, its store in ``root``."""

    def __init__(self, root: Path) -> None:
        from study.mlflow_server import server_command

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(server_command("127.0.0.1", port, root), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.5)
        self.stop()
        raise SystemExit(f"the MLflow server at {self.uri} did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run(root: Path, trials: int, slots: int, rate: float, seconds: float, with_sinks: bool,
        mlflow_uri: str | None, checkpoint_mb: float, every_s: float | None, study_logging: bool) -> dict[str, Any]:
    """One Tune run; ``study_logging``: Tune's file loggers as a study keeps them, else Tune's defaults."""
    import ray
    from ray import tune

    from study.callback import SinkCallback
    from study.tune_loggers import study_loggers
    from trainables.synthetic import synthetic_trial

    epochs = max(1, round(rate * seconds))
    cpu = math.floor(ray.cluster_resources()["CPU"] / slots * 1000) / 1000
    meter = make_meter()
    callbacks = [meter]
    sinks = None
    if with_sinks:
        sinks = SinkCallback(lambda: study_sinks(root, mlflow_uri), base={}, epochs=epochs, echo=lambda line: None)
        callbacks.append(sinks)
    if study_logging:
        callbacks += study_loggers()
    tuner = tune.Tuner(
        tune.with_resources(synthetic_trial, {"cpu": cpu}),
        param_space={"loss": "ce", "epochs": epochs, "epoch_s": 1.0 / rate, "checkpoint_mb": checkpoint_mb,
                     "every_s": every_s, "seed": tune.randint(0, 2**31 - 1)},
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=slots, reuse_actors=True),
        run_config=tune.RunConfig(name="ingest", storage_path=str(root / "ray"), verbose=0, callbacks=callbacks,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    rss_start, peak = rss_mb(), RssPeak()
    cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    rss_peak = peak.stop()
    errors = sum(1 for r in grid if r.error is not None)
    if not meter.ended:
        raise SystemExit(f"no trial ended ({errors} errored): see Ray's messages above")
    busy = min(trials, slots)
    minimum = math.ceil(trials / slots) * (epochs / rate)
    span = max(meter.ended) - min(meter.started.values())
    first_wave = sorted(meter.first.values())[:busy]
    window = (first_wave[-1], min(meter.ended)) if len(first_wave) == busy else (0.0, 0.0)
    if window[1] - window[0] >= 2.0 / rate:
        received = sum(1 for t in meter.arrivals if window[0] <= t <= window[1])
        results_per_s = received / (window[1] - window[0])
    else:
        results_per_s = len(meter.arrivals) / (max(meter.arrivals) - min(meter.started.values()))
    ideal = (epochs - 1) / rate
    trial_ratios = sorted((meter.last[t] - meter.first[t]) / ideal for t in meter.first if ideal > 0)
    quarters = [meter.rss_at_end[max(0, math.ceil(q * len(meter.rss_at_end)) - 1)] for q in (0.25, 0.5, 0.75, 1.0)]
    mlflow = {}
    if sinks is not None:
        mlflow = {"mlflow_dropped": mlflow_dropped(sinks), "mlflow_live": mlflow_live(root, mlflow_uri),
                  "mlflow_process_rss_peak_mb": peak.children_peak}
    return {
        "trials": trials, "slots": slots, "rate_per_trial": rate, "seconds": seconds, "epochs": epochs,
        "cpu_per_trial": cpu, "sinks": with_sinks, "errors": errors,
        "results": len(meter.arrivals), "target_results_per_s": busy * rate,
        "results_per_s": results_per_s, "ratio_to_minimum": span / minimum,
        "trial_ratio": trial_ratios[len(trial_ratios) // 2] if trial_ratios else math.nan,
        "wall_s": wall, "trials_span_s": span, "minimum_s": minimum,
        "driver_cpu_cores": (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / wall,
        "driver_rss_mb": {"start": rss_start, "peak": rss_peak, "quarters": quarters},
        **mlflow,
        "load": load_average(),
    }


def direct(root: Path, trials: int, epochs: int, mlflow_uri: str | None) -> dict[str, Any]:
    """The callback and sinks without Ray: ``trials`` stand-in trials' results interleaved as concurrent
    trials report them, as fast as the driver's thread can hand them over. ``driver_results_per_s``: what
    the driver loop's thread spends per result; ``written_results_per_s``: until everything is written."""
    from types import SimpleNamespace

    from study.callback import SinkCallback
    from trainables.synthetic import synthetic_metrics

    callback = SinkCallback(lambda: study_sinks(root, mlflow_uri), base={}, epochs=epochs, echo=lambda line: None)
    stand_ins = [SimpleNamespace(trial_id=f"t{i:04d}", config={"loss": "ce"}, last_result=None, checkpoint=None)
                 for i in range(trials)]
    callback.sinks  # noqa: B018 - opened before the clock starts, as setup() does while Ray starts
    results = [{"epoch": e, **synthetic_metrics(i, e)} for e in range(1, epochs + 1) for i in range(trials)]
    t0 = time.perf_counter()
    for trial in stand_ins:
        callback.on_trial_start(0, [], trial)
    for k, result in enumerate(results):
        callback.on_trial_result(0, [], stand_ins[k % trials], result)
    for trial in stand_ins:
        trial.last_result = results[-1]
        callback.on_trial_complete(0, [], trial)
    handed = time.perf_counter() - t0
    callback.on_experiment_end(stand_ins)
    written = time.perf_counter() - t0
    return {"results": len(results), "driver_results_per_s": len(results) / handed,
            "written_results_per_s": len(results) / written, "mlflow_dropped": mlflow_dropped(callback),
            "mlflow_live": mlflow_live(root, mlflow_uri), "load": load_average()}


def check_stored(root: Path, expected: int) -> int:
    """Epoch rows in Parquet (de-duplicated): every result the sinks took must be there."""
    from analysis.results import read_epochs

    stored = len(read_epochs(root))
    if stored != expected:
        raise SystemExit(f"Parquet holds {stored} epoch rows, {expected} expected")
    return stored


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--slots", type=int, default=None, help="concurrent trials (default: all of them)")
    parser.add_argument("--rate", type=float, default=8.0, help="results per second per trial")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each trial reports")
    parser.add_argument("--modes", default="none,sinks",
                        help="comma-separated: none (Tune alone), json (Tune alone, a study's file loggers), "
                             "sinks (Tune + ours), direct (ours without Ray)")
    parser.add_argument("--mlflow-uri", default=None, help="an MLflow server; default SQLite in a temp folder")
    parser.add_argument("--mlflow-server", action="store_true",
                        help="start a local `mlflow server` (SQLite store in a temp folder) and log to it")
    parser.add_argument("--checkpoint-mb", type=float, default=0.0)
    parser.add_argument("--every-s", type=float, default=60.0, help="checkpoint policy: seconds between saves")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke-test", action="store_true", help="2 trials x 4 results/s x 1 s, both modes")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.trials, args.rate, args.seconds, args.slots = 2, 4.0, 1.0, 2
    slots = args.slots or args.trials
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(header("bench_ingestion: results/s the driver ingests from concurrent synthetic trials",
                 ">= 500 results/s with both sinks, ratio <= 1.2, >= 0.9 of Tune alone; flat driver memory",
                 f"{min(args.trials, slots) * args.rate:g} results/s, ratio 1"))
    from study.cluster import connect

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    connect(None)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = MlflowServer(Path(tmp) / "mlflow-server") if args.mlflow_server else None
        if server is not None:
            args.mlflow_uri = server.uri
            print(f"MLflow server at {server.uri} (store: SQLite)")
        try:
            _run_modes(args, modes, slots, Path(tmp), out)
        finally:
            if server is not None:
                server.stop()
    if "none" in out and "sinks" in out:
        out["sinks_vs_none"] = out["sinks"]["results_per_s"] / out["none"]["results_per_s"]
        print(f"result: with sinks {out['sinks_vs_none']:.2f} of the rate Tune reaches alone")
    if "json" in out and "sinks" in out:
        out["sinks_vs_json"] = out["sinks"]["results_per_s"] / out["json"]["results_per_s"]
        print(f"result: with sinks {out['sinks_vs_json']:.2f} of Tune alone with a study's file loggers")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return out


def _run_modes(args: argparse.Namespace, modes: list[str], slots: int, tmp: Path, out: dict[str, Any]) -> None:
    for mode in modes:
        root = tmp / mode
        if mode == "direct":
            out[mode] = row = direct(root, args.trials, max(1, round(args.rate * args.seconds)), args.mlflow_uri)
            row["parquet_rows"] = check_stored(root, row["results"])
            print(f"direct {row['driver_results_per_s']:8.0f} results/s handed over by the driver's thread, "
                  f"{row['written_results_per_s']:.0f} results/s written (both sinks; no Ray); MLflow live "
                  f"{row['mlflow_live']}, dropped {row['mlflow_dropped']}  (load: {row['load']})")
            continue
        row = run(root, args.trials, slots, args.rate, args.seconds, mode == "sinks", args.mlflow_uri,
                  args.checkpoint_mb, args.every_s, study_logging=mode in ("sinks", "json"))
        if mode == "sinks":
            row["parquet_rows"] = check_stored(root, row["results"])
        out[mode] = row
        rss = row["driver_rss_mb"]
        mlflow = (f"  MLflow live {row['mlflow_live']} of {row['results']}, dropped {row['mlflow_dropped']}, "
                  f"its process {row['mlflow_process_rss_peak_mb']:.0f} MB" if mode == "sinks" else "")
        print(f"{mode:<6} {row['results_per_s']:8.1f} results/s (target {row['target_results_per_s']:g})  "
              f"ratio {row['ratio_to_minimum']:.2f} (trial {row['trial_ratio']:.2f})  wall {row['wall_s']:.1f} s  "
              f"driver {row['driver_cpu_cores']:.2f} cores, RSS {rss['start']:.0f}->{rss['peak']:.0f} MB "
              f"(quarters {', '.join(f'{q:.0f}' for q in rss['quarters'])})  errors {row['errors']}{mlflow}  "
              f"(load: {row['load']})")


if __name__ == "__main__":
    main()
