"""Benchmark: does the search pay? ``per_method`` TPE + ASHA against the full grid on the Label Relaxation
paper's Fashion-MNIST space (studies/lr_table1_fmnist_augmented.yaml: CE, LS, LR, CP, FL with the paper's grids).

Two stages, and what is real and what is simulated:

1. **Recorded (real training).** Every one of the grid's 29 configurations is trained once, in-process with
   the project's training loop (``trainables.loop.make_trainer``), shortened: ``--epochs`` epochs (default
   20; the step schedule's 20-of-50 epochs scaled to the same share) on a ``--subset`` of the training
   images (default 12000, 1/6 held out for validation as in the preset), no end-of-trial evaluation. Each
   epoch's validation accuracy and CPU-seconds (process time) are written to a table (``--table``).
2. **Simulated searches.** The searches are replayed against that table: Optuna ask/tell with the
   project's own samplers (``search_spaces.samplers``), the strategies' order of trials and per-method
   budgets (``search_spaces.strategies``) and a re-implementation of Ray's ASHA stopping rule at the study's
   own rungs (``search_spaces.asha``: a trial at a rung is stopped when its value is below the
   (1 - 1/reduction_factor) quantile of the values recorded at that rung so far; rungs per method for
   ``per_method``, shared for ``joint``), trials one after the other. A trial that asks for a configuration
   gets its recorded curve (one training seed per configuration: repeated draws see the same curve, no
   seed noise). Epochs and CPU-seconds are those of the recorded epochs the simulated trials ran.

Or, with ``--from-reproduction PROTOCOL``, stage 1 is the grid trials a reproduction's parts trained and
committed (``docs/reproductions/lr_table1_fmnist_augmented.yaml``: the full protocol, 50 epochs, all training images; their
seconds are wall seconds on whichever machine a part ran).

Measure: the epochs (and CPU-seconds) per_method TPE + ASHA spends until every method's chosen
configuration (its best completed trial by final validation accuracy) is within 0.5 pp of that method's
grid-best, per search seed, as a share of the full grid's epochs (goal: <= 0.35); and, with the same
number of trials, how many trials ``joint`` and ``per_method`` give each method and which method each picks.

Usage: python -m benchmarks.bench_search_pays [--epochs 20] [--subset 12000] [--seeds 5]
       [--table runs/bench_search_pays/curves.json | --from-reproduction PROTOCOL] [--metric val/acc|val/ece]
       [--within 0.005] [--grace 2] [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, header

PRESET = ROOT / "studies" / "lr_table1_fmnist_augmented.yaml"
GOAL = 0.35
WITHIN = 0.005  # 0.5 pp of validation accuracy
STARTUP = 2  # TPE's random start-up trials in each space
DEFAULT_TABLE = ROOT / "runs" / "bench_search_pays" / "curves.json"


def grid_configs(spec) -> list[tuple[str, dict]]:
    """Every configuration of the study's grids: (method, hyperparameters)."""
    from itertools import product

    from search_spaces.space import method_params

    out = []
    for loss, params in method_params(spec).items():
        fixed = {p.hparam.name: p.fixed for p in params if p.is_fixed}
        free = [p for p in params if not p.is_fixed]
        for values in product(*(p.choices for p in free)):
            out.append((loss, {**fixed, **{p.hparam.name: v for p, v in zip(free, values)}}))
    return out


def config_key(loss: str, params: dict) -> str:
    free = ",".join(f"{k}={params[k]!r}" for k in sorted(params))
    return f"{loss}({free})"


def shortened_spec(epochs: int, subset: int | None, smoke: bool):
    from search_spaces.space import method_params
    from search_spaces.study_file import load_study

    spec = load_study(PRESET)
    t = spec.training
    data = {"subset": subset}
    methods = spec.methods
    if smoke:
        data.update(dataset="digits", val_fraction=0.2, augment=False)
        methods = {m: {p.hparam.name: {"grid": list(p.choices[:2])} for p in params if p.choices}
                   for m, params in method_params(spec).items()}
    step = max(1, round(t.step_size * epochs / t.epochs))
    return spec.model_copy(update={
        "methods": methods,
        "data": spec.data.model_copy(update=data),
        "training": t.model_copy(update={"epochs": epochs, "step_size": step, "device": "cpu"}),
        "evaluation": spec.evaluation.model_copy(update={"representation": False, "probe": False}),
    })


