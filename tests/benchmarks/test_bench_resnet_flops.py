import pytest
from torch import nn

from benchmarks.bench_resnet_flops import flops_per_image, main


def test_flops_of_a_linear_layer_by_hand():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False))
    train, forward = flops_per_image(model, (3, 2, 2), batch=4)
    assert forward == 2 * 12 * 5  # one multiply-add per weight
    assert train == 2 * forward  # backward: the weight gradient only (the input needs none)


def test_smoke_mode_on_cpu(capsys):
    result = main(["--smoke-test", "--device", "cpu"])
    # timm resnet18 at 28×28: forward ≈ 1.8 GFLOP·(28/224)² ≈ 30 MMAC ≈ 60 MFLOP; training ≈ 3× forward
    assert 40e6 < result["forward_flops_per_image"] < 90e6
    assert result["train_flops_per_image"] == pytest.approx(3 * result["forward_flops_per_image"], rel=0.05)
    assert result["images_per_s"]["median"] > 0 and result["model_alone_images_per_s"] > 0
    assert result["achieved_flops"] == pytest.approx(result["images_per_s"]["median"] * result["train_flops_per_image"])
    assert result["peak_mem_mb"] > 0
    out = capsys.readouterr().out
    assert "cpu:" in out and "airbench" in out and "result:" in out
