"""The catalogue of per-epoch metric keys (the objectives a study may choose) is what a real trainer reports."""

from __future__ import annotations

from analysis.metrics.epoch_keys import epoch_metric_keys


def test_catalogue_is_what_a_trainer_reports_each_epoch():
    from trainables.config import TrialConfig
    from trainables.loop import make_trainer

    cfg = TrialConfig(dataset="digits", subset=200, epochs=2, batch_size=64, device="cpu", representation=False,
                      probe=False)
    metrics = make_trainer(cfg).train_epoch()
    reported = sorted(k for k in metrics if k.startswith(("val/", "train/")))
    assert reported == sorted(epoch_metric_keys())
    assert len(set(epoch_metric_keys())) == len(epoch_metric_keys())