def record(spec, echo=print) -> dict:
    """Train every grid configuration once; per configuration its per-epoch val/acc and CPU-seconds."""
    import torch

    from trainables.config import TrialConfig
    from trainables.loop import make_trainer

    torch.set_num_threads(1)
    base = spec.base_trial_config()
    curves = {}
    for loss, params in grid_configs(spec):
        cfg = TrialConfig.from_dict({**base, "loss": loss, "loss_params": params, "seed": spec.seed})
        trainer = make_trainer(cfg)
        acc, ece, cpu = [], [], []
        while not trainer.done:
            start = time.process_time()
            metrics = trainer.train_epoch()
            cpu.append(time.process_time() - start)
            acc.append(float(metrics["val/acc"]))
            ece.append(float(metrics["val/ece"]))
        key = config_key(loss, params)
        curves[key] = {"loss": loss, "params": params, "val_acc": acc, "val_ece": ece, "cpu_s": cpu}
        echo(f"  recorded {key}: val/acc {acc[-1]:.4f} after {len(acc)} epochs, {sum(cpu):.1f} CPU-s")
    return curves


def from_reproduction(protocol_file: Path, spec, echo=print) -> dict:
    """The curves of the grid trials a reproduction's parts trained (full protocol, as committed under its
    ``data`` folder): per configuration of ``spec``'s grids, its trial's per-epoch val/acc and val/ece, and as
    ``cpu_s`` the seconds each epoch took where it ran (``time/train_s`` + ``time/eval_s``: wall seconds, on
    whichever machine the part ran)."""
    import pandas as pd

    from analysis.core.tables import HPARAM_PREFIX, METHOD
    from analysis.reproduction.parts import load_part
    from analysis.reproduction.protocol import load_protocol

    protocol = load_protocol(protocol_file)
    frames = [study.frames for name in protocol.spec["parts"] for study in load_part(protocol, name).collected]
    if not frames:
        raise SystemExit(f"--from-reproduction: no part of {protocol_file} has tables under {protocol.data_dir}")
    trials = pd.concat([f.trials for f in frames], ignore_index=True)
    epochs = pd.concat([f.epochs for f in frames], ignore_index=True)
    curves = {}
    for loss, params in grid_configs(spec):
        match = trials[METHOD] == loss
        for name, value in params.items():
            column = f"{HPARAM_PREFIX}{name}"
            if isinstance(value, str):  # a fixed setting (confidence_penalty's sign): absent = its default
                match &= (trials[column] == value) if column in trials else True
                continue
            values = trials[column].astype(float) if column in trials else pd.Series(np.nan, index=trials.index)
            match &= np.isclose(values, float(value))
        if match.sum() != 1:
            raise SystemExit(f"--from-reproduction: {config_key(loss, params)} has {int(match.sum())} grid trials "
                             f"in {protocol.data_dir}; needs exactly 1 (is every part run?)")
        rows = epochs[epochs["trial_id"] == trials.loc[match, "trial_id"].iloc[0]].sort_values("epoch")
        curves[config_key(loss, params)] = {
            "loss": loss, "params": params, "val_acc": rows["val/acc"].astype(float).tolist(),
            "val_ece": rows["val/ece"].astype(float).tolist(),
            "cpu_s": (rows["time/train_s"] + rows["time/eval_s"]).astype(float).tolist()}
    echo(f"recorded curves: the grid trials of {protocol_file} ({len(curves)} configurations)")
    return curves


METRICS = {"val/acc": ("val_acc", 1.0), "val/ece": ("val_ece", -1.0)}  # curve field, sign that makes it a score


def scored(curves: dict, metric: str) -> dict:
    """``curves`` with ``score``: the metric, negated where lower is better, so every search maximises."""
    field, sign = METRICS[metric]
    return {k: {**c, "score": [sign * v for v in c[field]]} for k, c in curves.items()}


GRACE, REDUCTION = 2, 3  # ASHA defaults of the simulated searches (all_methods uses 3 and 3 over 30 epochs)


