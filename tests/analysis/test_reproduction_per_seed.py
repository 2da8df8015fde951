"""Per-seed parts (each seed its own split, grid and choice), selection noise, and the comparison with a variant,
on hand-built study folders."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from analysis.reproduction.document import render
from analysis.reproduction.panels import selection_noise
from analysis.reproduction.parts import Study, load_study
from tests.analysis.test_reproduction import _row, make_part, welch_by_hand

PROTOCOL = {
    "title": "Per-seed reproduction",
    "paper": {"cite": "A paper", "spread": "its ± as printed", "seeds": 10},
    "data": "data",
    "blocks": {"acc": {"objective": "val/acc", "mode": "max", "preset": "none.yaml", "title": "for accuracy"},
               "ece": {"objective": "val/ece", "mode": "min", "preset": "none.yaml", "title": "for ECE"}},
    "parts": {"ls": {"study": "parts/ls.yaml", "seeds": [0, 1, 2]},
              "ts": {"study": "parts/ts.yaml", "seeds": [0, 1, 2]}},
    "rows": [
        {"label": "LS acc", "part": "ls", "method": "ls", "paper": {"acc": [0.915, 0.002], "ece": [0.155, 0.128]}},
        {"label": "LS ECE", "part": "ls", "method": "ls", "block": "ece",
         "paper": {"acc": [0.915, 0.003], "ece": [0.016, 0.002]}},
        {"label": "CE T", "part": "ts", "method": "ce", "runs": "trials", "ece_metric": "test/ece_ts_grid",
         "block": "ece", "chosen_by": "acc", "paper": {"acc": [0.908, 0.004], "ece": [0.030, 0.003]}},
    ],
}

# per seed: (val/acc, val/ece) of alpha 0.1 and 0.2; 0.2 wins accuracy on seeds 0 and 1, 0.1 on seed 2; ECE:
# 0.1 on seeds 0 and 1, 0.2 on seed 2
VALS = {0: ((0.90, 0.01), (0.92, 0.05)), 1: ((0.91, 0.01), (0.92, 0.05)), 2: ((0.93, 0.05), (0.92, 0.04))}
FINAL_ACC = {0: 0.930, 1: 0.934, 2: 0.920}


def _grid(seed: int, vals=VALS):
    (a1, e1), (a2, e2) = vals[seed]
    return [(f"a{seed}", {"alpha": 0.1}, {"val/acc": a1, "val/ece": e1, "test/acc": a1, "test/ece": e1}),
            (f"b{seed}", {"alpha": 0.2}, {"val/acc": a2, "val/ece": e2, "test/acc": a2, "test/ece": e2})]


def per_seed_protocol(tmp_path: Path, seeds=(0, 1, 2), vals=VALS) -> Path:
    data = tmp_path / "repro" / "data"
    for seed in seeds:
        grid = _grid(seed, vals)
        best_acc = max(grid, key=lambda g: g[2]["val/acc"])[0]
        best_ece = min(grid, key=lambda g: g[2]["val/ece"])[0]
        # one final run per chosen configuration, with the seed's training seed
        finals = {best_acc: [(seed, {"test/acc": FINAL_ACC[seed], "test/ece": 0.10 + seed / 100})]}
        if best_ece != best_acc:  # a configuration both choose is trained once
            finals[best_ece] = [(seed, {"test/acc": 0.91, "test/ece": 0.02 + seed / 1000})]
        first = grid[0][0]
        make_part(data / "ls" / f"s{seed}", f"ls_s{seed}", "val/acc", "ls", grid, finals.pop(first, []),
                  also={"metric": "val/ece", "mode": "min"}, more_finals=finals)
        make_part(data / "ts" / f"s{seed}", f"ts_s{seed}", "val/acc", "ce",
                  [(f"t{seed}", {}, {"val/acc": 0.9, "test/acc": 0.905 + seed / 1000,
                                     "test/ece_ts_grid": 0.03 + seed / 1000})], [])
    path = tmp_path / "repro" / "proto.yaml"
    path.write_text(yaml.safe_dump(PROTOCOL, allow_unicode=True), encoding="utf-8")
    return path


def test_each_seed_chooses_on_its_own_split_and_the_row_is_over_seeds(tmp_path):
    doc = render(per_seed_protocol(tmp_path))
    row = _row(doc, "LS acc")
    # seeds 0 and 1 choose alpha = 0.2, seed 2 alpha = 0.1: their final runs 0.930, 0.934, 0.920
    mean, sd = 0.928, math.sqrt(((0.002) ** 2 + 0.006**2 + 0.008**2) / 2)
    assert row[2] == f"{mean:.4f} ± {sd:.4f} (n = 3)"
    assert row[7] == "alpha = 0.2 (×2), alpha = 0.1 (×1)" and row[8] == "0, 1, 2"
    p = welch_by_hand(mean, sd, 3, 0.915, 0.002, 10)
    assert row[3].startswith("differs" if p < 0.05 else "consistent")
    # the ECE block chooses alpha = 0.1 on seeds 0 and 1, 0.2 on seed 2: their final runs' ECE 0.020, 0.021, 0.022
    ece = _row(doc, "LS ECE")
    assert ece[5] == "0.0210 ± 0.0010 (n = 3)" and ece[7] == "alpha = 0.1 (×2), alpha = 0.2 (×1)"
    assert _row(doc, "ls")[-1].startswith("3 of 3 seeds collected; seed 0: grid: 2 completed of 2; final runs: 2")


def test_a_row_from_the_chosen_trial_itself(tmp_path):
    doc = render(per_seed_protocol(tmp_path))
    row = _row(doc, "CE T")
    assert row[2] == "0.9060 ± 0.0010 (n = 3)" and row[5].startswith("0.0310 ± 0.0010 (n = 3) (`test/ece_ts_grid`)")


def test_seeds_not_collected_yet_are_named(tmp_path):
    doc = render(per_seed_protocol(tmp_path, seeds=(0, 2)))
    assert _row(doc, "ls")[-1].startswith("2 of 3 seeds collected (not yet: 1); seed 0:")
    assert _row(doc, "LS acc")[8] == "0, 2"


def _studies(tmp_path: Path, vals) -> list[Study]:
    per_seed_protocol(tmp_path, vals=vals)
    return [load_study(tmp_path / "repro" / "data" / "ls" / f"s{s}", s) for s in (0, 1, 2)]


def test_selection_noise_flat_grid_every_value_indistinguishable(tmp_path):
    # alpha 0.2 is ahead by 0.02, 0.01 and behind by 0.01: a paired t-test over 3 seeds cannot tell them apart
    noise = selection_noise(_studies(tmp_path, VALS), "ls", ("val/acc", "max"))
    assert noise["best"] == "alpha = 0.2" and [r["same"] for r in noise["rows"]] == [True, True]
    diffs = [0.90 - 0.92, 0.91 - 0.92, 0.93 - 0.92]
    sd = math.sqrt(sum((d - sum(diffs) / 3) ** 2 for d in diffs) / 2)
    t = (sum(diffs) / 3) / (sd / math.sqrt(3))
    from scipy.stats import t as student

    assert math.isclose(noise["rows"][0]["p"], 2 * student.sf(abs(t), 2), rel_tol=1e-9)
    assert noise["acc_range"] == ((0.90 + 0.91 + 0.93) / 3, 0.92)  # the grid trials' test acc, mean over seeds
    assert [r["chosen"] for r in noise["rows"]] == [1, 2]


def test_selection_noise_clear_winner_stands_alone(tmp_path):
    clear = {0: ((0.80, 0.01), (0.92, 0.05)), 1: ((0.81, 0.01), (0.92, 0.05)), 2: ((0.80, 0.02), (0.93, 0.04))}
    noise = selection_noise(_studies(tmp_path, clear), "ls", ("val/acc", "max"))
    assert noise["best"] == "alpha = 0.2"
    assert [(r["value"], r["same"]) for r in noise["rows"]] == [("alpha = 0.1", False), ("alpha = 0.2", True)]
    assert noise["rows"][0]["p"] < 0.05
    doc = render(tmp_path / "repro" / "proto.yaml")
    assert "### ls (ls), chosen by `val/acc` (max): the choice is clear" in doc


def test_the_variant_comparison_takes_differences_of_means_with_welch_intervals(tmp_path):
    path = per_seed_protocol(tmp_path / "a")
    other = per_seed_protocol(tmp_path / "b")
    spec = {**PROTOCOL, "compare_with": "variant.yaml"}
    (path.parent / "variant.yaml").write_text(yaml.safe_dump({**PROTOCOL, "variant": "the other", "data": str(
        other.parent / "data")}, allow_unicode=True), encoding="utf-8")
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    doc = render(path)
    assert "### This protocol against the the other variant" in doc
    # identical data on both sides: every difference is 0
    line = next(x for x in doc.splitlines() if x.startswith("| LS acc | 0.9280 ± "))
    assert line.split("|")[4].strip().startswith("+0.0000 ± ")


def test_reproduce_seed_writes_the_seeds_study_and_refuses_to_overwrite_another(tmp_path, capsys):
    from search_spaces.study_file import load_study
    from study.cli import main

    template = Path(__file__).resolve().parents[2] / "docs/reproductions/parts/paper/lr_table1_fmnist_paper_ls.yaml"
    assert main(["reproduce", "seed", str(template), "--seed", "7", "--out", str(tmp_path)]) == 0
    written = tmp_path / "lr_table1_fmnist_paper_ls_s7.yaml"
    spec, base = load_study(written), load_study(template)
    assert (spec.name, spec.seed, spec.data.split_seed) == ("lr_table1_fmnist_paper_ls_s7", 7, 7)
    assert spec.training == base.training and spec.methods == base.methods and spec.final == base.final
    assert spec.data.model_copy(update={"split_seed": 0}) == base.data
    before = written.read_bytes()
    assert main(["reproduce", "seed", str(template), "--seed", "7", "--out", str(tmp_path)]) == 0  # the same again
    written.write_text("# mine\n")
    assert main(["reproduce", "seed", str(template), "--seed", "7", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to overwrite" in err[0] and written.read_text() == "# mine\n"
    assert before != written.read_bytes()
    assert main(["reproduce", "seed", str(template), "--seed", "-1", "--out", str(tmp_path)]) == 2
