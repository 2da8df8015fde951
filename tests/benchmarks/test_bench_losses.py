from benchmarks.bench_losses import main
from trainables.losses import list_losses


def test_smoke_mode_times_every_loss_against_ce(capsys):
    results = main(["--smoke-test"])
    assert [r["loss"] for r in results["train_step"]] == list_losses()
    for rows in [*results["loss_alone"].values(), results["train_step"]]:
        by_name = {r["loss"]: r for r in rows}
        assert by_name["ce"]["ratio_to_ce"] == 1.0
        assert all(r["median_us"] > 0 and r["ratio_to_ce"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert "cores" in out and "torch" in out and "worst training-step ratio" in out
