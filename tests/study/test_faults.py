"""Faults a long study meets: a NaN loss, a killed trial worker, an MLflow server that goes away; and the
security defaults (study files are data, checkpoints hold tensors only)."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient

from analysis.results import read_trials
from search_spaces.study_file import load_study
from study.optuna_store import optuna_trials
from tests.conftest import ROOT, kill_processes_under, ray_env, run_cli, tiny_study
from tests.study.test_mlflow_server import Server, check_study_in_mlflow
from tests.study.test_resume import assert_study_complete, epoch_parts, start_driver, wait_for


@pytest.fixture
def ray_tmp():
    env = ray_env()
    yield env
    kill_processes_under(env["RAY_TMPDIR"])


def test_nan_loss_ends_trials_as_diverged_and_optuna_fail(tmp_path, ray_tmp):
    study_file = tiny_study(tmp_path, "nan", training={"optimizer": "sgd", "lr": 1.0e12, "epochs": 2,
                                                       "batch_size": 64, "device": "cpu"},
                            search={"num_samples": 2, "max_concurrent": 2, "n_startup_trials": 1})
    proc = run_cli("run", study_file, "--storage", str(tmp_path / "runs"), env=ray_tmp, check=False)
    study_dir = tmp_path / "runs" / "nan"
    trials = read_trials(study_dir)
    assert list(trials["status"]) == ["diverged", "diverged"]
    assert all("nan" in r.lower() or "inf" in r.lower() for r in trials["reason"]), list(trials["reason"])
    client = MlflowClient(f"sqlite:///{study_dir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("nan").experiment_id],
                              filter_string="tags.`smoothstudy.kind` = 'trial'")
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FAILED" and run.data.tags["smoothstudy.status"] == "diverged"
        assert run.data.tags["smoothstudy.reason"]
    study = SimpleNamespace(trials=optuna_trials(f"sqlite:///{study_dir / 'optuna.db'}", "nan"))
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    # the study, and its closing report, go on when every trial diverged
    assert proc.returncode == 0, proc.stderr[-2000:]


def _trial_workers(marker: str) -> list[int]:
    """Pids of Ray Tune trial actors (process title ``ray::ImplicitFunc…``) of the Ray instance using
    ``marker`` as its temp dir (found in the process environment, which workers inherit)."""
    pids = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            if (pid_dir / "cmdline").read_bytes().startswith(b"ray::ImplicitFunc") and \
                    marker.encode() in (pid_dir / "environ").read_bytes():
                pids.append(int(pid_dir.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow  # about 1.5 min
def test_worker_killed_mid_epoch_is_retried_from_its_checkpoint(tmp_path, ray_tmp):
    study_file = tiny_study(tmp_path, "killw", asha={"enabled": False},
                            training={"optimizer": "sgd", "lr": 0.05, "epochs": 6, "batch_size": 16, "device": "cpu"},
                            search={"num_samples": 2, "max_concurrent": 1, "n_startup_trials": 1})
    Path(study_file).write_text(Path(study_file).read_text().replace("subset: 600", "subset: 1500"))
    storage = tmp_path / "runs"
    driver = start_driver(study_file, storage, ray_tmp)
    study_dir = storage / "killw"
    try:
        wait_for(lambda: len(epoch_parts(study_dir)) >= 2, 240, "2 epoch results", driver)
        workers = _trial_workers(ray_tmp["RAY_TMPDIR"])
        assert workers, "no trial worker process found"
        time.sleep(0.3)  # into the next epoch
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        out, _ = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, out[-3000:]
    assert_study_complete(study_dir, 2, 6, f"sqlite:///{study_dir / 'mlflow.db'}")
    assert set(read_trials(study_dir)["status"]) == {"completed"}


EPOCHS_OUTAGE = 12


@pytest.mark.slow  # about 2 min on a 2-core Xeon, 6.5 min on a 2-core EPYC
def test_mlflow_server_outage_then_sync(tmp_path, ray_tmp):
    server = Server(tmp_path / "mlflow").start()
    study_file = tiny_study(tmp_path, "outage", asha={"enabled": False},
                            training={"optimizer": "sgd", "lr": 0.05, "epochs": EPOCHS_OUTAGE, "batch_size": 16,
                                      "device": "cpu"},
                            # one trial at a time: after the first epoch, most of the study is still to come
                            search={"num_samples": 3, "max_concurrent": 1, "n_startup_trials": 1})
    study_dir = tmp_path / "runs" / "outage"
    driver = start_driver(study_file, tmp_path / "runs", ray_tmp, "--mlflow-uri", server.uri)
    try:
        wait_for(lambda: len(epoch_parts(study_dir)) >= 1, 240, "the first epoch result", driver)
        server.stop()
        out, _ = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            driver.kill()
        server.stop()
    assert driver.returncode == 0, out[-3000:]
    assert out.count("MLflow logging to") == 1, out[-3000:]  # told once, clearly
    assert "smoothstudy mlflow-sync" in out
    trials = read_trials(study_dir)
    assert len(trials) == 3 and set(trials["status"]) == {"completed"}  # trials went on; Parquet complete
    assert set(trials["epochs_run"]) == {EPOCHS_OUTAGE}

    server = Server(tmp_path / "mlflow", port=server.port).start()  # back, same port and store
    try:
        run_cli("mlflow-sync", str(study_dir), "--mlflow-uri", server.uri)
        # sync back-fills runs, params, metrics, tags and status; artifacts missed in the outage stay in the
        # Ray checkpoints (sync_from_parquet does not upload them)
        check_study_in_mlflow(MlflowClient(server.uri), study_dir, artifacts=False)
        again = run_cli("mlflow-sync", str(study_dir), "--mlflow-uri", server.uri).stdout
        assert "runs_created=0" in again and "metrics_logged=0" in again, again  # idempotent
    finally:
        server.stop()


def test_study_files_are_data_not_code(tmp_path):
    marker = tmp_path / "pwned"
    text = (ROOT / "studies" / "smoke.yaml").read_text().replace(
        "name: smoke", f"name: !!python/object/apply:os.system ['touch {marker}']")
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(ValueError):
        load_study(path)
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_are_loaded_as_tensors_only(tmp_path, monkeypatch):
    """A checkpoint holding a pickled object that runs code is refused when a trial resumes from it."""
    from ray import tune

    from trainables import tune_adapter
    from trainables.tune_reporting import STATE_FILE

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save({"model": _Evil(str(marker))}, ckpt / STATE_FILE)
    monkeypatch.setattr(tune_adapter.tune, "get_checkpoint", lambda: tune.Checkpoint.from_directory(str(ckpt)))
    spec = load_study(ROOT / "studies" / "smoke.yaml")
    with pytest.raises(pickle.UnpicklingError):
        tune_adapter.train_trial({"loss": "ce"}, base=spec.base_trial_config())
    assert not marker.exists()
