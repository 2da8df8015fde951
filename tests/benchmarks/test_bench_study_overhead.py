import pytest

from benchmarks.bench_study_overhead import main


@pytest.mark.slow  # real Ray workers: 90 s of the default suite on a 2-core EPYC
def test_smoke_mode_runs_a_short_study(capsys):
    result = main(["--smoke-test"])
    [run] = result["runs"]
    assert run["trials"] == 2 and run["errors"] == 0 and run["slots"] >= 1
    # the study cannot finish before its longest trial, nor before its trials packed on its slots
    assert run["ratio_to_ideal"] >= 0.99
    assert run["ratio"] >= run["ratio_to_ideal"] - 1e-9
    out = capsys.readouterr().out
    assert "cpu:" in out and "result: median ratio" in out
    assert run["startup_s"] > 0 and run["finish_s"] >= 0
    assert run["ratio_to_schedule"] >= 0.99  # nothing beats running the same trials at no cost
    assert "where the wall time beyond sum/c went" in out


def test_slot_breakdown_by_hand():
    from benchmarks.bench_study_overhead import slot_breakdown

    # 2 slots, study from t=0 to t=20; trials A 2–10, B 3–6, C 7–12 (the last start is 7). Before 7: one
    # slot idle 2–3 (only A runs) and 6–7 (B ended). After 7: one slot idle 10–12 (A ended, C runs).
    out = slot_breakdown([2, 3, 7], [10, 6, 12], slots=2, t_begin=0.0, t_end=20.0)
    assert out["startup_s"] == 2.0
    assert out["between_slot_s"] == 1.0 + 1.0  # one slot idle 2–3, one slot idle 6–7
    assert out["tail_slot_s"] == 2.0  # one slot idle 10–12
    assert out["finish_s"] == 8.0


def test_list_schedule_by_hand():
    from benchmarks.bench_study_overhead import list_schedule

    # slots: [5], [3] -> 4 goes to slot 2 (free at 3) -> [5], [3, 4] = 7 -> 2 goes to slot 1 (free at 5): 7
    assert list_schedule([5.0, 3.0, 4.0, 2.0], slots=2) == 7.0
    assert list_schedule([5.0, 3.0], slots=4) == 5.0
    assert list_schedule([], slots=2) == 0.0
