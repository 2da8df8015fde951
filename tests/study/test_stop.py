"""SIGTERM stops a long command as Ctrl-C does: Tune's own stop during a search (its state saved for resume),
elsewhere one line after the command's Ray is shut down (exit code 130)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from study import stop
from tests.conftest import ROOT, kill_processes_under, ray_env, refusal_here


def test_sigterm_is_ctrl_c(monkeypatch):
    monkeypatch.setattr(stop, "_requested", type(stop._requested)())
    previous = signal.getsignal(signal.SIGTERM)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # no search running
    try:
        stop.stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode
        assert stop.requested()
        seen = []
        signal.signal(signal.SIGINT, lambda *a: seen.append(a[0]))  # as Tune's, during a search
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def test_the_handler_before_a_search_comes_back_after_it():
    """Tune leaves its SIGINT handler installed when a search ends; SIGTERM in the final runs would only log."""
    def tune_s(*args):
        pass

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with stop.sigint_restored():
            signal.signal(signal.SIGINT, tune_s)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(RuntimeError), stop.sigint_restored():
            signal.signal(signal.SIGINT, tune_s)
            raise RuntimeError("the search failed")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_command_stopped_by_ray_s_sigterm_handler_is_one_line(monkeypatch, tmp_path):
    """``ray.init`` installs a handler that exits with SIGTERM's number: caught as a stop, not a traceback."""
    import study.cli

    def exits(args):
        raise SystemExit(signal.SIGTERM)

    monkeypatch.setitem(study.cli.COMMANDS, "status", exits)
    proc = refusal_here("status", tmp_path)
    assert proc.returncode == 130
    assert proc.stderr.splitlines() == [f"smoothstudy: stopped (Ctrl-C or SIGTERM); 'smoothstudy status {tmp_path}' "
                                        "shows what it holds"]


@pytest.mark.slow  # a local Ray start and shutdown: ~1 min on 2 busy cores
def test_final_stops_on_sigterm(smoke_study, tmp_path):
    import shutil

    copy = tmp_path / "smoke"
    shutil.copytree(smoke_study, copy)
    env = ray_env("rs")
    proc = subprocess.Popen([sys.executable, "-m", "study", "final", str(copy), "--seeds", "2", "--device", "cpu"],
                            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        for line in proc.stdout:  # event-driven: the runs are on Ray
            if "runs submitted to Ray" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
        kill_processes_under(env["RAY_TMPDIR"])
    assert proc.returncode == 130, out[-3000:]
    assert out.splitlines()[-1].startswith("smoothstudy: stopped (Ctrl-C or SIGTERM)")
