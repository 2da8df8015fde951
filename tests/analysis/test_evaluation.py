import math

import numpy as np
import pytest
import torch

from analysis.metrics.calibration import accuracy, ece_from_logits, fit_temperature, nll
from analysis.metrics.evaluation import (
    Outputs,
    epoch_metrics,
    final_metrics,
    final_results,
    per_sample_outputs,
    risk_coverage_curves,
)
from analysis.metrics.lognorm import chosen_score, select_lognorm_p
from analysis.metrics.representation import centre_distance_matrix, centre_distance_spread
from analysis.metrics.selective import aurc

K = 5


def _outputs(n, seed, overconfident=2.0, features=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    z = rng.normal(size=(n, K))
    z[np.arange(n), y] += rng.uniform(0, 3, n)  # a noisy but informative classifier
    f = rng.normal(size=(n, 12)) + 1.5 * np.eye(12)[y] if features else None
    return Outputs(
        logits=torch.tensor(z * overconfident, dtype=torch.float32),
        labels=torch.tensor(y),
        features=None if f is None else torch.tensor(f, dtype=torch.float32),
    )


def test_epoch_metrics_keys_and_values():
    out = _outputs(300, 0)
    m = epoch_metrics(out.logits, out.labels)
    assert set(m) == {"acc", "nll", "brier", "ece", "aurc"}
    assert all(isinstance(v, float) for v in m.values())
    assert m["acc"] == accuracy(out.logits, out.labels)
    assert m["nll"] == pytest.approx(nll(out.logits, out.labels))
    correct = out.logits.argmax(1) == out.labels
    assert m["aurc"] == pytest.approx(aurc(torch.softmax(out.logits.double(), 1).max(1).values, correct))


def test_final_metrics_full():
    val, test, train = _outputs(400, 1), _outputs(400, 2), _outputs(600, 3)
    shifted = _outputs(400, 4, overconfident=0.5)
    tr_train, tr_test = _outputs(300, 5), _outputs(200, 6)
    m = final_metrics(
        val, test, train=train, shifted_test=shifted, transfer_train=tr_train, transfer_test=tr_test
    )
    expected = {
        "val/acc",
        "test/acc",
        "test/nll",
        "test/brier",
        "test/ece",
        "test/ece_ts",
        "test/nll_ts",
        "val/nll_ts",
        "test/temperature",
        "test/aurc",
        "test/eaurc",
        "test/cov_at_5",
        "test/auroc",
        "test/aurc_lognorm",
        "test/eaurc_lognorm",
        "test/cov_at_5_lognorm",
        "test/auroc_lognorm",
        "test/lognorm_p",
        "test/lognorm_fallback",
        "val/aurc_lognorm",
        "val/eaurc_lognorm",
        "val/cov_at_5_lognorm",
        "val/ece_ts",
        "test/d_within",
        "test/d_total",
        "test/r2",
        "train/r2",
        "test/centre_dist_spread",
        "test/probe_acc",
        "transfer/probe_acc",
        "shift/acc",
        "shift/acc_corrupted",
        "shift/aurc",
        "shift/aurc_lognorm",
        "shift/eaurc",
        "shift/cov_at_5",
        "shift/ece",
        "test/aurc_max_logit",
        "test/aurc_neg_entropy",
    }
    assert expected <= set(m)
    assert all(type(v) is float for v in m.values())
    assert all(k.split("/")[0] in {"val", "test", "train", "transfer", "shift"} for k in m)
    assert m["test/acc"] == accuracy(test.logits, test.labels)
    assert m["val/nll_ts"] <= m["val/nll"]
    t = m["test/temperature"]
    assert t > 1.0  # the logits were inflated by 2
    assert m["test/nll_ts"] == pytest.approx(nll(test.logits.double() / t, test.labels))
    assert m["test/ece_ts"] == pytest.approx(ece_from_logits(test.logits.double() / t, test.labels))
    assert m["test/probe_acc"] > 0.5
    merged_acc = (accuracy(test.logits, test.labels) + accuracy(shifted.logits, shifted.labels)) / 2
    assert m["shift/acc"] == pytest.approx(merged_acc)
    assert m["shift/acc_corrupted"] == accuracy(shifted.logits, shifted.labels)
    if m["test/lognorm_fallback"] == 1.0:
        assert math.isnan(m["test/lognorm_p"]) and m["test/aurc_lognorm"] == m["test/aurc"]
    else:
        assert m["test/lognorm_p"] in range(10) and m["val/aurc_lognorm"] < m["val/aurc"]


def _ls_like(n, seed):
    """Some samples carry a second large logit, so logit normalisation can beat MSP."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    z = rng.normal(size=(n, K))
    z[np.arange(n), y] += rng.uniform(0, 3, n)
    z += rng.uniform(0, 4, (n, 1)) * np.eye(K)[(y + 1) % K] * (rng.random((n, 1)) < 0.3)
    return Outputs(torch.tensor(z, dtype=torch.float32), torch.tensor(y))


def test_post_hoc_choices_are_made_on_val_and_applied_to_test():
    val, test = _ls_like(300, 9), _ls_like(300, 109)
    p_val, p_test = select_lognorm_p(val.logits, val.labels).p, select_lognorm_p(test.logits, test.labels).p
    assert p_val is not None and p_val != p_test  # the test can tell which split chose p
    m = final_metrics(val, test)
    assert m["test/lognorm_p"] == p_val and m["test/lognorm_fallback"] == 0.0
    z = test.logits.double()
    correct = z.argmax(1) == test.labels
    assert m["test/aurc_lognorm"] == pytest.approx(aurc(chosen_score(z, p_val), correct), abs=1e-15)
    assert m["val/aurc_lognorm"] < m["val/aurc"]
    t = fit_temperature(val.logits, val.labels)
    assert t != fit_temperature(test.logits, test.labels)
    assert m["test/temperature"] == t
    assert m["val/nll_ts"] <= m["val/nll"]
    assert m["val/ece_ts"] == pytest.approx(ece_from_logits(val.logits.double() / t, val.labels))


def test_final_metrics_minimal_without_features():
    m = final_metrics(_outputs(100, 1, features=False), _outputs(100, 2, features=False))
    assert not any(k.startswith(("transfer/", "shift/", "train/")) for k in m)
    assert "test/r2" not in m and "test/probe_acc" not in m
    assert "test/aurc" in m and "test/temperature" in m


REPRESENTATION_KEYS = {"test/d_within", "test/d_total", "test/r2", "train/d_within", "train/d_total", "train/r2",
                       "test/centre_dist_spread"}


def test_representation_off_reports_only_the_probes():
    val, test, train = _outputs(200, 1), _outputs(200, 2), _outputs(300, 3)
    tr_train, tr_test = _outputs(150, 5), _outputs(100, 6)
    full, matrices = final_results(val, test, train=train, transfer_train=tr_train, transfer_test=tr_test)
    probes_only, no_matrices = final_results(val, test, train=train, transfer_train=tr_train,
                                             transfer_test=tr_test, representation=False)
    assert REPRESENTATION_KEYS <= set(full) and not REPRESENTATION_KEYS & set(probes_only)
    assert set(full) - set(probes_only) == REPRESENTATION_KEYS
    assert probes_only["test/probe_acc"] == full["test/probe_acc"]
    assert probes_only["transfer/probe_acc"] == full["transfer/probe_acc"]
    assert no_matrices == {} and set(matrices) == {"centre_distances"}
    assert final_metrics(val, test, train=train, representation=False) == {
        k: v for k, v in probes_only.items() if not k.startswith("transfer/")
    }


def test_centre_distance_matrix_comes_with_the_metrics():
    test = _outputs(300, 2)
    metrics, matrices = final_results(_outputs(200, 1), test)
    matrix = matrices["centre_distances"]
    np.testing.assert_array_equal(matrix, centre_distance_matrix(test.features, test.labels, K))
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)  # rows L1-normalised
    assert metrics["test/centre_dist_spread"] == centre_distance_spread(matrix)
    assert final_results(_outputs(100, 1, features=False), _outputs(100, 2, features=False))[1] == {}


def test_final_metrics_fallback_reports_nan_p():
    val = _outputs(50, 1)
    val = Outputs(val.logits, val.logits.argmax(1))  # all correct: MSP cannot be beaten
    m = final_metrics(val, _outputs(50, 2))
    assert math.isnan(m["test/lognorm_p"]) and m["test/lognorm_fallback"] == 1.0
    assert m["test/aurc_lognorm"] == m["test/aurc"]


def test_final_metrics_bad_input():
    val, test = _outputs(50, 1), _outputs(50, 2)
    with pytest.raises(ValueError, match="transfer_train and transfer_test"):
        final_metrics(val, test, transfer_train=_outputs(20, 3))
    with pytest.raises(ValueError, match="transfer_test.features"):
        final_metrics(
            val, test, transfer_train=_outputs(20, 3), transfer_test=_outputs(20, 4, features=False)
        )
    other_k = Outputs(torch.zeros(50, K + 1), torch.zeros(50, dtype=torch.long))
    with pytest.raises(ValueError, match="test.logits"):
        final_metrics(val, other_k)
    with pytest.raises(ValueError, match="shifted_test.logits"):
        final_metrics(val, test, shifted_test=other_k)
    bad_labels = Outputs(test.logits, torch.full((50,), K))
    with pytest.raises(ValueError, match="test.labels"):
        final_metrics(val, bad_labels)


def test_outputs_checks_shapes():
    with pytest.raises(ValueError, match="labels"):
        Outputs(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="logits"):
        Outputs(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="features"):
        Outputs(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(3, 8))


def test_per_sample_outputs():
    test = _outputs(30, 7)
    cols = per_sample_outputs(test, 2.0)
    assert set(cols) == {"label", "pred", "msp", "lognorm", "logits"}
    assert cols["logits"].dtype == np.float16 and cols["logits"].shape == (30, K)
    assert cols["label"].dtype == np.int64 and cols["pred"].dtype == np.int64
    np.testing.assert_array_equal(cols["pred"], test.logits.argmax(1).numpy())
    assert not np.allclose(cols["lognorm"], cols["msp"])
    fallback = per_sample_outputs(test, None)
    np.testing.assert_array_equal(fallback["lognorm"], fallback["msp"])
    np.testing.assert_array_equal(per_sample_outputs(test, math.nan)["lognorm"], fallback["msp"])


def test_per_sample_logits_stay_finite_in_float16():
    z = torch.tensor([[1e6, 0.0, -1e6, 0.0, 0.0]])
    logits = per_sample_outputs(Outputs(z, torch.tensor([0])), None)["logits"]
    assert np.isfinite(logits).all() and logits[0, 0] == np.finfo(np.float16).max


def test_risk_coverage_curves():
    test = _outputs(40, 8)
    curves = risk_coverage_curves(test, 3.0)
    assert len(curves) == 2
    for cov, risk in curves.values():
        assert cov.shape == risk.shape == (40,) and cov[-1] == 1.0
    assert len(risk_coverage_curves(test, None)) == 1
