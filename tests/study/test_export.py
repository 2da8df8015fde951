"""``smoothstudy export``: the chosen configurations as a study file that ``run`` trains as they were, one
search trial per method and the final runs."""

from __future__ import annotations

import pytest
import yaml

from analysis.core.errors import UsageError
from analysis.results import read_trials
from search_spaces.budgets import split_budget
from search_spaces.space import configurations
from search_spaces.study_file import load_study
from study.export import export_study, exported_study
from study.rerun import select_trials
from tests.study.test_rerun import tiny_searched_study
from trainables.config import TrialConfig, config_from_flat


def test_the_exported_study_trains_the_chosen_configurations(tmp_path):
    study = tiny_searched_study(tmp_path)
    out = tmp_path / "chosen.yaml"
    said = []
    export_study(study, out, seeds=4, echo=said.append)
    assert f"smoothstudy run {out}" in said[0]
    spec = load_study(out)
    chosen = select_trials(read_trials(study.root), "val/acc", "max", "best", 1)
    assert set(spec.methods) == set(chosen["config/loss"]) and spec.final.seeds == 4 and not spec.asha.enabled
    assert split_budget(configurations(spec), spec.search.num_samples, False).trials == {m: 1 for m in spec.methods}
    base = spec.base_trial_config()
    for _, row in chosen.iterrows():
        trained = config_from_flat({k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")})
        params = spec.methods[row["config/loss"]]
        again = TrialConfig.from_dict({**base, "loss": row["config/loss"], "loss_params": params,
                                       "seed": trained.seed})
        assert again == trained  # the same configuration, whatever seed it gets


def test_export_refuses_a_method_without_a_completed_trial_and_an_existing_file(tmp_path):
    study = tiny_searched_study(tmp_path)
    with pytest.raises(UsageError, match="method=focal.*allowed: "):
        exported_study(study, ["focal"])
    assert set(exported_study(study, ["ls"])["methods"]) == {"ls"}
    (tmp_path / "taken.yaml").write_text("mine")
    with pytest.raises(UsageError, match="exists"):
        export_study(study, tmp_path / "taken.yaml")
    assert (tmp_path / "taken.yaml").read_text() == "mine"
    assert yaml.safe_load(yaml.safe_dump(exported_study(study)))["search"]["strategy"] == "per_method"
