"""Where Ray keeps a study's experiment (``--ray-storage``): the study folder, a directory every node of a
cluster sees, or an object store."""

from __future__ import annotations

from pathlib import Path

from analysis.core.errors import UsageError
from analysis.core.layout import RAY_DIR, StudyDir

RAY_STORAGE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "abfs", "abfss", "az")


def check_ray_storage(ray_storage: str | None) -> str | None:
    """``--ray-storage``: a directory every node sees (made absolute) or a URI pyarrow can open; refused with
    one line before anything runs."""
    if not ray_storage:
        return None
    if "://" not in ray_storage:
        return str(Path(ray_storage).expanduser().absolute())
    scheme = ray_storage.split("://", 1)[0]
    if scheme not in RAY_STORAGE_SCHEMES:
        raise UsageError(f"ray-storage={ray_storage}: unknown scheme {scheme!r}; allowed: a directory every node "
                         f"sees or {', '.join(s + '://…' for s in RAY_STORAGE_SCHEMES)}")
    return ray_storage


def ray_storage_path(study: StudyDir, ray_storage: str | None) -> str:
    """Where Ray keeps the study's checkpoints and experiment state: ``runs/<study>/`` unless ``ray_storage``
    names a directory every node sees or an object store URI (``s3://bucket/prefix``, via pyarrow)."""
    if not ray_storage:
        return str(study.root)
    return f"{ray_storage.rstrip('/')}/{study.name}"


def ray_experiment_path(study: StudyDir, ray_storage: str | None) -> str:
    return f"{ray_storage_path(study, ray_storage)}/{RAY_DIR}"
