"""Benchmark: one trial of a preset study (default ``studies/lr_table1_fmnist_augmented.yaml``: 2×1024 MLP on Fashion-MNIST,
batch 64, random flip + shift, SGD Nesterov) on CPU, against a bare loop and the machine's matmul rates.

In one process, with the preset's torch threads (``resources.cpu``), each run measures in turn:
- ``matmul``: the GEMMs of one training step at the trial's shapes (per linear layer: forward, weight grad,
  input grad except the first layer's), back to back on contiguous fp32 or bf16 operands, as GFLOP/s and
  as images/s (GFLOP/s / FLOPs per image). A 2048² matmul is printed as the machine's large-matrix rate.
  ``matmul+sgd`` adds the time of the trial's optimiser step alone (fused SGD over all parameters, fp32:
  memory-bound), the floor of a step that keeps fp32 weights;
- ``bare``: ``bench_trainable.bare_loop_rates`` with the same augmentation (shift + flip in one gather),
  cross-entropy, fused SGD, fp32 or bf16 autocast, under the allocator settings the Trainer uses on CPU
  (``trainables.cpu_memory``);
- ``trial``: ``Trainer.train_epoch`` of the preset's configuration (method ce) in fp32 (``amp_cpu: false``) and
  bf16 (``amp_cpu: true``); its validation split is cut to one evaluation batch, so the rate is the training
  loop's (the per-epoch validation costs ~1/3 · val/train of an epoch on top: see bench_trainable).
Rates are medians over the timed epochs (the first of each variant is warm-up), in images per wall second and
per CPU second (process time: on a shared 2-core machine the latter shows the work and hardly moves with
the load; the load average is printed with every run).

Bound (issue: make the preset's trial fast): trial / bare ≥ 0.9 and trial / matmul ≥ 0.5, both at the
precision the preset trains in (CPU time).
Theoretical minimum: the matmul time alone, 3 × forward FLOPs less the first layer's input gradient
(9.56 MFLOP per 28×28 image for the 2×1024 MLP); the optimiser (one fused pass over the 1.86 M parameters per
step: read weight, grad, momentum, write weight, momentum, ~37 MB) comes on top whatever the precision, and
with bf16 autocast the casts of the weights and their grads; ratio 1.0 to the matmul rate is out of reach.

``--accuracy EPOCHS`` instead trains the trial (method ce, all its training data unless ``--subset``) for EPOCHS
in fp32 and in bf16 autocast for each of ``--seeds`` and prints validation and test accuracy, NLL and ECE:
the check that CPU autocast does not change the results beyond seed-to-seed variation.

Usage: python -m benchmarks.bench_preset_trial [--study studies/lr_table1_fmnist_augmented.yaml] [--subset 12000]
       [--epochs 3] [--runs 3] [--precisions fp32 bf16] [--smoke-test]
       python -m benchmarks.bench_preset_trial --accuracy 5 --subset 0 --seeds 0 1
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

import torch

from benchmarks.bench_trainable import bare_loop_rates
from benchmarks.common import ROOT, Clock, header, load_average, stats

GOAL_BARE, GOAL_MATMUL = 0.9, 0.5
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def linear_gemms(model: torch.nn.Module, batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of each GEMM of one training step of the model's linear layers."""
    shapes = []
    for i, layer in enumerate(m for m in model.modules() if isinstance(m, torch.nn.Linear)):
        fan_in, fan_out = layer.in_features, layer.out_features
        shapes += [(batch, fan_in, fan_out), (fan_out, batch, fan_in)]  # forward, weight grad
        if i > 0:
            shapes.append((batch, fan_out, fan_in))  # input grad (none for the first layer)
    return shapes


def flops(shapes: list[tuple[int, int, int]]) -> int:
    return sum(2 * m * k * n for m, k, n in shapes)


def matmul_rates(shapes: list[tuple[int, int, int]], dtype: torch.dtype, repeats: int) -> tuple[float, float]:
    """(wall, CPU-time) GFLOP/s of the GEMMs back to back, after one warm-up pass."""
    operands = [(torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)) for m, k, n in shapes]
    for a, b in operands:
        a @ b
    clock = Clock()
    for _ in range(repeats):
        for a, b in operands:
            a @ b
    wall, cpu = clock.rates(flops(shapes) * repeats)
    return wall / 1e9, cpu / 1e9


