"""Cost of every registered loss against cross-entropy.

Two measurements, each as the median over ``--runs`` runs (all losses timed in turn inside every run, so
that drift of the machine hits them alike; the ratio to CE is taken within a run, then the median):

1. forward+backward of the loss alone on (B, K) logits, B = 256, K in {10, 100, 1000};
2. one whole training step (zero_grad, forward, loss, backward, Nesterov SGD step) of the quick model, the
   784-1024-1024-10 MLP on random 28x28 data, batch 256.

Bounds. (1) is memory-bound: a loss must at least read the B×K logits and write their B×K gradient, so
its floor is 2·B·K·4 bytes at the memory bandwidth; the table gives the bytes and the achieved GB/s for
that floor. For small K, per-call overheads (a few µs per PyTorch op) dominate instead. (2) is
compute-bound: 3 matmul passes × 2·B·(784·1024 + 1024·1024 + 1024·10) FLOP ≈ 2.9 GFLOP per step; the
table gives the GFLOP/s reached by the CE step. The ideal ratio is 1.00 (the loss costs nothing next to
the network); the goal is every method within 3% of CE for the whole step.

Run ``python -m benchmarks.bench_losses [--device cuda] [--runs 7]``; ``--smoke-test`` runs in seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from trainables.losses import build_loss, list_losses
from trainables.models.small import MLP

BATCH = 256


def hardware(device: torch.device) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = (f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; "
            f"torch {torch.__version__}, python {platform.python_version()}")
    if device.type == "cuda":
        text += f"; GPU {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    return text


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_in_turn(jobs: dict[str, Callable[[], None]], runs: int, iters: int, device: torch.device):
    """Seconds per call: ``{name: [per-run mean]}``, every job timed once per run, in turn."""
    for job in jobs.values():  # warm-up (allocator, kernels, autotuning)
        for _ in range(max(2, iters // 4)):
            job()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(runs):
        for name, job in jobs.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(iters):
                job()
            _sync(device)
            times[name].append((time.perf_counter() - start) / iters)
    return times


def summarise(times: dict[str, list[float]]) -> list[dict]:
    """Median time, spread ((max − min)/median) and the median of the within-run ratios to CE."""
    rows = []
    for name, ts in times.items():
        ratios = [t / c for t, c in zip(ts, times["ce"])]
        med = statistics.median(ts)
        rows.append({"loss": name, "median_us": med * 1e6, "spread_pct": 100 * (max(ts) - min(ts)) / med,
                     "ratio_to_ce": statistics.median(ratios)})
    return rows


def loss_jobs(num_classes: int, device: torch.device) -> dict[str, Callable[[], None]]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    logits = (torch.randn(BATCH, num_classes, generator=gen) * 3).to(device).requires_grad_()
    targets = torch.randint(0, num_classes, (BATCH,), generator=gen).to(device)
    jobs = {}
    for name in list_losses():
        loss = build_loss(name, num_classes).to(device)

        def job(loss=loss):
            logits.grad = None
            loss(logits, targets).backward()

        jobs[name] = job
    return jobs


def step_jobs(device: torch.device, width: int = 1024) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    base = MLP(in_chans=1, num_classes=10, image_size=28, width=width).to(device)
    images = torch.randn(BATCH, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (BATCH,), device=device)
    jobs = {}
    for name in list_losses():
        model, loss = copy.deepcopy(base), build_loss(name, 10).to(device)
        optimizer = torch.optim.SGD(list(model.parameters()) + list(loss.parameters()), lr=1e-3, momentum=0.9,
                                    nesterov=True)

        def job(model=model, loss=loss, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            loss(model(images), labels).backward()
            optimizer.step()

        jobs[name] = job
    return jobs


def print_table(title: str, rows: list[dict], extra: Callable[[dict], str] = lambda r: "") -> None:
    print(f"\n{title}")
    print(f"{'loss':<20}{'median µs':>12}{'spread %':>10}{'ratio vs CE':>13}  {''}")
    for r in sorted(rows, key=lambda r: r["ratio_to_ce"]):
        print(f"{r['loss']:<20}{r['median_us']:>12.1f}{r['spread_pct']:>10.1f}{r['ratio_to_ce']:>13.3f}  {extra(r)}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--loss-iters", type=int, default=50, help="calls per timed run, loss alone")
    parser.add_argument("--step-iters", type=int, default=10, help="steps per timed run, whole step")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--width", type=int, default=1024, help="hidden width of the MLP")
    parser.add_argument("--smoke-test", action="store_true", help="tiny settings: checks the script runs")
    args = parser.parse_args(argv)
    if args.device not in ("cpu", "cuda"):
        parser.error(f"--device={args.device!r} is not allowed; allowed: cpu, cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device=cuda but no CUDA device is available")
    if args.smoke_test:
        args.runs, args.classes, args.loss_iters, args.step_iters, args.width = 2, [10], 2, 1, 64
    device = torch.device(args.device)

    print(f"bench_losses on {device}: {hardware(device)}")
    print(f"batch {BATCH}, {args.runs} runs; median over runs, spread = (max - min) / median, "
          "ratio = median of within-run ratios to CE")
    results: dict = {"hardware": hardware(device), "device": args.device, "runs": args.runs, "loss_alone": {}}
    for k in args.classes:
        rows = summarise(time_in_turn(loss_jobs(k, device), args.runs, args.loss_iters, device))
        floor_bytes = 2 * BATCH * k * 4
        print_table(f"forward+backward of the loss alone, K = {k} (memory floor {floor_bytes / 1e3:.0f} kB)",
                    rows, lambda r, b=floor_bytes: f"{b / r['median_us'] / 1e3:.2f} GB/s of floor")
        results["loss_alone"][k] = rows
    rows = summarise(time_in_turn(step_jobs(device, args.width), args.runs, args.step_iters, device))
    ce_us = next(r["median_us"] for r in rows if r["loss"] == "ce")
    w = args.width
    flop = 3 * 2 * BATCH * (784 * w + w * w + w * 10)
    # The loss-alone extra time at K = 10 over CE's step time: what the step ratio should be without noise.
    alone = {r["loss"]: r["median_us"] for r in results["loss_alone"].get(10, [])}
    expected = {n: 1 + (us - alone["ce"]) / ce_us for n, us in alone.items()}
    for r in rows:
        r["expected_ratio"] = expected.get(r["loss"])
    print_table(f"whole training step, MLP 784-{w}-{w}-10, batch {BATCH} "
                f"({flop / 1e9:.2f} GFLOP; CE step reaches {flop / ce_us / 1e3:.1f} GFLOP/s)", rows,
                lambda r: "" if r["expected_ratio"] is None else f"expected from loss alone {r['expected_ratio']:.3f}")
    results["train_step"], results["width"] = rows, w
    worst = max(rows, key=lambda r: r["ratio_to_ce"])
    print(f"\nworst training-step ratio: {worst['loss']} {worst['ratio_to_ce']:.3f} (goal <= 1.03)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
