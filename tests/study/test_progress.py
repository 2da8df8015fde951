import io
import re

from study.progress import CLEAR_LINE, Printer, Progress, ProgressSink, progress_from_files, watch
from study.sinks.base import TrialEnd, TrialStart
from study.sinks.parquet import ParquetSink

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _drive(sink, clock):
    sink.trial_started(TrialStart("a", {"loss": "ce"}))
    sink.trial_started(TrialStart("b", {"loss": "ls"}))
    clock.t = 10
    sink.epoch("a", 1, {"val/acc": 0.5})
    clock.t = 11
    sink.epoch("b", 1, {"val/acc": 0.6})  # within 30 s of the last line: not printed in a log file
    clock.t = 60
    sink.trial_ended(TrialEnd("a", "completed", final_metrics={"val/acc": 0.7}))
    clock.t = 61
    sink.trial_ended(TrialEnd("b", "diverged"))
    sink.close()


def test_plain_lines_without_control_characters_when_not_a_terminal():
    out, clock = io.StringIO(), Clock()
    _drive(ProgressSink(Progress(4, "val/acc", "max"), Printer(out, 30, tty=False, clock=clock), clock), clock)
    lines = out.getvalue().splitlines()
    assert not CONTROL.search(out.getvalue())
    assert all(line.startswith("[progress] ") for line in lines)
    assert len(lines) == 3  # the first start, then each end (the other events come within 30 s of a line)
    assert lines[-2] == ("[progress] 1/4 trials: 1 completed, 0 stopped, 0 failed, 1 running | "
                         "best val/acc (max, any epoch): ce 0.7, ls 0.6 | elapsed 1m00s, ETA 3m00s")  # 60 s a trial, 3 left
    assert "2/4 trials: 1 completed, 0 stopped, 1 failed, 0 running" in lines[-1]
    assert "ETA 1m01s" in lines[-1]


def test_a_status_line_rewritten_in_place_on_a_terminal():
    out, clock = io.StringIO(), Clock()
    _drive(ProgressSink(Progress(2, "val/acc", "max"), Printer(out, 30, tty=True, clock=clock), clock), clock)
    text = out.getvalue()
    assert text.count("\n") == 0 and text.startswith(CLEAR_LINE) and text.endswith(CLEAR_LINE)
    assert "0/2 trials: 0 completed, 0 stopped, 0 failed, 2 running | best val/acc (max, any epoch): ce 0.5, ls 0.6" in text


def test_watch_reads_a_study_from_its_files(tmp_path):
    sink = ParquetSink(tmp_path / "parquet", "s")
    sink.trial_started(TrialStart("a", {"loss": "ce"}))
    sink.epoch("a", 1, {"val/acc": 0.4})
    sink.trial_started(TrialStart("b", {"loss": "ls"}))
    sink.epoch("b", 1, {"val/acc": 0.8})
    sink.trial_ended(TrialEnd("b", "stopped", "asha"))
    sink.close()
    from analysis.results import read_epochs, read_trials

    def read():
        return progress_from_files(read_trials(tmp_path), read_epochs(tmp_path), 3, "val/acc", "max")

    out = io.StringIO()
    progress = watch(read, None, 0.0, Printer(out, 0, tty=False), sleep=lambda s: None, max_rounds=2)
    assert progress.count("running") == 1 and progress.count("stopped") == 1 and progress.best == {"ce": 0.4, "ls": 0.8}
    assert out.getvalue().count("1/3 trials: 0 completed, 1 stopped, 0 failed, 1 running") == 2


def test_a_real_study_logs_plain_progress_lines(smoke_study):
    output = (smoke_study / "cli_output.txt").read_text()
    stdout = output.split("--- stderr ---")[0]
    lines = [line for line in stdout.splitlines() if line.startswith("[progress]")]
    assert lines and "6/6 trials" in lines[-1] and not CONTROL.search(stdout)


def test_status_watch_follows_a_study_until_it_ends(smoke_study):
    from tests.conftest import run_cli

    proc = run_cli("status", str(smoke_study), "--watch", "--interval", "0.1")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("[progress] 6/6 trials:") and lines[0].endswith(", finished")
    assert "best val/acc (max, any epoch):" in lines[0] and not CONTROL.search(proc.stdout)
    assert "finished: every trial has ended" in proc.stdout


def test_a_line_is_made_only_when_it_is_printed():
    made = []

    class Counting(Progress):
        def line(self, *args, **kwargs):
            made.append(1)
            return super().line(*args, **kwargs)

    out, clock = io.StringIO(), Clock()
    sink = ProgressSink(Counting(3, "val/acc", "max"), Printer(out, 30, tty=False, clock=clock), clock)
    sink.trial_started(TrialStart("a", {"loss": "ce"}))
    for epoch in range(1, 501):
        clock.t = epoch * 0.01
        sink.epoch("a", epoch, {"val/acc": epoch / 1000})
    assert len(made) == len(out.getvalue().splitlines()) == 1  # 500 results in 5 s: one line, made once


def test_counts_follow_a_trial_that_ends_and_starts_again():
    progress = Progress(3, "val/acc", "max")
    progress.started("a", "ce")
    progress.started("b", "ls")
    progress.ended("a", "completed")
    assert (progress.count("running"), progress.count("completed"), progress.done) == (1, 1, 1)
    progress.started("a", "ce")  # resumed
    assert (progress.count("running"), progress.count("completed"), progress.done) == (2, 0, 0)
    progress.ended("b", "lost")
    assert progress.count("running", "running") == 1 and progress.done == 0  # lost does not count towards N


def test_the_runs_after_the_search_show_their_progress_and_eta():
    from study.progress import runs_line

    assert runs_line("final runs", 0, 18, 5.0) == "final runs 0/18 | elapsed 0m05s"
    assert runs_line("final runs", 4, 18, 80.0) == "final runs 4/18 | elapsed 1m20s, ETA 4m40s"  # 20 s a run, 14 left
    assert runs_line("final runs", 18, 18, 360.0).endswith("finished")
