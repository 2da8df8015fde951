"""A study folder and what is not the tool's: ``run --force`` deletes only what a study wrote (every entry, at
every depth), and a command on a copied or moved study writes only inside the folder it was given."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from analysis.core.layout import StudyDir
from study.replace import check_replaceable, clear_study, first_foreign, is_study
from tests.conftest import ROOT, checksums, refusal_here, run_cli
from tests.study.test_bad_input import bare_study, refused, snapshot

SMOKE_FILE = ROOT / "studies" / "smoke.yaml"
NOTES = b"the user's notes\x00\xff"


@pytest.fixture
def study_copy(smoke_study, tmp_path) -> StudyDir:
    copy = StudyDir(tmp_path / "runs" / smoke_study.name)
    shutil.copytree(smoke_study, copy.root, ignore=shutil.ignore_patterns("cli_output.txt"))  # written by conftest
    return copy


def test_a_finished_study_is_one_force_may_replace(study_copy):
    assert first_foreign(study_copy) is None and is_study(study_copy)


def test_force_leaves_a_foreign_file_in_every_study_folder_byte_for_byte(study_copy):
    folders = [study_copy.root, *sorted(p for p in study_copy.root.rglob("*") if p.is_dir())]
    assert {"parquet", "report", "ray", "mlartifacts"} <= {p.name for p in folders}
    for folder in folders:
        notes = folder / "my_notes.md"
        notes.write_bytes(NOTES)
        before = snapshot(study_copy.root)
        proc = refusal_here("run", SMOKE_FILE, "--storage", study_copy.root.parent, "--force")
        refused(proc, f"it holds {notes.relative_to(study_copy.root).as_posix()}, which no study writes",
                "nothing was deleted")
        assert snapshot(study_copy.root) == before, folder
        notes.unlink()


def test_force_leaves_a_foreign_folder_and_a_link_untouched(study_copy, tmp_path):
    (study_copy.ray / "mine").mkdir()
    refused(refusal_here("run", SMOKE_FILE, "--storage", study_copy.root.parent, "--force"), "it holds ray/mine/")
    (study_copy.ray / "mine").rmdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(NOTES)
    (study_copy.report_dir / "img" / "linked.png").symlink_to(outside, target_is_directory=True)  # named as ours
    assert first_foreign(study_copy) is None  # a link is judged by its name, never followed …
    clear_study(study_copy)
    assert (outside / "precious.txt").read_bytes() == NOTES  # … nor deleted through


def test_clearing_keeps_what_appeared_after_the_check(study_copy):
    assert check_replaceable(study_copy, force=True)
    late = study_copy.parquet / "epochs" / "appeared_since.csv"
    late.write_bytes(NOTES)
    clear_study(study_copy)
    assert snapshot(study_copy.root) == {"parquet": None, "parquet/epochs": None, "parquet/epochs/appeared_since.csv": NOTES}


def test_report_on_a_copy_writes_only_inside_the_copy(smoke_study, study_copy):
    original = checksums(smoke_study)
    (study_copy.report_dir / "report.md").unlink()
    run_cli("report", str(study_copy.root))
    assert checksums(smoke_study) == original
    logged = list(study_copy.root.glob("mlartifacts/*/artifacts/report/report.md"))
    assert logged and all(p.read_text() == (study_copy.report_dir / "report.md").read_text() for p in logged)


def test_report_on_a_moved_study_writes_only_inside_it(smoke_study, study_copy, tmp_path):
    original = checksums(smoke_study)
    moved = StudyDir(tmp_path / "moved" / study_copy.name)
    moved.root.parent.mkdir()
    study_copy.root.rename(moved.root)
    run_cli("report", str(moved.root))
    assert checksums(smoke_study) == original
    assert not study_copy.root.exists()  # the old place is not made again
    assert list(moved.root.glob("mlartifacts/*/artifacts/report/report.md"))


def test_read_commands_say_what_is_missing_and_make_no_store(study_copy):
    study_copy.mlflow_db.unlink()
    study_copy.optuna_db.unlink()
    before = snapshot(study_copy.root)
    status = refusal_here("status", study_copy.root)
    assert status.returncode == 0 and f"optuna: {study_copy.optuna_db} is missing" in status.stdout, status
    refused(refusal_here("ui", study_copy.root, "--no-browser"), f"{study_copy.mlflow_db}: the study's MLflow store is "
            "missing; 'smoothstudy mlflow-sync")
    assert snapshot(study_copy.root) == before
    report = run_cli("report", str(study_copy.root))
    assert "the study's MLflow store is missing" in report.stderr
    assert not study_copy.mlflow_db.exists() and not study_copy.optuna_db.exists()


def test_report_out_naming_an_existing_file(smoke_study, tmp_path):
    out = tmp_path / "report.md"
    out.write_text("mine")
    refused(refusal_here("report", smoke_study, "--out", out), f"out={out}: an existing file, not a directory")
    assert out.read_text() == "mine" and snapshot(tmp_path) == {"report.md": b"mine"}


def test_compare_writes_nothing_when_one_study_is_broken(smoke_study, tmp_path):
    broken = bare_study(tmp_path)
    out = tmp_path / "cmp"
    refused(refusal_here("compare", smoke_study, broken, "--out", out), str(broken), "no results yet")
    assert not out.exists() and not list(tmp_path.glob(".smoothstudy-*"))


def test_a_real_studys_ray_state_passes_resumes_check(smoke_study):
    from study.preflight import check_ray_state

    check_ray_state(StudyDir(smoke_study))  # Tune's JSON, and its pickles (search_gen_state-*.json is one)


def test_ui_of_a_study_imports_neither_torch_nor_ray(study_copy):
    script = ("import sys\nfrom pathlib import Path\nfrom analysis.core.layout import StudyDir\nfrom study.ui import open_ui\n"
              f"print(open_ui(StudyDir(Path({str(study_copy.root)!r})), serve=False, open_browser=False))\n"
              "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    url, modules = proc.stdout.splitlines()[-2:]
    assert url.endswith("/runs") and modules == "[]", proc.stdout
