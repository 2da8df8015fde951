"""The metrics reports show, one record each: name, label, which direction is better and how to print it.

A key is ``<split>/<name>`` (``val/acc``, ``test/aurc``); the direction and format belong to the name, so
``val/acc`` and ``test/acc`` share one record. The metrics themselves are pure functions in
``analysis.metrics``; a new metric that reports should show gets one line here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    better: str | None  # "max", "min", or None when neither direction is better (R²)
    fmt: str = ".4f"

    def key(self, split: str = "test") -> str:
        return f"{split}/{self.name}"


CATALOGUE = {m.name: m for m in (
    MetricInfo("acc", "accuracy", "max"),
    MetricInfo("nll", "NLL", "min"),
    MetricInfo("ece", "ECE", "min"),
    MetricInfo("ece_ts", "ECE after TS", "min"),
    MetricInfo("ece_ts_grid", "ECE after TS (T grid by ECE)", "min"),
    MetricInfo("aurc", "AURC (MSP)", "min"),
    MetricInfo("aurc_lognorm", "AURC (lognorm)", "min"),
    MetricInfo("cov_at_5", "coverage @5% risk", "max"),
    MetricInfo("auroc", "AUROC", "max"),
    MetricInfo("r2", "R²", None),
    MetricInfo("probe_acc", "probe accuracy", "max"),
)}
# The headline metrics: the columns of the reruns table and of a finished rerun's line.
HEADLINE = ("test/acc", "test/nll", "test/ece", "test/aurc")
# What a run trains on (its ``train_on``): the training split, or training and validation splits together (the
# chosen configuration's retrain); the second's val/* metrics are measured on data it trained on, not held out.
TRAIN_ON_VALUES = ("train", "train_val")
TRAINS_ON_VAL = TRAIN_ON_VALUES[1]
MAX_PREFIXES = ("cov_at_",)  # coverage at any risk level


def metric_info(key: str) -> MetricInfo | None:
    return CATALOGUE.get(key.rsplit("/", 1)[-1])


@functools.lru_cache(maxsize=4096)  # asked for every metric of every result the sinks write
def metric_mode(key: str) -> str:
    """``"max"`` for accuracy-like metrics (``val/acc``, ``test/auroc``, ``val/cov_at_10``), else ``"min"``
    (also for a metric without a better direction, and one the catalogue does not list)."""
    info = metric_info(key)
    if info is not None:
        return "max" if info.better == "max" else "min"
    return "max" if key.rsplit("/", 1)[-1].startswith(MAX_PREFIXES) else "min"
