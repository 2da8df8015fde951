"""A reproduction in parts: synthetic parts written through the Parquet contract's writers
(analysis.core.tables), the generated document's numbers against hand-computed means and intervals, each block's
rows from the final runs of the trial its objective chooses, a missing part shown as not run, `reproduce
collect`'s refusals,
and the committed document rebuilt from the committed data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from analysis.core.errors import UsageError
from analysis.core.tables import EPOCHS, SAMPLES, TRIALS, PartWriter, rows_to_table, write_file
from analysis.frames import study_frames
from analysis.reproduction import parts
from analysis.reproduction.document import render
from analysis.reproduction.parts import load_part, run_seconds
from analysis.reproduction.protocol import NOT_RUN, choice, load_protocol
from study.cli import main
from study.reproduce import MANIFEST, collect

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_PROTOCOLS = sorted((ROOT / "docs" / "reproductions").glob("*.yaml"))
COMMITTED_PROTOCOL = ROOT / "docs" / "reproductions" / "lr_table1_fmnist_augmented.yaml"


T0 = pd.Timestamp("2026-01-01 00:00", tz="UTC")


def _write_tables(root: Path, name: str, runs: list[dict]) -> None:
    """``runs`` (trial rows: trial_id, config, tags, metrics, seconds) as the trials table and two epochs each,
    through the Parquet contract's writers."""
    rows, epochs = [], PartWriter(root, EPOCHS)
    for i, run in enumerate(runs):
        config = {f"config/{k}": v for k, v in run["config"].items()}
        start = T0 + pd.Timedelta(hours=i)
        done = run.get("status", "completed") == "completed"
        rows.append({"study": name, "trial_id": run["trial_id"], "status": run.get("status", "completed"),
                     "reason": "", "epochs_run": 2 if done else 0, "started_at": start,
                     "ended_at": start + pd.Timedelta(seconds=run["seconds"]) if done else None,
                     **config, **{f"tag/{k}": v for k, v in run["tags"].items()}, **run["metrics"]})
        for epoch in (1, 2):
            row = {"study": name, "trial_id": run["trial_id"], "epoch": epoch,
                   "written_at": start + pd.Timedelta(seconds=epoch), **config,
                   "val/acc": 0.5 + 0.1 * epoch, "time/images_per_s": 1000.0 * epoch}
            epochs.write(rows_to_table(EPOCHS, [row]), f"part-{run['trial_id']}-{epoch}.parquet")
    write_file(TRIALS, rows_to_table(TRIALS, rows), TRIALS.location(root))


