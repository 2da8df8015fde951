"""The study presets in studies/: each loads, names its paper, and holds the settings of the table it follows."""

from __future__ import annotations

import math

import pytest

from search_spaces.smoke import smoke_version
from search_spaces.space import method_params
from search_spaces.study_file import load_study
from tests.conftest import ROOT
from trainables.data import get_dataset_info
from trainables.losses import get_loss_info, list_losses

STUDIES = ROOT / "studies"
PRESETS = sorted(STUDIES.glob("*.yaml"))
LR_PAPER = ("Lienen & Hüllermeier", "From Label Smoothing to Label Relaxation")
# What each preset's header must name: the paper (authors, title) and the table or figures it follows; presets
# tied to no single table must say so and name the papers of their methods.
SOURCES = {
    "lr_table1_fmnist": (*LR_PAPER, "Table 1", "Fashion-MNIST", "Deviations from the paper", "julilien/LabelRelaxation"),
    "lr_table1_fmnist_augmented": (*LR_PAPER, "Table 1", "Fashion-MNIST", "Deviations from the paper"),
    "xia_selective": ("Xia et al.", "Understanding Why Label Smoothing Degrades Selective Classification",
                      "Figs. 15-17", "Appendix", "Deviations"),
    "quick": ("Label Relaxation paper", "Lienen & Hüllermeier", "Sec. 5"),
    "all_methods": ("No single paper table", "Zhou et al.", "Chhabra et al.", "LLS", "Lienen & Hüllermeier"),
    "gpu_resnet": ("Not tied to one paper's table", "Zhou et al.", "Chhabra et al.", "LLS", "Lienen & Hüllermeier"),
}


def test_the_issue_presets_exist():
    names = {p.name for p in PRESETS}
    assert {"quick.yaml", "smoke.yaml", "lr_table1_fmnist.yaml",
            "xia_selective.yaml", "all_methods.yaml", "gpu_resnet.yaml"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_loads_and_its_smoke_version_too(path):
    spec = load_study(path)
    assert spec.name == path.stem
    assert method_params(spec).keys() == spec.methods.keys()  # every hyperparameter resolves to a search
    smoke_version(spec).base_trial_config()


@pytest.mark.parametrize("path", [p for p in PRESETS if p.stem not in ("smoke",)], ids=lambda p: p.name)
def test_preset_comment_names_its_source(path):
    assert path.stem in SOURCES, f"{path.name}: add the paper and table its header must name to SOURCES"
    header = " ".join(line.lstrip("# ") for line in path.read_text().splitlines() if line.startswith("#"))
    missing = [s for s in SOURCES[path.stem] if s not in header]
    assert not missing, f"{path.name}: the header comment does not name {missing}"


def _choices(spec, method: str, name: str) -> tuple:
    return next(p.choices for p in method_params(spec)[method] if p.hparam.name == name)


def test_label_relaxation_table1_authors_protocol():
    """The authors' code: no augmentation, x 0.3162 after 31 epochs with Keras' decay 1e-5, pixel-mean inputs,
    Glorot init, 25 % validation, train and test resampled per seed, the choice retrained on train + val."""
    spec = load_study(STUDIES / "lr_table1_fmnist.yaml")
    t, d = spec.training, spec.data
    assert not d.augment and (d.normalize, d.resample, d.val_fraction) == ("pixel_mean", "per_seed", 0.25)
    assert (t.schedule, t.milestones, t.step_gamma, t.lr_decay, t.init) == ("multistep", [31], 0.3162, 1e-5, "glorot")
    assert (spec.final.train_on, spec.final.seeds, spec.search.trial_seed) == ("train_val", 1, "shared")
    assert spec.methods["confidence_penalty"]["sign"] == {"value": "paper"}


def test_label_relaxation_table1_setting():
    spec = load_study(STUDIES / "lr_table1_fmnist_augmented.yaml")
    assert "Table 1" in (STUDIES / "lr_table1_fmnist_augmented.yaml").read_text()
    t = spec.training
    assert (spec.data.dataset, spec.model, spec.data.subset) == ("fashion_mnist", "mlp", None)
    assert (t.optimizer, t.momentum, t.nesterov, t.batch_size, t.lr, t.epochs) == ("sgd", 0.9, True, 64, 0.05, 50)
    assert not t.amp_cpu  # fp32 on CPU (bf16 autocast would change the arithmetic)
    assert spec.data.val_fraction == pytest.approx(1 / 6, abs=1e-6)
    # the paper chooses once for accuracy and once for ECE: the final runs retrain both choices
    assert [(o.metric, o.mode) for o in spec.objectives] == [("val/acc", "max")]
    assert [(s.metric, s.mode) for s in spec.final.also_chosen_by] == [("val/ece", "min")]
    assert set(spec.methods) == {"ce", "ls", "label_relaxation", "confidence_penalty", "focal"}
    alphas = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4)
    assert _choices(spec, "ls", "alpha") == alphas
    assert _choices(spec, "label_relaxation", "alpha") == alphas
    assert _choices(spec, "confidence_penalty", "beta") == (0.1, 0.3, 0.5, 1, 2, 4, 8)
    assert _choices(spec, "focal", "gamma") == (0.1, 0.2, 0.5, 1, 2, 3.5, 5)
    assert not spec.asha.enabled
    # "data augmentation by randomly horizontally flipping and shifting the input images in width and height"
    info = get_dataset_info("fashion_mnist")
    assert spec.data.augment and info.hflip and info.crop_padding > 0  # random crop of a padded image = shift
    # "dividing the learning rate by a constant factor (ranging from 0.1 to sqrt(0.1))"
    assert t.schedule == "step" and 0.1 <= t.step_gamma <= math.sqrt(0.1) + 1e-12 and t.step_size < t.epochs
    assert t.weight_decay == 0.0  # "we tried to exclude other techniques (such as extensive weight decay …)"


def test_table1_grid_is_enumerated_once():
    """`sampler: grid` trains each of the paper's 1 + 4 x 7 configurations exactly once."""
    spec = load_study(STUDIES / "lr_table1_fmnist.yaml")
    grid_size = sum(math.prod(len(p.choices) for p in params if not p.is_fixed)
                    for params in method_params(spec).values())
    assert spec.search.sampler == "grid" and grid_size == 29 and spec.search.num_samples == grid_size


def test_xia_selective_grid():
    spec = load_study(STUDIES / "xia_selective.yaml")
    assert set(spec.methods) == {"ce", "ls"}
    assert _choices(spec, "ls", "alpha") == (0.1, 0.2, 0.3)


def test_xia_selective_training_follows_the_papers_cifar100_recipe():
    """Xia et al., Appendix B, "DenseNet - CIFAR100": 5000 training images for validation, batches of 64,
    300 epochs of SGD from 0.1 with Nesterov momentum 0.9 and 1e-4 weight decay, the rate divided by ten after
    150 epochs, random crop with 4-pixel padding and horizontal flips, no model selection."""
    spec = load_study(STUDIES / "xia_selective.yaml")
    t, info = spec.training, get_dataset_info("cifar100")
    assert spec.data.dataset == "cifar100" and round(50_000 * spec.data.val_fraction) == 5000
    assert (t.optimizer, t.lr, t.momentum, t.nesterov, t.weight_decay) == ("sgd", 0.1, 0.9, True, 1e-4)
    assert (t.batch_size, t.epochs) == (64, 300)
    assert (t.schedule, t.step_size, t.step_gamma) == ("step", 150, 0.1)
    assert spec.data.augment and info.hflip and info.crop_padding == 4
    assert not spec.asha.enabled  # every alpha trains to its last epoch, which is the model evaluated


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
