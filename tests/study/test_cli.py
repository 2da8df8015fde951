"""Bad input: one line naming the field, exit code 2, before Ray starts; nothing existing is overwritten."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT, run_cli

SMOKE = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())


def write_study(tmp_path, **changes):
    data = {**SMOKE, **changes}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def assert_usage_error(proc, needle, after_ray_start=False):
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if after_ray_start:  # Ray's own start-up lines come first; ours is the one error line, last
        lines = lines[-1:]
        assert sum("error" in line.lower() for line in proc.stderr.splitlines()) == 1, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("smoothstudy: error: ") and needle in lines[0]


def test_bad_study_file_exits_2_before_ray(tmp_path):
    study = write_study(tmp_path, methods={"ls": {"alpha": 2.0}})
    proc = run_cli("run", str(study), "--storage", str(tmp_path / "runs"), check=False, timeout=60)
    assert_usage_error(proc, "ls.alpha=2.0 is out of range; allowed: a float in [0, 0.9]")
    assert not (tmp_path / "runs").exists()


def test_missing_data_directory(tmp_path):
    study = write_study(tmp_path, data={"dataset": "fashion_mnist", "data_dir": str(tmp_path / "nowhere")})
    proc = run_cli("run", str(study), "--storage", str(tmp_path / "runs"), check=False, timeout=60)
    assert_usage_error(proc, "apt-get install dataset-fashion-mnist")


def test_existing_study_is_not_overwritten(tmp_path):
    runs = tmp_path / "runs"
    (runs / "smoke").mkdir(parents=True)
    precious = runs / "smoke" / "keep.txt"
    precious.write_text("results")
    proc = run_cli("run", str(ROOT / "studies" / "smoke.yaml"), "--storage", str(runs), check=False, timeout=60)
    assert_usage_error(proc, "smoothstudy resume")
    assert precious.read_text() == "results"


def test_more_cpus_than_the_cluster_has(tmp_path):
    study = write_study(tmp_path, resources={"cpu": 512})
    proc = run_cli("run", str(study), "--storage", str(tmp_path / "runs"), check=False, timeout=60)
    assert_usage_error(proc, "resources.cpu=512 is more than this machine's")  # a local Ray: refused before it starts
    assert not (tmp_path / "runs" / "smoke").exists()  # nothing started, nothing left to block a fixed rerun


def test_not_a_study_dir(tmp_path):
    proc = run_cli("report", str(tmp_path), check=False, timeout=60)
    assert_usage_error(proc, "not a study directory")


def test_list_shows_registries():
    proc = run_cli("list", timeout=60)
    for name in ("ce", "ls", "maxsup", "lspp", "lls", "label_relaxation", "fashion_mnist", "mlp"):
        assert name in proc.stdout


def test_unknown_ray_storage_scheme(tmp_path):
    proc = run_cli("run", str(ROOT / "studies" / "smoke.yaml"), "--storage", str(tmp_path / "runs"),
                   "--ray-storage", "ftp://host/x", check=False, timeout=60)
    assert_usage_error(proc, "ray-storage=ftp://host/x: unknown scheme 'ftp'; allowed: a directory every node sees or")
    assert not (tmp_path / "runs").exists()


def test_ray_storage_paths(tmp_path, monkeypatch):
    from analysis.core.layout import StudyDir
    from study.ray_storage import check_ray_storage, ray_experiment_path

    monkeypatch.chdir(tmp_path)
    study = StudyDir(tmp_path / "runs" / "s1")
    assert check_ray_storage(None) is None and ray_experiment_path(study, None) == f"{study.root}/ray"
    assert check_ray_storage("shared") == str(tmp_path / "shared")  # absolute: every node resolves it alike
    assert ray_experiment_path(study, "s3://bucket/studies/") == "s3://bucket/studies/s1/ray"


def test_every_preloaded_driver_module_exists():
    """The preload thread swallows import errors (the real import reports them), so a misspelt name here would
    silently preload nothing."""
    import importlib.util

    from study.runner import DRIVER_MODULES

    assert [m for m in DRIVER_MODULES if importlib.util.find_spec(m) is None] == []