class SimulatedAsha:
    """Ray's ASHA rule: at a rung, a trial below the (1 - 1/rf) quantile of the values already recorded at
    that rung is stopped; its value is recorded either way."""

    def __init__(self, max_t: int, grace: int, rf: float) -> None:
        from search_spaces.asha import asha_rungs

        self.rf = rf
        self.rungs = {epoch: [] for epoch in asha_rungs(grace, max_t, rf)}

    def keeps(self, epoch: int, value: float) -> bool:
        recorded = self.rungs.get(epoch)
        if recorded is None:
            return True
        cutoff = float(np.nanpercentile(recorded, (1 - 1 / self.rf) * 100)) if recorded else None
        recorded.append(value)
        return cutoff is None or value >= cutoff


def simulate(spec, curves: dict, strategy: str, seed: int, num_samples: int, startup: int,
             grace: int | None = GRACE) -> dict:
    """One search replayed on the recorded curves, trials one after the other (``grace`` None: no ASHA).
    Returns per trial its method, configuration key, epochs run and whether it completed."""
    import optuna
    from optuna.trial import TrialState

    from search_spaces.samplers import make_sampler
    from search_spaces.space import define_by_run
    from search_spaces.strategies import STRATEGIES

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs = spec.training.epochs
    tpe = spec.model_copy(update={"search": spec.search.model_copy(update={"sampler": "tpe",
                                                                          "num_samples": num_samples})})
    order = STRATEGIES[strategy].order(tpe)  # the search of each trial: its method's, or the one joint search
    keys = list(dict.fromkeys(order))
    studies = {k: optuna.create_study(direction="maximize", sampler=make_sampler("tpe", seed, startup)) for k in keys}
    spaces = {k: define_by_run(tpe, k) for k in keys}
    ashas = {k: SimulatedAsha(epochs, grace, REDUCTION) if grace else None for k in keys}
    trials = []
    for key in order:
        study, space, asha = studies[key], spaces[key], ashas[key]
        trial = study.ask()
        fixed = space(trial)
        loss = fixed.get("loss") or trial.params["loss"]
        params = {k.split("/", 1)[1]: v for k, v in {**trial.params, **fixed}.items() if k.startswith(f"{loss}/")}
        curve = curves[config_key(loss, params)]
        ran = 0
        for e, value in enumerate(curve["score"], start=1):
            ran = e
            trial.report(value, e)
            if asha is not None and e < epochs and not asha.keeps(e, value):
                break
        done = ran == epochs
        study.tell(trial, curve["score"][-1] if done else None,
                   state=TrialState.COMPLETE if done else TrialState.PRUNED)
        trials.append({"method": loss, "key": config_key(loss, params), "epochs": ran, "completed": done,
                       "cpu_s": sum(curve["cpu_s"][:ran]), "final": curve["score"][-1]})
    return {"trials": trials}


def grid_best(curves: dict) -> dict[str, float]:
    best: dict[str, float] = {}
    for c in curves.values():
        best[c["loss"]] = max(best.get(c["loss"], -math.inf), c["score"][-1])
    return best


def missing(trials: list[dict], best: dict[str, float], within: float = WITHIN) -> list[str]:
    """Methods whose chosen configuration is still more than ``within`` below their grid-best."""
    chosen: dict[str, float] = {}
    for t in trials:
        if t["completed"]:
            chosen[t["method"]] = max(chosen.get(t["method"], -math.inf), t["final"])
    return [m for m, b in best.items() if chosen.get(m, -math.inf) < b - within]


def epochs_until_close(trials: list[dict], best: dict[str, float],
                       within: float = WITHIN) -> tuple[int | None, float | None]:
    """Epochs (and CPU-seconds) spent when every method's chosen configuration (its best completed trial)
    is first within ``within`` of its grid-best; None when the search never gets there."""
    chosen: dict[str, float] = {}
    spent = cpu = 0.0
    for t in trials:
        spent += t["epochs"]
        cpu += t["cpu_s"]
        if t["completed"]:
            chosen[t["method"]] = max(chosen.get(t["method"], -math.inf), t["final"])
        if all(m in chosen and chosen[m] >= b - within for m, b in best.items()):
            return int(spent), cpu
    return None, None


