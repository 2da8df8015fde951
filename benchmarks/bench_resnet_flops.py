"""Benchmark 5: ResNet-18 (timm) on full Fashion-MNIST: images/s and the fraction of the device's peak FLOP/s.

FLOPs per training image are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one forward and
backward pass of a batch (matmuls and convolutions; the optimiser step and elementwise ops are not counted),
divided by the batch size. Two rates: the Trainer's own training rate (``time/images_per_s``: the project's
loop with bf16 autocast, channels_last and cudnn.benchmark on CUDA; first epoch = warm-up) and the model
alone on random device-resident data (same batch, same precision) as the ceiling for that model and batch.
Achieved FLOP/s = images/s × FLOPs/image, against (a) the GPU's data-sheet dense bf16 peak
(``benchmarks.common.BF16_PEAK_TFLOPS``, or ``--peak-tflops``) and (b) a measured large bf16 matmul (fp32 on
CPU). Reference: airbench trains a smaller CIFAR-10 network at ~130–160k images/s on an A100.

Bound: report images/s and the fraction of peak (no pass/fail bound; the Trainer should reach the
model-alone rate within 10%).
Theoretical minimum: time per image = FLOPs/image / peak FLOP/s (printed as the ceiling in images/s).

Usage: python -m benchmarks.bench_resnet_flops [--model timm/resnet18] [--batch-size 512] [--epochs 3]
       [--subset N] [--compile] [--device auto] [--smoke-test]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import bf16_peak_tflops, gpu_name, header, load_average, stats, time_runs

AIRBENCH_A100 = (130_000, 160_000)


def flops_per_image(model: torch.nn.Module, shape: tuple[int, int, int], batch: int = 8) -> tuple[float, float]:
    """(training FLOPs per image: forward + backward, forward FLOPs per image), counted on CPU in fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.cpu().train()
    x = torch.randn(batch, *shape)
    with FlopCounterMode(display=False) as fwd:
        model(x)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch, fwd.get_total_flops() / batch


def matmul_flops(device: torch.device, n: int, runs: int) -> float:
    """FLOP/s of an n×n×n matmul (bf16 on CUDA, fp32 on CPU): what the device gives in practice."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    return 2 * n**3 / time_runs(lambda: a @ b, runs, warmup=2, sync=sync).median


def model_alone_rate(model_name: str, in_chans: int, size: int, batch: int, device: torch.device, steps: int) -> float:
    """Images/s of forward+backward+SGD on random device-resident data, the Trainer's precision and layout."""
    from trainables.models import build_model

    model = build_model(model_name, in_chans, 10, size).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, in_chans, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if cuda else None
    seconds = time_runs(lambda: [step() for _ in range(steps)], runs=3, warmup=1, sync=sync).median
    return batch * steps / seconds


def trainer_rates(args: argparse.Namespace, device: torch.device) -> tuple[list[float], float]:
    from trainables.config import TrialConfig
    from trainables.peak_memory import peak_memory_mb, reset_peak_memory
    from trainables.trainer import Trainer

    cfg = TrialConfig(dataset="fashion_mnist", subset=args.subset, model=args.model, batch_size=args.batch_size,
                      epochs=args.epochs, lr=0.05, device=device.type, compile=args.compile,
                      representation=False, probe=False, schedule="constant")
    trainer = Trainer(cfg)
    reset_peak_memory(trainer.device)
    rates = [trainer.train_epoch()["time/images_per_s"] for _ in range(args.epochs)]
    return rates, peak_memory_mb(trainer.device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="timm/resnet18")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3, help="Trainer epochs; the first is warm-up")
    parser.add_argument("--subset", type=int, default=None, help="default: all 60k on a GPU, 3000 on CPU")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed run of the model alone")
    parser.add_argument("--compile", action="store_true", help="TrialConfig.compile for the Trainer")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the data-sheet bf16 peak")
    parser.add_argument("--matmul-n", type=int, default=8192)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--smoke-test", action="store_true", help="CPU-sized: 200 images, batch 16, 2 epochs")
    args = parser.parse_args(argv)
    from trainables.data import get_dataset_info
    from trainables.models import build_model
    from trainables.trainer import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if args.smoke_test:
        args.subset, args.batch_size, args.epochs, args.steps, args.matmul_n = 200, 16, 2, 1, 256
    elif args.subset is None and not cuda:
        args.subset, args.batch_size, args.matmul_n = 3000, 128, 2048
    print(header("bench_resnet_flops: ResNet-18 on Fashion-MNIST, images/s and fraction of peak FLOP/s",
                 "reported; the Trainer within 10% of the model-alone rate",
                 "FLOPs/image / peak FLOP/s per image (the ceiling below)"))
    info = get_dataset_info("fashion_mnist")
    shape = (info.in_chans, info.image_size, info.image_size)
    train_flops, fwd_flops = flops_per_image(build_model(args.model, *shape[:1], 10, shape[1]), shape)
    print(f"model {args.model} on {shape}: {fwd_flops / 1e6:.1f} MFLOP forward, {train_flops / 1e6:.1f} MFLOP "
          f"forward+backward per image (FlopCounterMode)")
    sheet = args.peak_tflops or bf16_peak_tflops(gpu_name())
    measured = matmul_flops(device, args.matmul_n, runs=5)
    print(f"device {device}: measured {'bf16' if cuda else 'fp32'} {args.matmul_n}³ matmul {measured / 1e12:.2f} "
          f"TFLOP/s; data-sheet bf16 peak {sheet or 'n/a'} TFLOP/s  (load: {load_average()})")

    alone = model_alone_rate(args.model, shape[0], shape[1], args.batch_size, device, args.steps)
    rates, peak_mb = trainer_rates(args, device)
    timed = stats(rates[1:] or rates)
    print(f"Trainer ({args.subset or 'all'} images incl. validation split, batch {args.batch_size}, "
          f"compile={args.compile}): {timed.describe(' img/s', '{:,.0f}')}  peak memory {peak_mb:.0f} MiB")
    print(f"model alone (random data, same batch): {alone:,.0f} img/s -> Trainer/alone {timed.median / alone:.3f}")
    achieved = timed.median * train_flops
    out = {"train_flops_per_image": train_flops, "forward_flops_per_image": fwd_flops, "images_per_s": timed.as_dict(),
           "model_alone_images_per_s": alone, "achieved_flops": achieved, "matmul_flops": measured,
           "peak_mem_mb": peak_mb, "trainer_over_alone": timed.median / alone}
    line = f"achieved {achieved / 1e12:.3f} TFLOP/s = {achieved / measured:.1%} of the measured matmul"
    if sheet:
        out["fraction_of_peak"] = achieved / (sheet * 1e12)
        line += (f", {out['fraction_of_peak']:.1%} of the {sheet:g} TFLOP/s bf16 peak (ceiling at peak "
                 f"{sheet * 1e12 / train_flops:,.0f} img/s)")
    print(line)
    print(f"airbench (smaller net, CIFAR-10, A100): {AIRBENCH_A100[0]:,}–{AIRBENCH_A100[1]:,} img/s; this run: "
          f"{timed.median / AIRBENCH_A100[1]:.3f}–{timed.median / AIRBENCH_A100[0]:.3f} of it"
          + ("" if cuda else " (CPU: not comparable; still to be measured on a GPU)"))
    print(f"result: {timed.median:,.0f} img/s on {gpu_name() or 'cpu'}  (load: {load_average()})")
    return out


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.1f} s")
