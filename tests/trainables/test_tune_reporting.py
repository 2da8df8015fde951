"""What a trial hands Tune: the objectives as numbers Tune acts on, every other metric packed, and all of them
read back whole by the sinks."""

from __future__ import annotations

import math

from ray.tune.experiment import Trial

from trainables.synthetic import synthetic_metrics
from trainables.tune_reporting import PACKED_METRICS, pack_result, result_metrics


def test_objectives_and_plain_keys_stay_the_rest_is_packed():
    metrics = {"epoch": 3, "status": "running", "val/acc": 0.8, "val/ece": 0.05, "test/aurc": math.nan,
               "sys/node_ip": "10.0.0.1"}
    result = pack_result(metrics, objectives=("val/acc",))
    assert set(result) == {"epoch", "status", "val/acc", PACKED_METRICS}
    assert dict(result[PACKED_METRICS]) == {"val/ece": 0.05, "test/aurc": metrics["test/aurc"],
                                            "sys/node_ip": "10.0.0.1"}
    back = result_metrics(result)
    assert set(back) == {"val/acc", "val/ece", "test/aurc"}  # numbers only: the node's address is text
    assert back["val/acc"] == 0.8 and back["val/ece"] == 0.05 and math.isnan(back["test/aurc"])


def test_nothing_to_pack_leaves_the_result_as_it_was():
    assert pack_result({"epoch": 1, "val/acc": 0.5}, objectives=("val/acc",)) == {"epoch": 1, "val/acc": 0.5}
    assert result_metrics({"epoch": 1, "val/acc": 0.5, "done": True}) == {"val/acc": 0.5}


def test_a_result_read_back_from_json_unpacks_too():
    import json

    result = pack_result(synthetic_metrics(1, 2), objectives=())
    assert result_metrics(json.loads(json.dumps(result))) == synthetic_metrics(1, 2)


def test_tune_analyses_only_the_unpacked_numbers():
    """Tune keeps running statistics of every number of a result, per trial: packed metrics escape them."""
    metrics = {"epoch": 1, **synthetic_metrics(0, 1)}
    packed, plain = Trial("t", stub=True), Trial("t", stub=True)
    packed.update_last_result(pack_result(metrics, objectives=("val/acc",)))
    plain.update_last_result(dict(metrics))
    assert "val/acc" in packed.metric_analysis and "val/nll" not in packed.metric_analysis
    assert len(plain.metric_analysis) - len(packed.metric_analysis) == len(synthetic_metrics(0, 1)) - 1