def simulate_all(curves: dict, saved: dict, args) -> dict:
    from collections import Counter

    spec = shortened_spec(args.epochs, args.subset, args.smoke_test)
    curves = scored(curves, args.metric)
    sign = METRICS[args.metric][1]
    best = grid_best(curves)
    grid_epochs = sum(len(c["score"]) for c in curves.values())
    grid_cpu = sum(sum(c["cpu_s"]) for c in curves.values())
    n = len(curves)
    budget = args.trials or 3 * n
    seconds = "recorded s" if args.from_reproduction else "CPU-s"
    print(f"recorded grid: {n} configurations x {args.epochs} epochs = {grid_epochs} epochs, {grid_cpu:.0f} {seconds} "
          f"(dataset {spec.data.dataset}, subset {spec.data.subset}, recorded in {saved.get('record_wall_s', 0):.0f} s)")
    print(f"grid-best {args.metric} per method: " + ", ".join(f"{m} {sign * v:.4f}" for m, v in best.items()))
    spread = {m: max(c["score"][-1] for c in curves.values() if c["loss"] == m) -
              min(c["score"][-1] for c in curves.values() if c["loss"] == m) for m in best}
    flat = [m for m, d in spread.items() if d <= args.within]
    print(f"spread of {args.metric} over each method's grid: " + ", ".join(f"{m} {d:.4f}" for m, d in spread.items())
          + (f"; every configuration of {', '.join(flat)} is within {args.within:g} of its best: any completed trial "
             "counts for those" if flat else ""))
    print(f"SIMULATED searches on the recorded curves: up to {budget} trials each (the grid has {n}), TPE (constant liar, "
          f"n_startup_trials {STARTUP} per space), "
          + (f"ASHA grace {args.grace}, reduction {REDUCTION}" if args.grace else "no ASHA") + ", trials one at a time")
    runs = []
    picks = {"per_method": Counter(), "joint": Counter()}
    winners = {"per_method": Counter(), "joint": Counter()}
    for seed in range(args.seeds):
        row = {"seed": seed}
        for strategy in ("per_method", "joint"):
            trials = simulate(spec, curves, strategy, seed, budget, STARTUP, args.grace or None)["trials"]
            spent, cpu = epochs_until_close(trials, best, args.within)
            same_budget = trials[:n]  # what each strategy gives each method with the grid's number of trials
            picks[strategy].update(t["method"] for t in same_budget)
            done = [t for t in same_budget if t["completed"]]
            if done:
                winners[strategy][max(done, key=lambda t: t["final"])["method"]] += 1
            row[strategy] = {"epochs_until_close": spent, "cpu_s_until_close": cpu,
                             "epochs_total": sum(t["epochs"] for t in trials),
                             "ratio": None if spent is None else spent / grid_epochs,
                             "stopped": sum(not t["completed"] for t in trials),
                             "missing_after_grid_budget": missing(same_budget, best, args.within),
                             "missing_at_end": missing(trials, best, args.within)}
        runs.append(row)
        pm, jt = row["per_method"], row["joint"]
        print(f"  seed {seed}: per_method reaches every grid-best (within {args.within:g}) after "
              f"{_fmt(pm['epochs_until_close'])} epochs ({_fmt_ratio(pm['ratio'])} of the grid), "
              f"{_fmt(pm['cpu_s_until_close'], '.0f')} {seconds}; whole search {pm['epochs_total']} epochs, "
              f"{pm['stopped']} stopped; after {n} trials still off: {pm['missing_after_grid_budget'] or 'none'} | "
              f"joint: {_fmt(jt['epochs_until_close'])} ({_fmt_ratio(jt['ratio'])}), after {n} trials still off: "
              f"{jt['missing_after_grid_budget'] or 'none'}, at the end: {jt['missing_at_end'] or 'none'}")
    ratios = [r["per_method"]["ratio"] for r in runs]
    reached = [r for r in ratios if r is not None]
    result = {"metric": args.metric, "within": args.within, "spread": spread,
              "grid_epochs": grid_epochs, "grid_cpu_s": grid_cpu, "runs": runs, "goal": GOAL,
              "picks": {k: dict(v) for k, v in picks.items()}, "winners": {k: dict(v) for k, v in winners.items()},
              "median_ratio": median_or_never(ratios)}
    print(f"result: per_method reached it in {len(reached)} of {len(ratios)} seeds; median share of the grid's "
          f"epochs {_fmt_ratio(result['median_ratio'])} (a seed that never reached it counted as infinitely late; "
          f"goal <= {GOAL})")
    for strategy in ("per_method", "joint"):
        print(f"trials per method in the first {n} trials, {strategy} (over {args.seeds} seeds): "
              + ", ".join(f"{m} {picks[strategy].get(m, 0)}" for m in best)
              + " | best method found: " + ", ".join(f"{m} {c}" for m, c in winners[strategy].most_common()))
    return result


