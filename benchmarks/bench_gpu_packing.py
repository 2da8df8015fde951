"""Benchmark 3: GPU packing — aggregate images/s with 1, 2, 4, 8 trials sharing one GPU.

Each trial is a separate process (as a Ray trial with ``resources.gpu = 1/k`` is) running the project's
Trainer on Fashion-MNIST; after one warm-up epoch all trials start together (a barrier) and train
``--epochs`` epochs (each with its per-epoch validation, as in a study). Aggregate rate = all trials'
training images / (last end - first start). GPU utilisation and memory are sampled meanwhile (pynvml or
nvidia-smi); each trial reports its peak ``torch.cuda.max_memory_allocated``, which with the CUDA context
(~0.5 GiB per process) gives how many trials fit in the GPU's memory.

Bound: none fixed; the best share (``resources.gpu = 1/k`` for the k with the highest aggregate
rate) goes into the docs.
Theoretical minimum: with k trials the aggregate rate cannot exceed the single-trial rate divided by the
single trial's GPU utilisation (the GPU's idle time is all packing can fill).

CPU mode (no GPU, or ``--device cpu``): the same processes share the CPU cores (threads = cores // k).
Usage: python -m benchmarks.bench_gpu_packing [--models small_cnn timm/resnet18] [--trials 1 2 4 8]
       [--epochs 2] [--subset N] [--batch-size 512] [--runs 1] [--device auto] [--smoke-test]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import threading
import time

from benchmarks.common import GpuSampler, header, load_average, stats

CUDA_CONTEXT_MB = 500


def trial_worker(config: dict, threads: int, epochs: int, barrier, results) -> None:
    import torch

    from trainables.config import TrialConfig
    from trainables.peak_memory import peak_memory_mb, reset_peak_memory
    from trainables.trainer import Trainer

    torch.set_num_threads(threads)
    try:
        trainer = Trainer(TrialConfig(**config))
        trainer.train_epoch()  # warm-up: cudnn.benchmark's kernel choice, allocator, compile
        reset_peak_memory(trainer.device)
        barrier.wait()
        start = time.time()
        images = 0.0
        for _ in range(epochs):
            m = trainer.train_epoch()
            images += m["time/images_per_s"] * m["time/train_s"]
        end = time.time()
        total_mb = torch.cuda.mem_get_info(trainer.device)[1] / 2**20 if trainer.device.type == "cuda" else 0.0
        results.put({"start": start, "end": end, "images": images, "peak_mb": peak_memory_mb(trainer.device),
                     "total_mb": total_mb})
    except BaseException as err:  # the parent must not wait forever at the barrier
        barrier.abort()
        results.put({"error": f"{type(err).__name__}: {err}"})


def pack(config: dict, k: int, threads: int, epochs: int) -> dict:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(k + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=trial_worker, args=(config, threads, epochs, barrier, results)) for _ in range(k)]
    for p in procs:
        p.start()
    sampler = GpuSampler() if config["device"] == "cuda" else None
    try:
        barrier.wait(timeout=1800)
    except threading.BrokenBarrierError:
        for p in procs:
            p.join()
        raise RuntimeError(f"a packed trial failed: {results.get(timeout=60).get('error')}") from None
    if sampler:
        sampler.__enter__()
    rows = [results.get(timeout=3600) for _ in range(k)]
    if sampler:
        sampler.__exit__()
    for p in procs:
        p.join()
    errors = [r["error"] for r in rows if "error" in r]
    if errors:
        raise RuntimeError(f"a packed trial failed: {errors[0]}")
    wall = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    peak = max(r["peak_mb"] for r in rows)
    out = {"k": k, "aggregate": sum(r["images"] for r in rows) / wall,
           "per_trial": stats([r["images"] / (r["end"] - r["start"]) for r in rows]).median, "peak_mb": peak,
           "gpu": sampler.summary() if sampler else "cpu", "load": load_average()}
    if rows[0]["total_mb"]:
        out["fit"] = int(rows[0]["total_mb"] // (peak + CUDA_CONTEXT_MB))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["small_cnn", "timm/resnet18"])
    parser.add_argument("--trials", nargs="+", type=int, default=[1, 2, 4, 8], help="trials per GPU")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per trial (after one warm-up)")
    parser.add_argument("--subset", type=int, default=None, help="default: all of Fashion-MNIST")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--smoke-test", action="store_true", help="CPU: small_cnn, 1 and 2 trials, 400 images")
    args = parser.parse_args(argv)
    import torch

    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    if args.smoke_test:
        device, args.models, args.trials, args.epochs, args.subset, args.batch_size = "cpu", ["small_cnn"], [1, 2], 1, 400, 64
    cores = len(os.sched_getaffinity(0))
    print(header("bench_gpu_packing: aggregate images/s with k trials per GPU",
                 "none fixed: report the best share 1/k",
                 "aggregate <= single-trial rate / single-trial GPU utilisation"))
    print(f"device {device}  trials per device {args.trials}  epochs {args.epochs} timed + 1 warm-up  "
          f"subset {args.subset or 'all'}  batch {args.batch_size}  runs {args.runs}")
    out: dict[str, list] = {}
    for model in args.models:
        config = {"dataset": "fashion_mnist", "subset": args.subset, "model": model, "batch_size": args.batch_size,
                  "epochs": args.epochs + 1, "device": device, "compile": args.compile, "representation": False,
                  "probe": False, "schedule": "constant"}
        rows = []
        for k in args.trials:
            threads = 1 if device == "cuda" else max(1, cores // k)
            runs = [pack(config, k, threads, args.epochs) for _ in range(args.runs)]
            agg = stats([r["aggregate"] for r in runs])
            row = {**runs[-1], "aggregate": agg.median, "aggregate_stats": agg.as_dict()}
            row["speedup"] = row["aggregate"] / rows[0]["aggregate"] if rows else 1.0
            rows.append(row)
            print(f"{model:<14} k={k}: aggregate {agg.describe(' img/s', '{:,.0f}')}  per trial "
                  f"{row['per_trial']:,.0f} img/s  x{row['speedup']:.2f} vs k={args.trials[0]}  peak/trial "
                  f"{row['peak_mb']:.0f} MiB" + (f" (~{row['fit']} fit)" if "fit" in row else "")
                  + f"  {row['gpu']}  (load: {row['load']})")
        best = max(rows, key=lambda r: r["aggregate"])
        print(f"result {model}: best k={best['k']} (resources.gpu = {1 / best['k']:g}) at {best['aggregate']:,.0f} img/s")
        out[model] = rows
    return out


if __name__ == "__main__":
    main()