def make_part(folder: Path, name: str, objective: str, method: str, grid: list[tuple[str, dict, dict]],
              finals: list[tuple[int, dict]], mode: str = "max", status: str = "completed",
              also: dict[str, str] | None = None, more_finals: dict[str, list[tuple[int, dict]]] | None = None
              ) -> Path:
    """A study folder as a study writes it: study.yaml, study.json, the search trials (``grid``: trial id,
    loss params, final metrics; 100 s each) and the final runs (seed, metrics; 600 s each) in
    ``parquet/reruns``: ``finals`` of the first grid trial, ``more_finals`` of the trials it names. ``also``:
    the study's ``final.also_chosen_by`` selection."""
    folder.mkdir(parents=True)
    study = {"name": name, "seed": 0, "methods": {method: {}}, "search": {"num_samples": len(grid)},
             "final": {"top": 1, "seeds": len(finals), **({"also_chosen_by": [also]} if also else {})},
             "training": {"epochs": 2}, "objective": {"metric": objective, "mode": mode}}
    (folder / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    (folder / "study.json").write_text(json.dumps({"environment": {
        "driver": {"cpu": "Test CPU", "cores": "2"}, "cluster": {"nodes": 1, "cpus": 2.0, "gpus": 0.0},
        "versions": {"torch": "9.9", "python": "3.11"}}}), encoding="utf-8")
    params = lambda p: {f"loss_params.{k}": v for k, v in p.items()}  # noqa: E731
    _write_tables(folder / "parquet", name, [
        {"trial_id": trial_id, "config": {"loss": method, "seed": 0, **params(p)}, "tags": {"kind": "trial"},
         "metrics": metrics, "seconds": 100, "status": status} for trial_id, p, metrics in grid])
    runs_of = {grid[0][0]: finals, **(more_finals or {})}
    trial_params = {trial_id: p for trial_id, p, _ in grid}
    runs = [{"trial_id": f"final-{source}-seed{seed}", "config": {"loss": method, "seed": seed,
                                                                   **params(trial_params[source])},
             "tags": {"kind": "final", "source_trial": source}, "metrics": metrics, "seconds": 600}
            for source, source_runs in runs_of.items() for seed, metrics in source_runs]
    if runs:
        _write_tables(folder / "parquet" / "reruns", name, runs)
    return folder


PROTOCOL = {
    "title": "Synthetic reproduction",
    "paper": {"cite": "A paper", "spread": "its ± as printed"},
    "data": "data",
    "blocks": {"acc": {"objective": "val/acc", "mode": "max", "preset": "none.yaml", "title": "for accuracy"},
               "ece": {"objective": "val/ece", "mode": "min", "preset": "none.yaml", "title": "for ECE"}},
    "parts": {"ce": {"study": "parts/ce.yaml"}, "ls": {"study": "parts/ls.yaml"}, "cp": {"study": "parts/cp.yaml"}},
    "rows": [
        {"label": "CE", "part": "ce", "method": "ce", "paper": {"acc": [0.912, 0.003], "ece": [0.129, 0.184]}},
        {"label": "LS acc", "part": "ls", "method": "ls", "paper": {"acc": [0.915, 0.002], "ece": [0.155, 0.128]}},
        {"label": "CE T", "part": "ce", "method": "ce", "ece_metric": "test/ece_ts", "block": "ece", "chosen_by": "acc",
         "note": "same runs as CE", "paper": {"acc": [0.908, 0.004], "ece": [0.030, 0.003]}},
        {"label": "LS ECE", "part": "ls", "method": "ls", "block": "ece",
         "paper": {"acc": [0.915, 0.003], "ece": [0.016, 0.002]}},
        {"label": "CP ECE", "part": "cp", "method": "confidence_penalty", "block": "ece",
         "paper": {"acc": [0.911, 0.003], "ece": [0.072, 0.003]}},
    ],
    "claims": [
        {"text": "LS has the highest accuracy", "metric": "acc", "best": "max", "winner": "LS acc",
         "among": ["CE", "LS acc"]},
        {"text": "LS has the lowest ECE", "metric": "ece", "best": "min", "winner": "LS acc", "among": ["CE", "LS acc"]},
        {"text": "LS and CP for ECE beat CE T", "metric": "ece", "best": "min", "beats": "CE T",
         "among": ["LS ECE", "CP ECE"]},
    ],
    "aurc_panel": {"baseline": {"part": "ce", "method": "ce"},
                   "smoothed": {"part": "ls", "method": "ls", "param": "loss_params.alpha"}},
}


def _sel(acc, aurc, lognorm, p=4.0, val=(0.9, 0.05)):
    """A grid trial's final metrics; ``val``: its val/acc and val/ece, which choose it."""
    return {"test/acc": acc, "test/aurc": aurc, "test/aurc_lognorm": lognorm, "test/lognorm_p": p,
            "test/lognorm_fallback": 0.0, "val/acc": val[0], "val/ece": val[1]}


LS_ECE_FINALS = [(2000, {"test/acc": 0.915, "test/ece": 0.016}), (2001, {"test/acc": 0.916, "test/ece": 0.017}),
                 (2002, {"test/acc": 0.917, "test/ece": 0.018})]


@pytest.fixture
def protocol(tmp_path: Path) -> Path:
    data = tmp_path / "repro" / "data"
    ce_finals = [(2000, {"test/acc": 0.90, "test/ece": 0.10, "test/ece_ts": 0.03}),
                 (2001, {"test/acc": 0.91, "test/ece": 0.12, "test/ece_ts": 0.03}),
                 (2002, {"test/acc": 0.92, "test/ece": 0.14, "test/ece_ts": 0.03})]
    make_part(data / "ce", "ce", "val/acc", "ce", [("c1", {}, _sel(0.90, 0.030, 0.031))], ce_finals)
    ls_finals = [(2000, {"test/acc": 0.930, "test/ece": 0.05, "test/aurc": 0.040, "test/aurc_lognorm": 0.035}),
                 (2001, {"test/acc": 0.932, "test/ece": 0.05, "test/aurc": 0.042, "test/aurc_lognorm": 0.036}),
                 (2002, {"test/acc": 0.934, "test/ece": 0.05, "test/aurc": 0.044, "test/aurc_lognorm": 0.037})]
    # one study serves both blocks: l2 is best by val/acc, l1 by val/ece, each with its final runs
    make_part(data / "ls", "ls", "val/acc", "ls",
              [("l2", {"alpha": 0.2}, _sel(0.93, 0.040, 0.033, val=(0.93, 0.05))),
               ("l1", {"alpha": 0.1}, _sel(0.92, 0.035, 0.032, val=(0.92, 0.01)))],
              ls_finals, also={"metric": "val/ece", "mode": "min"}, more_finals={"l1": LS_ECE_FINALS})
    path = tmp_path / "repro" / "proto.yaml"
    path.write_text(yaml.safe_dump(PROTOCOL, allow_unicode=True), encoding="utf-8")
    return path


def _row(doc: str, label: str) -> list[str]:
    line = next(line for line in doc.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def welch_by_hand(mean_a, sd_a, n_a, mean_b, sd_b, n_b) -> float:
    """Welch's two-sided p from the summaries: t = (a - b) / sqrt(va + vb), va = sd_a² / n_a, and the
    Welch-Satterthwaite degrees of freedom (va + vb)² / (va² / (n_a - 1) + vb² / (n_b - 1))."""
    from scipy.stats import t as student

    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    t = (mean_a - mean_b) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    return 2 * student.sf(abs(t), df)


def test_rows_are_hand_computed_means_sds_and_welch_tests_against_the_paper(protocol):
    doc = render(protocol)
    # CE acc 0.90/0.91/0.92: mean 0.91, SD 0.01, against the paper's 0.912 ± 0.003 over 10 seeds
    p = welch_by_hand(0.91, 0.01, 3, 0.912, 0.003, 10)
    assert 0.7 < p < 0.8
    ce = _row(doc, "CE")
    assert ce[:4] == ["CE", "0.912 ± 0.003", "0.9100 ± 0.0100 (n = 3)", f"consistent (p = {p:.3f}; -0.7 SD)"]
    # CE ECE 0.10/0.12/0.14: mean 0.12, SD 0.02 against 0.129 ± 0.184
    p_ece = welch_by_hand(0.12, 0.02, 3, 0.129, 0.184, 10)
    assert ce[4:7] == ["0.129 ± 0.184", "0.1200 ± 0.0200 (n = 3)", f"consistent (p = {p_ece:.3f}; -0.0 SD)"]
    assert ce[8:10] == ["2000, 2001, 2002", "30.0 min"]  # 3 final runs of 600 s
    # LS acc 0.930/0.932/0.934 (SD 0.002) against 0.915 ± 0.002: 8.5 of the paper's SDs above it
    ls = _row(doc, "LS acc")
    assert welch_by_hand(0.932, 0.002, 3, 0.915, 0.002, 10) < 0.001
    assert ls[2:4] == ["0.9320 ± 0.0020 (n = 3)", "differs (p < 0.001; +8.5 SD)"]
    # LS ECE 0.05 three times (SD 0) against 0.155 ± 0.128: only the paper's spread counts, 9 degrees of freedom
    p_ls = welch_by_hand(0.05, 0.0, 3, 0.155, 0.128, 10)
    assert ls[5:8] == ["0.0500 ± 0.0000 (n = 3)", f"differs (p = {p_ls:.3f}; -0.8 SD)", "alpha = 0.2"]
    # temperature scaling: test/ece_ts 0.03 three times, the paper's 0.030: no difference at all
    ce_t = _row(doc, "CE T")
    assert ce_t[5].startswith("0.0300 ± 0.0000 (n = 3)") and ce_t[6] == "consistent (p = 1.000; +0.0 SD)"
    assert ("Each number that differs from the paper, and why:\n\n"
            "- LS acc accuracy; LS acc ECE: **unexplained** (no measured or cited cause)\n") in doc
    # a row's own block: CE T is shown among the ECE-chosen rows
    ece_section = doc.split("### for ECE")[1].split("##")[0]
    assert "| CE T |" in ece_section and "| LS ECE |" in ece_section and "| CE |" not in ece_section
    assert "- CE T: same runs as CE" in ece_section


def test_each_block_shows_the_finals_of_the_trial_its_objective_chooses(protocol):
    """One LS study: its acc row has the final runs of l2 (best by val/acc), its ECE row those of l1 (best by
    val/ece), whatever other final runs the part holds."""
    doc = render(protocol)
    ls_acc, ls_ece = _row(doc, "LS acc"), _row(doc, "LS ECE")
    assert ls_acc[2] == "0.9320 ± 0.0020 (n = 3)" and ls_acc[7] == "alpha = 0.2"
    # 0.915/0.916/0.917 and 0.016/0.017/0.018: SD 0.001
    p_acc, p_ece = welch_by_hand(0.916, 0.001, 3, 0.915, 0.003, 10), welch_by_hand(0.017, 0.001, 3, 0.016, 0.002, 10)
    assert ls_ece[2:8] == ["0.9160 ± 0.0010 (n = 3)", f"consistent (p = {p_acc:.3f}; +0.3 SD)", "0.016 ± 0.002",
                           "0.0170 ± 0.0010 (n = 3)", f"consistent (p = {p_ece:.3f}; +0.5 SD)", "alpha = 0.1"]
    assert _row(doc, "ls")[1] == "acc, ece" and _row(doc, "ce")[1] == "acc"  # the parts table: blocks served
    assert _row(doc, "ls")[-1] == "grid: 2 completed of 2; final runs: 6 completed of 6"


def test_a_trial_both_objectives_choose_serves_both_rows(protocol):
    import shutil

    data = protocol.parent / "data"
    shutil.rmtree(data / "ls")
    finals = [(2000 + i, {"test/acc": 0.93 + 0.002 * i, "test/ece": 0.02}) for i in range(3)]
    make_part(data / "ls", "ls", "val/acc", "ls",
              [("l2", {"alpha": 0.2}, _sel(0.93, 0.04, 0.03, val=(0.93, 0.01))),
               ("l1", {"alpha": 0.1}, _sel(0.92, 0.03, 0.03, val=(0.92, 0.05)))],
              finals, also={"metric": "val/ece", "mode": "min"}, more_finals={"l1": LS_ECE_FINALS})
    doc = render(protocol)
    ours = lambda label: [_row(doc, label)[i] for i in (2, 5, 7, 8)]  # noqa: E731 (acc, ECE, chosen, seeds)
    assert ours("LS acc") == ours("LS ECE") == ["0.9320 ± 0.0020 (n = 3)", "0.0200 ± 0.0000 (n = 3)",
                                               "alpha = 0.2", "2000, 2001, 2002"]
    # the stale runs of l1 (chosen by nothing now) are in no row and counted apart in the part's state
    assert _row(doc, "ls")[-1] == ("grid: 2 completed of 2; final runs: 3 completed of 3 "
                                   "(and 3 of a configuration no longer chosen)")


def test_missing_part_is_not_run(protocol):
    doc = render(protocol)
    cp_ece = _row(doc, "CP ECE")
    assert cp_ece[2] == NOT_RUN and cp_ece[3] == NOT_RUN and cp_ece[5] == NOT_RUN
    assert _row(doc, "cp")[-1] == NOT_RUN  # the parts table
    assert "LS and CP for ECE beat CE T: not decidable yet: CP ECE not run yet" in doc
    assert "consistent: 6, differs: 2, no test (1 seed): 0, not run yet: 2 (of 10)" in doc


def test_ranking_claims_and_parts(protocol):
    doc = render(protocol)
    p = welch_by_hand(0.932, 0.002, 3, 0.91, 0.01, 3)
    assert ("- LS has the highest accuracy: holds here (best: LS acc; LS acc vs CE: "
            f"p = {p:.3f}, not significant; CE: 0.9100, LS acc: 0.9320)") in doc
    assert "- LS has the lowest ECE: holds here" in doc
    state = _row(doc, "ce")[-1]
    assert state == "grid: 1 completed of 1; final runs: 3 completed of 3"
    assert "| ce | 1.7 min | 30.0 min | 1500 | Test CPU, 2 cores; Ray: 1 node(s), 2 CPUs, 0 GPUs; torch 9.9, Python 3.11" in doc


def test_aurc_panel(protocol):
    doc = render(protocol)
    assert "| ce | 0 | 1 | 0.9000 | 0.0300 | 0.0310 | +0.0010 | 4 | 0 |" in doc
    lines = doc.splitlines()
    i1 = lines.index("| ls | 0.1 | 1 | 0.9200 | 0.0350 | 0.0320 | -0.0030 | 4 | 0 |")
    i2 = lines.index("| ls | 0.2 | 1 | 0.9300 | 0.0400 | 0.0330 | -0.0070 | 4 | 0 |")
    assert i1 < i2  # ordered by alpha
    assert "- LS raises AURC against CE (0.0300): at 2 of 2 values of α (0.1, 0.2)" in doc
    assert "- AURC of LS grows with α: 1 of 1 steps up the grid raise it" in doc
    assert "- logit normalisation lowers LS's AURC at 2 of 2 values of α" in doc
    assert "- for CE it changes AURC by +0.0010" in doc
    # the final runs: CE's have no AURC in this fixture (shown as no values); LS: raw 0.040/0.042/0.044,
    # logit-normalised 0.035/0.036/0.037, seed-wise differences -0.005/-0.006/-0.007 (s = 0.001: 0.002484)
    assert "| ce | – | 3 | 0.9100 ± 0.0248 (n = 3) | no values | no values | no values |" in doc
    assert ("| ls | alpha = 0.2 | 3 | 0.9320 ± 0.0050 (n = 3) | 0.0420 ± 0.0050 (n = 3) | 0.0360 ± 0.0025 (n = 3) "
            "| -0.0060 ± 0.0025 (n = 3) |") in doc


def test_part_without_finals_or_not_chosen_by_the_rows_block(protocol):
    data = protocol.parent / "data"
    grid = [("e1", {"beta": 0.1}, _sel(0.9, 0.03, 0.03))]
    make_part(data / "cp", "cp", "val/acc", "confidence_penalty", grid, [])
    with pytest.raises(ValueError, match=r"row 'CP ECE': block 'ece' chooses by val/ece \(min\), but part 'cp' "
                                         r"chose its final runs by val/acc \(max\)"):
        render(protocol)
    import shutil

    shutil.rmtree(data / "cp")
    make_part(data / "cp", "cp", "val/acc", "confidence_penalty", grid, [], also={"metric": "val/ece", "mode": "min"})
    doc = render(protocol)
    assert _row(doc, "CP ECE")[2] == NOT_RUN
    assert _row(doc, "cp")[-1] == "grid: 1 completed of 1; final runs: 0 completed"


def test_a_differing_number_shows_its_rows_cited_cause_and_the_others_are_unexplained(protocol):
    cited = {**PROTOCOL["rows"][1], "causes": {"ece": "  the smoothing target caps the confidence  "}}
    spec = {**PROTOCOL, "rows": [PROTOCOL["rows"][0], cited, *PROTOCOL["rows"][2:]]}
    protocol.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    doc = render(protocol)
    assert ("- LS acc accuracy: **unexplained** (no measured or cited cause)\n"
            "- LS acc ECE: the smoothing target caps the confidence\n") in doc
    listed = doc.split("and why:")[1].split("\n\n")[1]
    assert listed.count("\n- ") == 1  # consistent numbers are not listed
    spec["rows"][1] = {**cited, "causes": {"nll": "x"}}
    protocol.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="row 'LS acc' has causes=.*allowed: a mapping of acc and/or ece"):
        render(protocol)


def test_a_difference_the_papers_rounding_explains_is_measured_as_such(protocol):
    # printed with 3 decimals, LS acc's accuracy (0.932 ± 0.002 against 0.915 ± 0.002) differs past any rounding
    doc = render(protocol)
    assert "printed precision" not in doc
    # with 1 decimal: the paper's 0.915 may be as high as 0.965, so ours (0.932) is its mean, p = 1; its ECE 0.155
    # may be as low as 0.105 with an SD up to 0.178
    spec = {**PROTOCOL, "paper": {**PROTOCOL["paper"], "decimals": 1}}
    protocol.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    doc = render(protocol)
    p_ece = welch_by_hand(0.05, 0.0, 3, 0.105, 0.178, 10)
    assert p_ece >= 0.05
    listed = doc.split("and why:")[1].split("\n\n")[1]
    assert ("- LS acc accuracy: within the paper's printed precision (1 decimal): against 0.93 ± 0.05, which print "
            "as the paper's numbers, Welch's test gives p = 1.000 (measured)") in listed
    assert (f"- LS acc ECE: within the paper's printed precision (1 decimal): against 0.10 ± 0.18, which print as "
            f"the paper's numbers, Welch's test gives p = {p_ece:.3f} (measured)") in listed
    assert "unexplained" not in listed and _row(doc, "LS acc")[3].startswith("differs")  # the verdict stays
    # a cited cause comes first
    cited = {**PROTOCOL["rows"][1], "causes": {"ece": "the smoothing target caps the confidence"}}
    spec["rows"] = [PROTOCOL["rows"][0], cited, *PROTOCOL["rows"][2:]]
    protocol.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    assert "- LS acc ECE: the smoothing target caps the confidence" in render(protocol)
    spec["paper"] = {**PROTOCOL["paper"], "decimals": True}
    protocol.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="paper.decimals=True; allowed: an integer from 0 to 9"):
        render(protocol)


