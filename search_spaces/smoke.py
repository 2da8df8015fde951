"""The smoke test's cut of a study (``run --smoke-test``): the same study, in seconds."""

from __future__ import annotations

from typing import Any

from search_spaces.strategies import strategy_of
from search_spaces.study_file import StudySpec, parse_study

SMOKE_IMAGES = 300  # training images of a smoke run (validation included)


def smoke_version(spec: StudySpec, registries: bool = True) -> StudySpec:
    """The same study, cut to seconds: 2 epochs, at most 4 trials (one per method when it has more
    methods, under ``per_method``), at most ``SMOKE_IMAGES`` training images, ASHA's grace period inside the 2 epochs, one
    final seed of each method's best, and on the CPU (a preset asking for a GPU is checked without one).
    ``registries``: as in ``parse_study``."""
    epochs = min(spec.training.epochs, 2)
    subset = min(spec.data.subset or SMOKE_IMAGES, SMOKE_IMAGES) if spec.data.dataset != "digits" else spec.data.subset
    samples = strategy_of(spec).smoke_samples(spec, min(spec.search.num_samples, 4))
    device = "cpu" if spec.training.device == "cuda" else spec.training.device
    update: dict[str, Any] = {
        "name": spec.name,
        "data": spec.data.model_copy(update={"subset": subset}),
        "training": spec.training.model_copy(update={"epochs": epochs, "device": device}),
        "evaluation": spec.evaluation.model_copy(update={"probe_max_train": min(spec.evaluation.probe_max_train, 500)}),
        "search": spec.search.model_copy(update={"num_samples": samples}),
        "asha": spec.asha.model_copy(update={"max_t": None,
                                             "grace_period": min(spec.asha.grace_period, max(1, epochs - 1))}),
        "resources": spec.resources.model_copy(update={"gpu": 0}) if device != spec.training.device else spec.resources,
    }
    if spec.final is not None:
        update["final"] = spec.final.model_copy(update={"top": 1, "seeds": 1})
    smoke = spec.model_copy(update=update)
    return parse_study(smoke.model_dump(mode="json"), registries)  # the cut study passes the same checks
