"""Sinks in a child process: events batched in order, a flush the child acknowledges, errors (and the
child's own exit) brought back to the driver, close, and a full queue that holds the driver or drops results
and says how many. The sinks here write what they are handed to a file: they live in the child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from study.sinks.base import TrialEnd, TrialStart
from study.sinks.process import ProcessSinks, SinkProcessError
from tests.conftest import ROOT


class OddError(Exception):
    def __init__(self, first, second):  # unpickles as OddError(first): a TypeError
        super().__init__(first)
        self.second = second


def _describe(event) -> list:
    if isinstance(event, TrialStart):
        return ["start", event.trial_id]
    if isinstance(event, TrialEnd):
        files = sorted(p.name for p in Path(event.artifacts_dir).iterdir()) if event.artifacts_dir else []
        return ["end", event.trial_id, event.status, files]
    return ["epoch", event.trial_id, event.epoch]


class FileRecorder:
    def __init__(self, path: str, gate: str | None, fail: str | None) -> None:
        self.path, self.gate, self.fail = Path(path), gate, fail

    def _append(self, record) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")

    def write_batch(self, events) -> None:
        deadline = time.monotonic() + 60
        while self.gate and not Path(self.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.fail == "write":
            raise OSError("disk full")
        if self.fail == "odd":
            raise OddError("odd", 2)
        self._append({"batch": [_describe(e) for e in events]})

    def missed_results(self, count: int) -> None:
        self._append({"missed": count})

    def close(self) -> None:
        self._append({"closed": True})


@dataclass(frozen=True)
class Recorders:
    path: str
    gate: str | None = None
    fail: str | None = None

    def __call__(self) -> list:
        if self.fail == "factory":
            raise RuntimeError("no store")
        return [FileRecorder(self.path, self.gate, self.fail)]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _events(path: Path) -> list[list]:
    return [e for r in _records(path) for e in r.get("batch", [])]


def test_events_arrive_in_order_in_batches_flush_is_acknowledged_and_close_closes(tmp_path):
    out, gate = tmp_path / "out.jsonl", tmp_path / "gate"
    sinks = ProcessSinks(Recorders(str(out), gate=str(gate)), linger_s=0.05)
    sinks.trial_started(TrialStart("a", {"lr": 0.1}))
    for epoch in range(1, 201):
        sinks.epoch("a", epoch, {"val/acc": epoch / 200})
    sinks.trial_ended(TrialEnd("a", "completed"))
    gate.touch()
    sinks.flush()
    events = _events(out)
    assert events[0] == ["start", "a"] and events[-1] == ["end", "a", "completed", []]
    assert [e[2] for e in events if e[0] == "epoch"] == list(range(1, 201))
    assert len([r for r in _records(out) if "batch" in r]) < 10  # queued while the sink was busy: together
    pid = sinks.pid
    sinks.close()
    assert _records(out)[-1] == {"closed": True}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_sink_error_in_the_child_is_raised_on_the_drivers_next_call(tmp_path):
    sinks = ProcessSinks(Recorders(str(tmp_path / "out.jsonl"), fail="write"), linger_s=0)
    sinks.epoch("a", 1, {})
    with pytest.raises(OSError, match="disk full") as raised:
        sinks.flush()
    assert "raised in the sinks' process" in "".join(getattr(raised.value, "__notes__", []))
    sinks.close()


def test_an_error_that_does_not_pickle_arrives_by_name(tmp_path):
    sinks = ProcessSinks(Recorders(str(tmp_path / "out.jsonl"), fail="odd"), linger_s=0)
    sinks.epoch("a", 1, {})
    with pytest.raises(SinkProcessError, match="OddError: odd"):
        sinks.flush()
    sinks.close()


def test_an_error_building_the_sinks_reaches_the_driver_once(tmp_path):
    sinks = ProcessSinks(Recorders(str(tmp_path / "out.jsonl"), fail="factory"))
    with pytest.raises(RuntimeError, match="no store"):
        sinks.flush()
    sinks.epoch("a", 1, {})  # nothing more to say: the child is gone, and the driver was told why
    sinks.flush()
    sinks.close()


def test_a_child_that_dies_is_an_error_once(tmp_path):
    sinks = ProcessSinks(Recorders(str(tmp_path / "out.jsonl")))
    sinks.flush()
    os.kill(sinks.pid, signal.SIGKILL)
    sinks._process.join(30)
    with pytest.raises(SinkProcessError, match="exited"):
        sinks.epoch("a", 1, {})
    sinks.epoch("a", 2, {})
    sinks.flush()
    sinks.close()


def test_a_full_queue_holds_the_driver_until_there_is_room(tmp_path):
    gate = tmp_path / "gate"
    sinks = ProcessSinks(Recorders(str(tmp_path / "out.jsonl"), gate=str(gate)), linger_s=0, max_queue=2)
    put = threading.Thread(target=lambda: [sinks.epoch("a", e, {}) for e in range(1, 1001)])
    put.start()
    put.join(3)
    assert put.is_alive()  # blocked on the full queue
    gate.touch()
    put.join(30)
    assert not put.is_alive()
    sinks.flush()
    assert [e[2] for e in _events(tmp_path / "out.jsonl")] == list(range(1, 1001))
    sinks.close()


def test_drop_never_holds_the_driver_keeps_starts_and_ends_and_reports_what_it_dropped(tmp_path):
    out, gate = tmp_path / "out.jsonl", tmp_path / "gate"
    sinks = ProcessSinks(Recorders(str(out), gate=str(gate)), linger_s=0, max_queue=3, when_full="drop")
    started = time.monotonic()
    with pytest.warns(UserWarning, match="mlflow-sync"):
        for trial in ("a", "b"):
            sinks.trial_started(TrialStart(trial, {}))
            for epoch in range(1, 21):
                sinks.epoch(trial, epoch, {})
            sinks.trial_ended(TrialEnd(trial, "completed"))
    assert time.monotonic() - started < 2.0 and sinks.dropped > 0
    gate.touch()
    sinks.flush()
    events = _events(out)
    assert [e[:2] for e in events if e[0] != "epoch"] == [["start", "a"], ["end", "a"], ["start", "b"], ["end", "b"]]
    for trial in ("a", "b"):  # what got through is in order, within its trial's start and end
        span = events[events.index(["start", trial]) + 1:events.index(["end", trial, "completed", []])]
        assert [e[1] for e in span] == [trial] * len(span)
        assert [e[2] for e in span] == sorted(e[2] for e in span)
    assert len([e for e in events if e[0] == "epoch"]) + sinks.dropped == 40
    assert {"missed": sinks.dropped} in _records(out)
    sinks.close()


def test_a_trials_artifacts_are_copied_so_the_driver_need_not_wait(tmp_path):
    out, gate, folder = tmp_path / "out.jsonl", tmp_path / "gate", tmp_path / "artifacts"
    folder.mkdir()
    (folder / "reliability.png").write_bytes(b"png")
    sinks = ProcessSinks(Recorders(str(out), gate=str(gate)))
    sinks.trial_ended(TrialEnd("a", "completed", artifacts_dir=folder))
    for path in folder.iterdir():  # Ray deletes the checkpoint's folder
        path.unlink()
    folder.rmdir()
    gate.touch()
    sinks.flush()
    assert _events(out) == [["end", "a", "completed", ["reliability.png"]]]
    staged = sinks._staging
    assert staged is not None and not any(staged.iterdir())  # the copy is gone once written
    sinks.close()
    assert not staged.exists()


KILLED_DRIVER = textwrap.dedent("""
    import os, signal, sys
    from study.sinks.process import ProcessSinks
    from tests.study.test_process_sinks import Recorders

    sinks = ProcessSinks(Recorders(sys.argv[1]))
    sinks.flush()
    print(sinks.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_the_child_exits_when_the_driver_is_killed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLED_DRIVER, str(tmp_path / "out.jsonl")], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the sinks' process outlived its driver")
    assert {"closed": True} not in _records(tmp_path / "out.jsonl")  # a killed driver's sinks are not closed
