"""`smoothstudy resume`: continue an interrupted study where it stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path

from study.errors import UsageError
from study.layout import StudyDir
from study.runner import load_study_of, make_tuner


def resume_study(path: Path, address: str | None = None, echo=print) -> StudyDir:
    from ray import tune

    study = StudyDir(path.expanduser().absolute())
    spec = load_study_of(study)
    if not tune.Tuner.can_restore(str(study.ray)):
        raise UsageError(f"study_dir={path}: no Ray experiment state to resume from; start it with 'smoothstudy run'")
    meta = json.loads(study.meta_file.read_text()) if study.meta_file.exists() else {}
    from study.cluster import check_trial_resources, connect

    connect(address or meta.get("address"))
    check_trial_resources(spec.resources)
    echo(f"resuming study {spec.name} from {study.root}")
    start = time.perf_counter()
    make_tuner(spec, study, meta.get("mlflow_uri"), restore=True).fit()
    echo(f"study {spec.name} finished in {time.perf_counter() - start:.1f} s")
    return study
