"""Benchmark: does the search pay? ``per_method`` TPE + ASHA against the full grid on the Label Relaxation
paper's Fashion-MNIST space (studies/lr_table1_fmnist.yaml: CE, LS, LR, CP, FL with the paper's grids).

Two stages, and what is real and what is simulated:

1. **Recorded (real training).** Every one of the grid's 29 configurations is trained once, in-process with
   the project's training loop (``trainables.loop.make_trainer``), shortened: ``--epochs`` epochs (default
   20; the step schedule's 20-of-50 epochs scaled to the same share) on a ``--subset`` of the training
   images (default 12000, 1/6 held out for validation as in the preset), no end-of-trial evaluation. Each
   epoch's validation accuracy and CPU-seconds (process time) are written to a table (``--table``).
2. **Simulated searches.** The searches are replayed against that table: Optuna ask/tell with the
   project's own samplers (``study.samplers``), per-method spaces and budgets (``search_spaces.budgets``)
   and a re-implementation of Ray's ASHA rung rule (a trial at a rung is stopped when its value is below
   the (1 - 1/reduction_factor) quantile of the values recorded at that rung so far; rungs per method for
   ``per_method``, shared for ``joint``), trials one after the other. A trial that asks for a configuration
   gets its recorded curve (one training seed per configuration: repeated draws see the same curve, no
   seed noise). Epochs and CPU-seconds are those of the recorded epochs the simulated trials ran.

Measure: the epochs (and CPU-seconds) per_method TPE + ASHA spends until every method's chosen
configuration (its best completed trial by final validation accuracy) is within 0.5 pp of that method's
grid-best, per search seed, as a share of the full grid's epochs (goal: <= 0.35); and, with the same
number of trials, how many trials ``joint`` and ``per_method`` give each method and which method each picks.

Usage: python benchmarks/bench_search_pays.py [--epochs 20] [--subset 12000] [--seeds 5]
       [--table runs/bench_search_pays/curves.json] [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, header  # noqa: E402

PRESET = ROOT / "studies" / "lr_table1_fmnist.yaml"
GOAL = 0.35
WITHIN = 0.005  # 0.5 pp of validation accuracy
DEFAULT_TABLE = ROOT / "runs" / "bench_search_pays" / "curves.json"


def grid_configs(spec) -> list[tuple[str, dict]]:
    """Every configuration of the preset's grids: (method, hyperparameters)."""
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
    from search_spaces.schema import load_study

    spec = load_study(PRESET)
    t = spec.training
    data = {"subset": subset}
    if smoke:
        data.update(dataset="digits", val_fraction=0.2, augment=False)
    step = max(1, round(t.step_size * epochs / t.epochs))
    return spec.model_copy(update={
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
        acc, cpu = [], []
        while not trainer.done:
            start = time.process_time()
            metrics = trainer.train_epoch()
            cpu.append(time.process_time() - start)
            acc.append(float(metrics["val/acc"]))
        key = config_key(loss, params)
        curves[key] = {"loss": loss, "params": params, "val_acc": acc, "cpu_s": cpu}
        echo(f"  recorded {key}: val/acc {acc[-1]:.4f} after {len(acc)} epochs, {sum(cpu):.1f} CPU-s")
    return curves


def load_or_record(args, echo=print) -> tuple[dict, dict]:
    """The recorded table (from ``--table`` when it matches the settings, else trained now) and its settings."""
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
    p.add_argument("--table", default=str(DEFAULT_TABLE))
    p.add_argument("--record-only", action="store_true")
    p.add_argument("--smoke-test", action="store_true", help="digits, 2 epochs, 2 search seeds: seconds")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.epochs, args.subset, args.seeds = 3, None, 2
    return args


def main(argv=None) -> dict:
    args = _args(argv)
    print(header("bench_search_pays: does the search pay?",
                 f"per_method TPE+ASHA epochs until every method is within 0.5 pp of its grid-best <= {GOAL} x grid",
                 "one trial per method that lands on its grid-best first: the epochs of those trials"))
    curves, saved = load_or_record(args)
    if args.record_only:
        return {"curves": curves}
    return simulate_all(curves, saved, args)


if __name__ == "__main__":
    main()