def test_protocol_names_known_blocks(protocol):
    bad = {**PROTOCOL, "rows": [{**PROTOCOL["rows"][0], "chosen_by": "nll"}]}
    protocol.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="row 'CE' has chosen_by='nll'; allowed: acc, ece"):
        render(protocol)


def test_unfinished_part(protocol):
    data = protocol.parent / "data"
    make_part(data / "cp", "cp", "val/acc", "confidence_penalty", [("e1", {"beta": 0.1}, {})], [],
              status="running", also={"metric": "val/ece", "mode": "min"})
    doc = render(protocol)
    assert _row(doc, "cp")[-1] == ("grid: 0 completed of 1, 1 unfinished when collected (2 of 2 epochs, "
                                   "val/acc 0.7000, last at 2026-01-01 00:00 UTC); final runs: 0 completed")
    assert _row(doc, "CP ECE")[2] == NOT_RUN


def test_aurc_panel_with_an_unfinished_and_a_missing_part(protocol):
    import shutil

    data = protocol.parent / "data"
    shutil.rmtree(data / "ce")
    shutil.rmtree(data / "ls")
    make_part(data / "ce", "ce", "val/acc", "ce", [("c1", {}, {})], [], status="running")
    doc = render(protocol)
    assert "| ce | 0 | not finished yet | | | | | | |" in doc and "| ls | grid | not run yet | | | | | | |" in doc
    assert "- not decidable yet: part ce not finished yet, part ls not run yet" in doc