def median_or_never(ratios: list[float | None]) -> float | None:
    """The median share over the search seeds, a seed that never got there counted as infinitely late: a
    number when more than half of them got there, else None (never)."""
    median = float(np.median([math.inf if r is None else r for r in ratios])) if ratios else math.inf
    return None if math.isinf(median) else median


def _fmt(v, spec: str = "d") -> str:
    return "never" if v is None else format(v, spec)


def _fmt_ratio(v) -> str:
    return "never" if v is None else f"{v:.2f}"


def load_or_record(args, echo=print) -> tuple[dict, dict]:
    """The recorded table (a reproduction's grids with ``--from-reproduction``; from ``--table`` when it matches
    the settings, else trained now) and its settings."""
    if args.from_reproduction:
        spec = shortened_spec(args.epochs, args.subset, False)
        return from_reproduction(Path(args.from_reproduction), spec, echo), {}
    settings = {"epochs": args.epochs, "subset": args.subset, "smoke": bool(args.smoke_test)}
    table = Path(args.table)
    if table.exists():
        saved = json.loads(table.read_text())
        if saved.get("settings") == settings:
            echo(f"recorded curves from {table}")
            return saved["curves"], saved
    spec = shortened_spec(args.epochs, args.subset, args.smoke_test)
    echo(f"recording the grid: {args.epochs} epochs, subset {args.subset}, dataset {spec.data.dataset}")
    start = time.perf_counter()
    curves = record(spec, echo)
    saved = {"settings": settings, "record_wall_s": time.perf_counter() - start, "curves": curves}
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(json.dumps(saved))
    return curves, saved


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--subset", type=int, default=12000)
    p.add_argument("--seeds", type=int, default=5, help="search seeds (>= 5 for the measure)")
    p.add_argument("--trials", type=int, help="trials per simulated search (default: 3 x the grid)")
    p.add_argument("--grace", type=int, default=GRACE, help="ASHA's grace period (0: no ASHA)")
    p.add_argument("--table", default=str(DEFAULT_TABLE))
    p.add_argument("--record-only", action="store_true")
    p.add_argument("--from-reproduction", metavar="PROTOCOL",
                   help="replay on the grid trials a reproduction trained (e.g. docs/reproductions/"
                        "lr_table1_fmnist_augmented.yaml: the full protocol, 50 epochs, all training images) instead of "
                        "recording shortened ones")
    p.add_argument("--metric", choices=sorted(METRICS), default="val/acc",
                   help="what the searches optimise and the measure compares (val/ece: lower is better)")
    p.add_argument("--within", type=float, default=WITHIN,
                   help="how close to a method's grid-best counts as found (default 0.005: 0.5 pp of accuracy)")
    p.add_argument("--smoke-test", action="store_true",
                   help="digits (300 images), the first 2 values of each grid, 3 epochs, 2 search seeds: seconds")
    args = p.parse_args(argv)
    if args.from_reproduction:
        from search_spaces.study_file import load_study

        args.epochs, args.subset = load_study(PRESET).training.epochs, None
    if args.smoke_test:
        args.epochs, args.subset, args.seeds, args.grace = 3, 300, 2, min(args.grace, 2)
        if args.table == str(DEFAULT_TABLE):
            import tempfile

            args.table = str(Path(tempfile.mkdtemp(prefix="bench_search_pays_")) / "curves.json")
    return args


def main(argv=None) -> dict:
    args = _args(argv)
    print(header("bench_search_pays: does the search pay?",
                 f"per_method TPE+ASHA epochs until every method is within {args.within:g} of its grid-best "
                 f"({args.metric}) <= {GOAL} x grid",
                 "one trial per method that lands on its grid-best first: the epochs of those trials"))
    curves, saved = load_or_record(args)
    if args.record_only:
        return {"curves": curves}
    return simulate_all(curves, saved, args)


if __name__ == "__main__":
    main()
