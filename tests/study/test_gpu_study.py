"""Trials sharing one GPU through Ray's fractional GPUs (``resources.gpu: 0.5``): both run at once, on the GPU.
Skipped without a CUDA device (run on the GPU machine through benchmarks/gpu/run.py)."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from trainables.tune_reporting import result_metrics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ROOT = Path(__file__).resolve().parents[2]


def test_two_trials_share_one_gpu(tmp_path):
    from study.runner import run_study

    spec = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())
    spec.update(name="gpu_share", model="small_cnn", evaluation={"representation": False, "probe": False},
                search={"num_samples": 2, "max_concurrent": 2, "sampler": "random"}, asha={"enabled": False},
                resources={"cpu": 1, "gpu": 0.5})
    spec["training"] = {**spec["training"], "device": "cuda", "epochs": 6}
    path = tmp_path / "gpu_share.yaml"
    path.write_text(yaml.safe_dump(spec))
    study = run_study(path, tmp_path / "runs", echo=lambda line: None)

    spans, peaks = [], []
    for result_file in study.root.rglob("result.json"):
        rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        assert rows[-1]["epoch"] == 6
        spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"]))
        peaks.append(result_metrics(rows[-1])["sys/peak_mem_mb"])
    assert len(spans) == 2
    (s0, e0), (s1, e1) = sorted(spans)
    assert s1 < e0, f"the two trials ran one after the other: {spans}"
    # CUDA tensors of a small CNN on 600 digits: far below a CPU process's resident set
    assert all(0 < p < 200 for p in peaks), peaks