def _source(tmp_path: Path) -> Path:
    study = make_part(tmp_path / "runs" / "ce", "ce", "val/acc", "ce", [("c1", {}, _sel(0.9, 0.03, 0.031))],
                      [(2000, {"test/acc": 0.9, "test/ece": 0.1})])
    samples = pa.table({"trial_id": ["c1"] * 1000, "label": pa.array([1] * 1000, pa.int16())})
    PartWriter(study / "parquet", SAMPLES).write(samples, "part-c1.parquet")
    return study


def test_collect_copies_and_reads_back(tmp_path):
    study = _source(tmp_path)
    into = tmp_path / "docs" / "data" / "ce"
    out = collect(study, into, echo=lambda _: None)
    assert out["samples"] and (into / "parquet" / "samples" / "part-c1.parquet").is_file()
    frames = study_frames(into)
    assert list(frames.trials["trial_id"]) == ["c1"] and list(frames.reruns["config/seed"]) == [2000]
    assert (into / "study.yaml").read_bytes() == (study / "study.yaml").read_bytes()
    manifest = json.loads((into / MANIFEST).read_text())
    assert "parquet/trials.parquet" in manifest["files"]
    # again (the study went on): allowed, the same files; a part file the study removed goes too
    (into / "parquet" / "samples" / "part-c1.parquet").unlink()
    (study / "parquet" / "samples" / "part-c1.parquet").unlink()
    out = collect(study, into, echo=lambda _: None)
    assert "parquet/samples/part-c1.parquet" in out["removed"]
    # over the size limit: per-sample files are left out
    small = collect(_source(tmp_path / "b"), tmp_path / "small", max_mb=1e-4, echo=lambda _: None)
    assert not small["samples"] and not (tmp_path / "small" / "parquet" / "samples" / "part-c1.parquet").exists()


