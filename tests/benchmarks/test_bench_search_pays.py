from benchmarks.bench_search_pays import SimulatedAsha, asha_rungs, epochs_until_close, main


def test_asha_rungs_and_rule_follow_ray():
    assert asha_rungs(20, 2, 3) == [2, 6, 18]
    asha = SimulatedAsha(20, 2, 3)
    assert asha.keeps(2, 0.5) and asha.keeps(2, 0.6)  # nothing recorded / above the 2/3 quantile of [0.5]
    assert not asha.keeps(2, 0.4) and asha.keeps(3, 0.0)  # below; epoch 3 is no rung


def test_epochs_until_every_method_is_close():
    best = {"ce": 0.80, "ls": 0.90}
    trials = [{"method": "ce", "epochs": 5, "cpu_s": 1.0, "completed": True, "final": 0.80},
              {"method": "ls", "epochs": 2, "cpu_s": 1.0, "completed": False, "final": 0.90},
              {"method": "ls", "epochs": 5, "cpu_s": 1.0, "completed": True, "final": 0.897}]
    assert epochs_until_close(trials, best) == (12, 3.0)
    assert epochs_until_close(trials[:2], best) == (None, None)


def test_smoke_mode_records_and_replays_the_searches(capsys):
    result = main(["--smoke-test"])
    assert len(result["runs"]) == 2 and result["grid_epochs"] == 9 * 3  # ce + 4 methods x 2 values, 3 epochs
    assert sum(result["picks"]["per_method"].values()) == sum(result["picks"]["joint"].values()) == 2 * 9
    assert result["picks"]["per_method"]["ce"] == 2  # one trial per search
    out = capsys.readouterr().out
    assert "SIMULATED searches on the recorded curves" in out and "goal <= 0.35" in out
