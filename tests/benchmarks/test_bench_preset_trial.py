import pytest

from benchmarks.bench_preset_trial import flops, linear_gemms, main
from trainables.models import build_model


def test_flops_of_the_mlp_step():
    shapes = linear_gemms(build_model("mlp", 1, 10, 28), batch=64)
    forward = 2 * (784 * 1024 + 1024 * 1024 + 1024 * 10)
    assert flops(shapes) / 64 == 3 * forward - 2 * 784 * 1024  # no input gradient for the first layer


@pytest.mark.slow  # real Ray workers: 181 s of the default suite on a 2-core EPYC
def test_smoke_mode_measures_every_variant(capsys):
    result = main(["--smoke-test"])
    assert result["used"] in ("fp32", "bf16")
    for name in ("fp32", "bf16"):
        for kind in ("matmul", "bare", "trial"):
            assert result[f"{kind} {name} cpu"]["median"] > 0
        assert result["ratios"][name]["bare"] > 0
    out = capsys.readouterr().out
    assert "load" in out and "result: the preset trains in" in out