def test_collect_refuses_foreign_or_changed_files(tmp_path, capsys):
    study = _source(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.md").write_text("mine")
    with pytest.raises(UsageError, match="did not write"):
        collect(study, foreign, echo=lambda _: None)
    assert (foreign / "notes.md").read_text() == "mine"
    into = tmp_path / "into"
    collect(study, into, echo=lambda _: None)
    (into / "extra.txt").write_text("someone's")
    with pytest.raises(UsageError, match="extra.txt"):
        collect(study, into, echo=lambda _: None)
    (into / "extra.txt").unlink()
    (into / "study.yaml").write_text("edited")
    with pytest.raises(UsageError, match="changed since"):
        collect(study, into, echo=lambda _: None)
    assert (into / "study.yaml").read_text() == "edited"
    # the CLI: one line, exit 2
    assert main(["reproduce", "collect", str(tmp_path / "nope"), "--into", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a study directory" in err[0]
    assert main(["reproduce", "collect", str(study), "--into", str(foreign)]) == 2


def test_report_cli(protocol, tmp_path, capsys):
    out = tmp_path / "doc.md"
    assert main(["reproduce", "report", str(protocol), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render(protocol)
    assert main(["reproduce", "report", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("path", COMMITTED_PROTOCOLS, ids=lambda p: p.name)
def test_part_study_files_train_their_grid_once_and_choose_for_every_row(path):
    from analysis.reproduction.parts import FROM_TRIALS, Study
    from analysis.reproduction.protocol import choice, chosen_in, load_protocol
    from search_spaces.space import method_params
    from search_spaces.study_file import load_study

    protocol = load_protocol(path)
    for name, info in protocol.spec["parts"].items():
        spec = load_study(ROOT / info["study"])
        grid = sum(math.prod(len(p.choices) for p in params if not p.is_fixed) if params else 1
                   for params in method_params(spec).values())
        assert (spec.search.sampler, spec.search.num_samples, spec.asha.enabled) == ("grid", grid, False), name
        study = Study(Path(), study=yaml.safe_load((ROOT / info["study"]).read_text(encoding="utf-8")))
        for row in (r for r in protocol.spec["rows"] if r["part"] == name and r.get("runs") != FROM_TRIALS):
            assert choice(protocol, chosen_in(protocol, row)) in study.selections, row["label"]


def test_the_augmented_variants_parts_share_the_preset_settings():
    from analysis.reproduction.protocol import load_protocol
    from search_spaces.study_file import load_study

    protocol = load_protocol(COMMITTED_PROTOCOL)
    ce = load_study(ROOT / protocol.spec["parts"]["ce"]["study"])
    for name, info in protocol.spec["parts"].items():
        spec = load_study(ROOT / info["study"])
        assert spec.seed == ce.seed and spec.training == ce.training and spec.data == ce.data, name


def test_the_authors_protocol_parts_are_the_preset_restricted_to_their_methods():
    from analysis.reproduction.protocol import load_protocol
    from search_spaces.study_file import load_study

    preset = load_study(ROOT / "studies" / "lr_table1_fmnist.yaml")
    protocol = load_protocol(ROOT / "docs" / "reproductions" / "lr_table1_fmnist.yaml")
    for name in (n for n in protocol.spec["parts"] if n.startswith("paper_")):
        spec = load_study(ROOT / protocol.spec["parts"][name]["study"])
        assert protocol.part_seeds(name) == list(range(10)), name
        assert spec.training == preset.training and spec.search.trial_seed == "shared", name
        assert spec.data.model_copy(update={"val_fraction": 0.25}) == preset.data, name
        assert {m: preset.methods[m] for m in spec.methods} == spec.methods, name


@pytest.mark.parametrize("path", COMMITTED_PROTOCOLS, ids=lambda p: p.name)
def test_committed_document_matches_committed_data(path):
    committed = path.with_suffix(".md").read_text(encoding="utf-8")
    rel = path.relative_to(ROOT)
    assert render(path) == committed, (
        f"{rel.with_suffix('.md')} differs from what its data gives: run 'smoothstudy reproduce report {rel}'")


def test_the_augmented_lr_rows_stated_cause_holds_in_its_committed_runs():
    """The cause the augmented variant states for its "LR (α opt. for acc.)" ECE: every final run the row shows is
    underconfident (temperature scaling fits T < 1) and scaling lowers its ECE."""
    protocol = load_protocol(COMMITTED_PROTOCOL)
    assert "T below 1 in each of the five runs" in protocol.spec["cause_texts"]["lr_underconfident"]
    runs = parts.tested_runs(load_part(protocol, "lr"), "label_relaxation", choice(protocol, "acc"))
    assert len(runs) == 5
    assert (runs["test/temperature"] < 1).all() and (runs["test/ece_ts"] < runs["test/ece"]).all()


def test_run_seconds_takes_a_runs_own_epoch_times_when_its_record_is_shorter():
    runs = pd.DataFrame({"trial_id": ["a", "b"],
                         "started_at": [T0, T0],
                         "ended_at": [T0 + pd.Timedelta(seconds=100), T0 + pd.Timedelta(seconds=2)]})
    epochs = pd.DataFrame({"trial_id": ["a", "a", "b", "b"], "time/train_s": [30.0, 30.0, 40.0, 50.0],
                           "time/eval_s": [1.0, 1.0, 5.0, None]})
    assert run_seconds(runs) == 102  # the records alone
    assert run_seconds(runs, epochs) == 100 + 95  # a: its record (100 > 62); b: its epochs (95 > 2)
    assert run_seconds(runs, epochs.drop(columns="time/eval_s")) == 102  # not timed by the trainer: records


def test_machine_names_the_gpu_and_final_runs_trained_on_another_device():
    from types import SimpleNamespace

    from analysis.reproduction.machine import machine
    from analysis.reproduction.parts import Study

    meta = {"environment": {"driver": {"cpu": "Test CPU", "cores": "16", "gpu": "Test GPU"},
                            "cluster": {"nodes": 1, "cpus": 16.0, "gpus": 1.0},
                            "versions": {"torch": "9.9", "python": "3.12"}}}
    on = lambda *devices: pd.DataFrame({"config/device": list(devices)})  # noqa: E731
    same = Study(Path("."), SimpleNamespace(trials=on("cuda", "cuda"), reruns=on("cuda")), meta=meta)
    assert machine(same) == ("Test CPU, 16 cores; GPU: Test GPU; Ray: 1 node(s), 16 CPUs, 1 GPUs; "
                             "torch 9.9, Python 3.12")
    moved = Study(Path("."), SimpleNamespace(trials=on("cuda"), reruns=on("cpu", "cpu")), meta=meta)
    assert machine(moved).endswith("; final runs on device cpu, the search on cuda")
