import pytest

from benchmarks.common import bf16_peak_tflops, header, stats, time_runs


def test_stats_median_and_spread():
    s = stats([4.0, 1.0, 2.0])
    assert (s.median, s.runs) == (2.0, 3)
    assert s.spread == pytest.approx((4 - 1) / 2)
    assert s.as_dict() == {"median": 2.0, "min": 1.0, "max": 4.0, "spread": 1.5, "runs": 3}
    assert "median 2" in s.describe() and "runs 3" in s.describe()
    with pytest.raises(ValueError, match="values"):
        stats([])


def test_time_runs_warms_up_then_times_each_call():
    calls, syncs = [], []
    s = time_runs(lambda: calls.append(1), runs=4, warmup=2, sync=lambda: syncs.append(1))
    assert len(calls) == 6 and s.runs == 4 and len(syncs) == 8
    assert all(t >= 0 for t in s.values)


def test_bf16_peaks_by_device_name():
    assert bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bf16_peak_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert bf16_peak_tflops("Some CPU") is None and bf16_peak_tflops(None) is None


def test_header_names_the_machine_and_versions():
    text = header("t", "b", "m")
    for part in ("bound: b", "theoretical minimum: m", "cpu:", "cores available:", "torch", "python",
                 "load average"):
        assert part in text