def optimizer_rates(model: torch.nn.Module, lr: float, repeats: int) -> tuple[float, float]:
    """(wall, CPU-time) steps/s of the trial's optimiser alone (fused SGD, Nesterov) on the model's parameters."""
    for param in model.parameters():
        param.grad = torch.randn_like(param)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, fused=True)
    opt.step()
    clock = Clock()
    for _ in range(repeats):
        opt.step()
    return clock.rates(repeats)


def preset_config(study: Path, subset: int | None, epochs: int, amp_cpu: bool):
    from search_spaces.study_file import load_study
    from trainables.config import TrialConfig

    base = load_study(study).base_trial_config()
    base.update(loss="ce", loss_params={}, subset=subset, epochs=epochs, device="cpu", amp_cpu=amp_cpu,
                representation=False, probe=False)
    return TrialConfig.from_dict(base)


def trial_rates(config) -> tuple[list[tuple[float, float]], list[float]]:
    """(wall, CPU-time) images/s and minor page faults per step of each epoch of the Trainer on ``config``,
    validation cut to one batch."""
    from trainables.trainer import Trainer

    trainer = Trainer(config)
    trainer.val_data = trainer.val_data.subset(torch.arange(min(len(trainer.val_data), config.eval_batch_size)))
    rates, faults = [], []
    for _ in range(config.epochs):
        clock, before = Clock(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        trainer.train_epoch()
        rates.append(clock.rates(trainer.steps_per_epoch * config.batch_size))
        faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / trainer.steps_per_epoch)
    return rates, faults


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=ROOT / "studies" / "lr_table1_fmnist_augmented.yaml")
    parser.add_argument("--subset", type=int, default=12000, help="training+validation images (0: all)")
    parser.add_argument("--epochs", type=int, default=3, help="per variant and run; the first is warm-up")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=tuple(DTYPES))
    parser.add_argument("--matmul-repeats", type=int, default=100)
    parser.add_argument("--accuracy", type=int, default=0, metavar="EPOCHS",
                        help="train fp32 and bf16 runs of EPOCHS and compare their accuracy instead")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of --accuracy")
    parser.add_argument("--smoke-test", action="store_true", help="subset 1200, 2 epochs, 1 run")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.subset, args.epochs, args.runs, args.matmul_repeats = 1200, 2, 1, 2
    if args.accuracy:
        return accuracy_check(args)
    from search_spaces.study_file import load_study
    from trainables.cpu_memory import keep_freed_memory
    from trainables.data import get_dataset_info
    from trainables.models import build_model

    keep_freed_memory()  # as the Trainer does on CPU: the bare loop runs under the same allocator settings
    spec = load_study(args.study)
    threads = max(1, int(spec.resources.cpu))
    torch.set_num_threads(threads)
    configs = {p: preset_config(args.study, args.subset or None, args.epochs, p == "bf16") for p in args.precisions}
    cfg = next(iter(configs.values()))
    info = get_dataset_info(cfg.dataset)
    model = build_model(cfg.model, info.in_chans, info.num_classes, info.image_size)
    shapes = linear_gemms(model, cfg.batch_size)
    per_image = flops(shapes) / cfg.batch_size
    used = "bf16" if spec.training.amp and spec.training.amp_cpu else "fp32"
    print(header(f"bench_preset_trial: one {spec.name} trial on CPU vs a bare loop and the matmul rate",
                 f"trial/bare >= {GOAL_BARE} and trial/matmul >= {GOAL_MATMUL} at the preset's precision ({used})",
                 f"the GEMMs alone: {per_image / 1e6:.2f} MFLOP per image at batch {cfg.batch_size}"))
    print(f"setup: {cfg.dataset} subset={cfg.subset} model={cfg.model} batch={cfg.batch_size} "
          f"augment={cfg.augment} threads={threads} epochs={args.epochs} runs={args.runs}  GEMMs (m, k, n): {shapes}")
    for name in args.precisions:
        square = matmul_rates([(2048, 2048, 2048)], DTYPES[name], 2 if args.smoke_test else 5)
        print(f"{name} 2048² matmul: {square[1]:.0f} GFLOP/s per CPU second ({square[0]:.0f} wall)")
    rows: dict[str, list[tuple[float, float]]] = {}
    for run in range(args.runs):
        for name in args.precisions:
            wall, cpu = matmul_rates(shapes, DTYPES[name], args.matmul_repeats)
            matmul = (wall * 1e9 / per_image, cpu * 1e9 / per_image)
            opt = tuple(cfg.batch_size * r for r in optimizer_rates(model, cfg.lr, args.matmul_repeats))
            measured = {
                "matmul": matmul,
                "matmul+sgd": tuple(1 / (1 / m + 1 / o) for m, o in zip(matmul, opt)),
                "bare": _median(bare_loop_rates(cfg.dataset, cfg.subset, cfg.model, cfg.batch_size, args.epochs,
                                                cfg.lr, torch.device("cpu"), threads, val_fraction=cfg.val_fraction,
                                                augment=cfg.augment, amp=name == "bf16")[1:]),
            }
            rates, faults = trial_rates(configs[name])
            measured["trial"] = _median(rates[1:])
            for kind, rate in measured.items():
                rows.setdefault(f"{kind} {name}", []).append(rate)
            print(f"run {run + 1} {name}: " + "  ".join(
                f"{kind} {cpu_rate:,.0f} img/s per CPU s ({wall_rate:,.0f} wall)"
                for kind, (wall_rate, cpu_rate) in measured.items())
                + f"  trial page faults/step {stats(faults[1:]).median:.0f}  (load: {load_average()})")
    summary = {}
    for key, values in rows.items():
        for i, clock in enumerate(("wall", "cpu")):
            summary[f"{key} {clock}"] = stats([v[i] for v in values])
            print(f"{key:<12} {clock:<4} {summary[f'{key} {clock}'].describe(' img/s', '{:,.0f}')}")
    ratios = {}
    for name in args.precisions:
        trial = summary[f"trial {name} cpu"].median
        ratios[name] = {"bare": trial / summary[f"bare {name} cpu"].median,
                        "matmul": trial / summary[f"matmul {name} cpu"].median}
        print(f"{name}: trial/bare {ratios[name]['bare']:.2f}  trial/matmul {ratios[name]['matmul']:.2f}  "
              f"trial/(matmul+sgd) {trial / summary[f'matmul+sgd {name} cpu'].median:.2f}  "
              f"(CPU time; matmul {summary[f'matmul {name} cpu'].median * per_image / 1e9:.0f} GFLOP/s)")
    if used in ratios:
        met = ratios[used]["bare"] >= GOAL_BARE and ratios[used]["matmul"] >= GOAL_MATMUL
        print(f"result: the preset trains in {used}: " + ("within" if met else "UNDER") + " the goals")
    print(f"load average at end: {load_average()}")
    return {"flops_per_image": per_image, "used": used, "ratios": ratios,
            **{k: s.as_dict() for k, s in summary.items()}}


