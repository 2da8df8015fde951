"""The study presets in studies/: each loads, names its paper, and holds the settings of the table it follows."""

from __future__ import annotations

import pytest
import yaml

from search_spaces.schema import load_study
from search_spaces.space import method_params
from study.runner import smoke_version
from tests.conftest import ROOT
from trainables.losses import get_loss_info, list_losses

STUDIES = ROOT / "studies"
PRESETS = sorted(STUDIES.glob("*.yaml"))
PAPER_WORDS = ("Label Relaxation", "Xia", "seed 00", "paper", "Lienen")


def test_the_issue_presets_exist():
    names = {p.name for p in PRESETS}
    assert {"quick.yaml", "smoke.yaml", "lr_table1_fmnist.yaml", "lr_table1_fmnist_ece.yaml",
            "xia_selective.yaml", "all_methods.yaml", "gpu_resnet.yaml"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_loads_and_its_smoke_version_too(path):
    spec = load_study(path)
    assert spec.name == path.stem
    assert method_params(spec).keys() == spec.methods.keys()  # every hyperparameter resolves to a search
    smoke_version(spec).base_trial_config()


@pytest.mark.parametrize("path", [p for p in PRESETS if p.stem not in ("smoke",)], ids=lambda p: p.name)
def test_preset_comment_names_its_source(path):
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert len(header) >= 3, "a preset starts with a comment naming the paper and table it follows"
    assert any(word in " ".join(header) for word in PAPER_WORDS)


def _choices(spec, method: str, name: str) -> tuple:
    return next(p.choices for p in method_params(spec)[method] if p.hparam.name == name)


@pytest.mark.parametrize("stem, metric, mode", [("lr_table1_fmnist", "val/acc", "max"),
                                                ("lr_table1_fmnist_ece", "val/ece", "min")])
def test_label_relaxation_table1_setting(stem, metric, mode):
    spec = load_study(STUDIES / f"{stem}.yaml")
    assert "Table 1" in (STUDIES / f"{stem}.yaml").read_text()
    t = spec.training
    assert (spec.data.dataset, spec.model, spec.data.subset) == ("fashion_mnist", "mlp", None)
    assert (t.optimizer, t.momentum, t.nesterov, t.batch_size, t.lr, t.epochs) == ("sgd", 0.9, True, 64, 0.05, 50)
    assert spec.data.val_fraction == pytest.approx(1 / 6, abs=1e-6)
    assert [(o.metric, o.mode) for o in spec.objectives] == [(metric, mode)]
    assert set(spec.methods) == {"ce", "ls", "label_relaxation", "confidence_penalty", "focal"}
    alphas = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4)
    assert _choices(spec, "ls", "alpha") == alphas
    assert _choices(spec, "label_relaxation", "alpha") == alphas
    assert _choices(spec, "confidence_penalty", "beta") == (0.1, 0.3, 0.5, 1, 2, 4, 8)
    assert _choices(spec, "focal", "gamma") == (0.1, 0.2, 0.5, 1, 2, 3.5, 5)
    assert not spec.asha.enabled


def test_table1_files_differ_only_in_the_selection_objective():
    acc = yaml.safe_load((STUDIES / "lr_table1_fmnist.yaml").read_text())
    ece = yaml.safe_load((STUDIES / "lr_table1_fmnist_ece.yaml").read_text())
    assert {k for k in acc if acc[k] != ece.get(k)} == {"name", "objective"}


def test_xia_selective_grid():
    spec = load_study(STUDIES / "xia_selective.yaml")
    assert set(spec.methods) == {"ce", "ls"}
    assert _choices(spec, "ls", "alpha") == (0.1, 0.2, 0.3)


def test_all_methods_covers_every_registered_method():
    spec = load_study(STUDIES / "all_methods.yaml")
    assert set(spec.methods) == set(list_losses())
    assert spec.search.sampler == "tpe" and spec.asha.enabled
    for method, params in method_params(spec).items():  # nothing narrowed: each searches its declared range
        declared = {h.name for h in get_loss_info(method).hparams}
        assert {p.hparam.name for p in params} == declared


def test_gpu_resnet_packs_four_trials_per_gpu():
    spec = load_study(STUDIES / "gpu_resnet.yaml")
    assert spec.model == "timm/resnet18"
    assert (spec.data.dataset, spec.data.subset) == ("fashion_mnist", None)
    assert spec.resources.gpu == 0.25 and round(1 / spec.resources.gpu) == 4
    assert spec.training.device == "cuda"
