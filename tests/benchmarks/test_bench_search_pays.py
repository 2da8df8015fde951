import pytest

from benchmarks.bench_search_pays import SimulatedAsha, epochs_until_close, main


def test_asha_rule_follows_ray_at_the_studys_rungs():
    asha = SimulatedAsha(20, 2, 3)
    assert list(asha.rungs) == [2, 6, 18]
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


def test_median_counts_a_seed_that_never_got_there_as_infinitely_late():
    from benchmarks.bench_search_pays import median_or_never

    assert median_or_never([0.17, None, 0.35, 0.2, 0.17]) == 0.2
    assert median_or_never([0.17, None, None]) is None
    assert median_or_never([0.5, None]) is None  # the median of 0.5 and never is never


def test_replays_the_grids_a_reproduction_committed(tmp_path):
    import shutil

    import yaml

    from benchmarks.bench_search_pays import ROOT

    protocol = ROOT / "docs" / "reproductions" / "lr_table1_fmnist_augmented.yaml"
    result = main(["--from-reproduction", str(protocol), "--seeds", "1", "--trials", "12", "--metric", "val/ece"])
    assert result["grid_epochs"] == 29 * 50 and result["metric"] == "val/ece"
    assert result["spread"]["ce"] == 0 and result["spread"]["confidence_penalty"] > 0.1  # β moves ECE a lot
    assert sum(result["picks"]["per_method"].values()) == 12

    # a part without its committed tables: refused, naming a configuration it lacks
    copy = tmp_path / "proto.yaml"
    shutil.copy(protocol, copy)
    doc = yaml.safe_load(copy.read_text())
    shutil.copytree(protocol.parent / doc["data"] / "ce", tmp_path / doc["data"] / "ce")
    with pytest.raises(SystemExit, match=r"--from-reproduction: ls\(alpha=0.01\) has 0 grid trials"):
        main(["--from-reproduction", str(copy), "--seeds", "1"])