def accuracy_check(args: argparse.Namespace) -> dict:
    from dataclasses import replace

    from trainables.loop import run_local

    torch.set_num_threads(1)
    print(header("bench_preset_trial --accuracy: the preset's trial in fp32 and in CPU bf16 autocast",
                 "bf16 within the fp32 seed-to-seed spread", "identical metrics"))
    keys = ("val/acc", "test/acc", "test/nll", "test/ece")
    results = {}
    for seed in args.seeds:
        for name in ("fp32", "bf16"):
            config = replace(preset_config(args.study, args.subset or None, args.accuracy, name == "bf16"), seed=seed)
            clock = Clock()
            history, final = run_local(config)
            results[(name, seed)] = {k: final.metrics[k] for k in keys}
            print(f"{name} seed {seed}, {args.accuracy} epochs: " + "  ".join(
                f"{k} {final.metrics[k]:.4f}" for k in keys) + f"  train/loss {history[-1]['train/loss']:.4f}  "
                f"{time_of(clock):.0f} s  (load: {load_average()})")
    for name in ("fp32", "bf16"):
        print(f"{name} mean over seeds {args.seeds}: " + "  ".join(
            f"{k} {sum(results[(name, s)][k] for s in args.seeds) / len(args.seeds):.4f}" for k in keys))
    return {f"{name} seed {seed}": metrics for (name, seed), metrics in results.items()}


def time_of(clock: Clock) -> float:
    return 1.0 / clock.rates(1.0)[0]


def _median(rates: list[tuple[float, float]]) -> tuple[float, float]:
    return stats([r[0] for r in rates]).median, stats([r[1] for r in rates]).median


if __name__ == "__main__":
    main()
