"""What a finished study shows a person at the end, when it has no final runs (the smoke study): one line saying
so, then the single search trials, titled as such, its values those of Parquet; ``status`` leads with the same,
and ``status --json`` gives it as data. (With final runs: tests/study/test_final_runs.py.)"""

from __future__ import annotations

import json

from analysis.formatting import fmt_value
from analysis.leaderboard import best_trials
from analysis.results import read_trials
from tests.conftest import run_cli


def _table_rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "single search trials (one seed each)" in line)
    assert "no final runs yet" in lines[start - 1]
    rows = {}
    for line in lines[start + 3:]:
        if not line.strip() or not line.lstrip()[0].isdigit():
            break
        cells = line.split()
        rows[cells[1]] = cells
    return rows


def test_the_end_of_a_study_without_final_runs_says_so_then_shows_single_trials(smoke_study):
    output = (smoke_study / "cli_output.txt").read_text().split("--- stderr ---")[0]
    best = best_trials(read_trials(smoke_study), "val/acc", "max")
    rows = _table_rows(output)
    assert set(rows) == set(best["config/loss"])
    for _, trial in best.iterrows():
        cells = rows[trial["config/loss"]]
        assert cells[2] == trial["trial_id"] and cells[3] == fmt_value(trial["val/acc"])
        assert "seed=" not in " ".join(cells)  # a trial's seed is not a hyperparameter
    # the answer is the last table, after the report was written
    assert output.rindex("single search trials") > output.rindex("[progress]")


def test_status_leads_with_the_answer_and_gives_it_as_json(smoke_study):
    text = run_cli("status", str(smoke_study)).stdout
    assert text.index("single search trials") < text.index("trials asked for")
    assert "best epoch so far (any trial, any epoch" in text
    best = best_trials(read_trials(smoke_study), "val/acc", "max")
    assert set(_table_rows(text)) == set(best["config/loss"])
    data = json.loads(run_cli("status", str(smoke_study), "--json").stdout)
    answer = data["answer"]
    assert answer["kind"] == "trial" and answer["shared_seeds"] == []
    assert {m["method"]: m["trial_id"] for m in answer["methods"]} == dict(zip(best["config/loss"], best["trial_id"]))
    for m in answer["methods"]:
        assert m["metrics"]["val/acc"]["n"] == 1 and not m["metrics"]["val/acc"]["best"]  # one seed: no test
    assert set(answer["selection_noise"]["val/acc"]) == set(best["config/loss"])
    assert data["finished"] is True
