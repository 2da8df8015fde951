"""A study keeps Tune's JSON logger and leaves CSV and TensorBoard to its sinks (they would write every result
in the driver too)."""

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.utils.callback import _create_default_callbacks

from study.tune_loggers import study_loggers


def test_tune_adds_no_logger_of_its_own_to_a_study():
    callbacks = _create_default_callbacks(study_loggers())
    loggers = [c for c in callbacks if isinstance(c, (CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback))]
    assert len(loggers) == 3
    assert [type(c) for c in loggers if isinstance(c, JsonLoggerCallback)] == [JsonLoggerCallback]


def test_a_study_writes_result_json_but_no_csv_or_event_files(smoke_study):
    ray_dir = smoke_study / "ray"
    assert list(ray_dir.rglob("result.json"))
    assert not list(ray_dir.rglob("progress.csv"))
    assert not list(ray_dir.rglob("events.out.tfevents*"))
