"""The CLI under bad input and broken state: one line naming the file or setting, exit code 2, before Ray starts,
and the disk as it was (a user's files byte for byte)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import ROOT, refusal_here, run_cli

SMOKE_FILE = ROOT / "studies" / "smoke.yaml"
SMOKE = yaml.safe_load(SMOKE_FILE.read_text())
MAX_LINE = 600  # study.errors.MAX_MESSAGE_CHARS plus the prefix


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def write_study(tmp_path: Path, text: str | None = None, **changes) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "study.yaml"
    path.write_text(text if text is not None else yaml.safe_dump({**SMOKE, **changes}))
    return path


def refused(proc, *needles: str) -> str:
    """The one error line of a refusal (exit code 2), checked to hold every needle."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    line = lines[0]
    assert line.startswith("smoothstudy: error: ") and len(line) <= MAX_LINE, line[:1000]
    for needle in needles:
        assert needle in line, line
    assert "Traceback" not in proc.stderr
    return line


cli = refusal_here  # a refusal ends before any work: checked in this process


def cli_process(*args: str, timeout: float = 60):
    """In a process of its own: for what prints beyond the error line (warnings) or succeeds."""
    return run_cli(*map(str, args), check=False, timeout=timeout)


def user_folder(root: Path) -> dict[str, bytes | None]:
    (root / "sub").mkdir(parents=True)
    (root / "precious.txt").write_bytes(b"the user's work\x00\xff")
    (root / "sub" / "notes.md").write_text("more")
    return snapshot(root)


# -- run --force never deletes what is not a study ------------------------------------------------------------
@pytest.mark.parametrize("extra", [(), ("--ray-storage", "hdfs://x")])
def test_force_leaves_a_folder_that_is_no_study_untouched(tmp_path, extra):
    before = user_folder(tmp_path / "runs" / "smoke")
    proc = cli("run", SMOKE_FILE, "--storage", tmp_path / "runs", "--force", *extra)
    refused(proc, *(["ray-storage=hdfs://x: cannot open it"] if extra else
                    ["--force replaces only a study folder", "it holds precious.txt, which", "nothing was deleted"]))
    assert snapshot(tmp_path / "runs" / "smoke") == before


def test_force_leaves_a_home_folder_named_like_the_study_untouched(tmp_path):
    home = tmp_path / "home"
    before = user_folder(home / "Documents")
    study = write_study(tmp_path, name="Documents")
    refused(cli("run", study, "--storage", home, "--force"), "--force replaces only a study folder")
    assert snapshot(home / "Documents") == before


def test_force_leaves_a_study_holding_the_users_files_untouched(tmp_path):
    root = tmp_path / "runs" / "smoke"
    before = user_folder(root)
    (root / "study.yaml").write_text(SMOKE_FILE.read_text())
    (root / "study.json").write_text("{}")
    before = snapshot(root)
    refused(cli("run", SMOKE_FILE, "--storage", tmp_path / "runs", "--force"), "it holds precious.txt, which no study")
    assert snapshot(root) == before


def test_force_clears_only_the_studys_own_files(tmp_path):
    from analysis.core.layout import StudyDir
    from study.replace import check_replaceable, clear_study

    study = StudyDir(tmp_path / "smoke")
    (study.parquet / "epochs").mkdir(parents=True)
    (study.root / ".smoothstudy-k1ll3d").mkdir()  # a report's scratch folder, left by a killed process
    for path in (study.study_file, study.meta_file, study.mlflow_db, study.optuna_db, study.parquet / "epochs" / "part-1.parquet"):
        path.write_text("x")
    assert check_replaceable(study, force=True)
    (study.root / "appeared_since.txt").write_text("keep")  # written between the check and the deletion
    clear_study(study)
    assert snapshot(study.root) == {"appeared_since.txt": b"keep"}
    with pytest.raises(ValueError, match="already exists"):
        check_replaceable(study, force=False)


# -- checks before Ray starts and before anything is written -----------------------------------------------
@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"objective": {"metric": "val/nosuch", "mode": "max"}},
         ["objective.metric", "'val/nosuch' is not one a trial reports every epoch; allowed: val/acc"]),
        ({"resources": {"cpu": 1000}}, ["resources.cpu=1000 is more than this machine's"]),
        ({"seed": 2**63}, ["seed: 9223372036854775808 is too large; allowed: an integer of at most 2147483647"]),
        ({"training": {**SMOKE["training"], "epochs": 10**7}}, ["training.epochs", "less than or equal to 10000"]),
        ({"data": {"dataset": "digits", "data_dir": "/data/mine"}},
         ["data_dir='/data/mine': digits ships with its Python package and reads no directory"]),
    ],
)
def test_bad_settings_are_refused_before_ray(tmp_path, changes, needles):
    start = time.monotonic()
    refused(cli("run", write_study(tmp_path, **changes), "--storage", tmp_path / "runs"), *needles)
    assert time.monotonic() - start < 30  # no Ray start, no trial
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("option", "needles"),
    [
        (("--mlflow-uri", "bogus://nowhere"), ["mlflow-uri=bogus://nowhere: unknown scheme 'bogus'"]),
        (("--mlflow-uri", "http://127.0.0.1:1"), ["mlflow-uri=http://127.0.0.1:1: no MLflow server answers there"]),
        (("--storage", "FILE/runs"), ["storage=", "is a file, not a directory"]),
    ],
)
def test_bad_destinations_are_refused_before_anything_is_written(tmp_path, option, needles):
    (tmp_path / "FILE").write_text("a file")
    option = tuple(str(tmp_path / o) if o.startswith("FILE") else o for o in option)
    storage = () if option[0] == "--storage" else ("--storage", tmp_path / "runs")
    before = snapshot(tmp_path)
    refused(cli("run", SMOKE_FILE, *storage, *option), *needles)
    assert snapshot(tmp_path) == before


def test_an_unreachable_ray_address_is_refused_within_seconds(tmp_path):
    start = time.monotonic()
    proc = cli("run", SMOKE_FILE, "--storage", tmp_path / "runs", "--address", "127.0.0.1:1")
    refused(proc, "address=127.0.0.1:1: no Ray cluster answers there")
    assert time.monotonic() - start < 30
    assert not (tmp_path / "runs").exists()


def test_an_address_where_no_ray_head_listens_is_refused_within_seconds(tmp_path):
    with socket.socket() as silent:  # accepts connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        proc = cli("run", SMOKE_FILE, "--storage", tmp_path / "runs", "--address", address)
    refused(proc, f"address={address}: something listens there but it is not a Ray head")
    assert time.monotonic() - start < 30
    assert not (tmp_path / "runs").exists()


def test_a_grpc_server_counts_as_a_ray_head():
    """What a Ray 2.60 head's GCS answers to the HTTP/2 hello (seen from ``ray start --head``): a SETTINGS frame."""
    import threading

    from study.cluster import speaks_grpc

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(33)
                conn.sendall(b"\x00\x00\x18\x04\x00\x00\x00\x00\x00")

        threading.Thread(target=answer, daemon=True).start()
        assert speaks_grpc(address) and speaks_grpc("auto")
    assert not speaks_grpc(address, timeout_s=1)  # gone


# -- the study file is bounded ------------------------------------------------------------------------------
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
) + "name: bomb\nmethods: {ce: {}}\nseed: *i\n"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (ALIAS_BOMB, ["more than 100000 values"]),
        ("- 1\n" * 300_000, ["bytes; allowed: at most 1000000 bytes"]),
        ("[" * 10_000, ["nested more than 50 levels deep"]),
        (SMOKE_FILE.read_text() + "seed: 7\n", ["not valid YAML (key 'seed' given twice (first on line 3)"]),
        (None, ["not UTF-8 text"]),
    ],
)
def test_study_files_that_cannot_be_studies(tmp_path, text, needles):
    path = tmp_path / "study.yaml"
    if text is None:
        path.write_bytes(bytes(range(256)) * 4)
    else:
        path.write_text(text)
    start = time.monotonic()
    line = refused(cli("run", path, "--storage", tmp_path / "runs"), f"study file {path}", *needles)
    assert time.monotonic() - start < 30, line
    assert not (tmp_path / "runs").exists()


# -- broken study folders -----------------------------------------------------------------------------------
def bare_study(tmp_path: Path, **meta) -> Path:
    root = tmp_path / "runs" / "smoke"
    root.mkdir(parents=True)
    (root / "study.yaml").write_text(SMOKE_FILE.read_text())
    if meta:
        (root / "study.json").write_text(json.dumps(meta))
    return root


@pytest.mark.parametrize("command", [("report",), ("rerun",), ("compare",)])
def test_a_folder_with_only_the_study_file(tmp_path, command):
    root = bare_study(tmp_path)
    before = snapshot(tmp_path)
    out = ("--out", tmp_path / "cmp") if command == ("compare",) else ()
    refused(cli(*command, root, *out), str(root), "no results yet")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("option", "value"), [("--seeds", 10**12), ("--top", 10**6)])
def test_rerun_counts_are_bounded(tmp_path, option, value):
    root = bare_study(tmp_path)
    refused(cli("rerun", root, option, value), f"{option[2:]}={value} is not allowed; allowed: an integer in [1, 1000]")


def test_garbage_databases_are_named(tmp_path):
    root = bare_study(tmp_path, mlflow_uri=None)
    (root / "optuna.db").write_bytes(b"not a database" * 100)
    (root / "mlflow.db").write_bytes(b"not a database" * 100)
    refused(cli("status", root), f"{root / 'optuna.db'}: not a readable SQLite database")
    refused(cli("mlflow-sync", root), f"{root / 'mlflow.db'}: not a readable SQLite database")


def test_corrupt_study_json_is_named(tmp_path):
    root = bare_study(tmp_path)
    (root / "study.json").write_text("{truncated")
    refused(cli("status", root), f"{root / 'study.json'}: not the JSON smoothstudy wrote")


def test_a_finished_smoke_study_is_finished(tmp_path):
    """`run --smoke-test` asks for fewer trials than its file: status and resume count those."""
    root = bare_study(tmp_path, smoke_test=True, mlflow_uri=None, address=None, ray_storage=None)
    (root / "parquet").mkdir()
    pq.write_table(pa.table({"trial_id": [f"t{i}" for i in range(4)], "status": ["completed"] * 3 + ["stopped"]}),
                   root / "parquet" / "trials.parquet")
    status = cli("status", root)  # in this process: status starts nothing
    assert status.returncode == 0, status.stderr[-3000:]
    assert "4 trials asked for" in status.stdout and "finished: every trial has ended" in status.stdout
    assert "can be resumed" not in status.stdout
    before = snapshot(tmp_path)
    refused(cli("resume", root), "every trial of study smoke has ended; nothing to resume")
    assert snapshot(tmp_path) == before


# -- the MLflow UI -------------------------------------------------------------------------------------------
def test_ui_port_out_of_range(tmp_path):
    proc = cli("ui", tmp_path, "--port", "99999")
    refused(proc, "port=99999: allowed: 1 to 65535")
    assert "MLflow UI at" not in proc.stdout


def test_ui_port_in_use(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        refused(cli("ui", tmp_path, "--port", port), f"port={port}: cannot listen on 127.0.0.1:{port}")


def test_ui_on_every_interface_warns(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = cli_process("ui", tmp_path, "--host", "0.0.0.0", "--port", port)  # no store in tmp_path: refused after the warning
    assert proc.returncode == 2, proc.stderr
    warning, error = proc.stderr.splitlines()
    assert warning.startswith("warning: the MLflow UI listens on 0.0.0.0: anyone who can reach port")
    assert error.startswith("smoothstudy: error: study_dir=")


# -- the error boundary -------------------------------------------------------------------------------------
def test_expected_failures_are_one_bounded_line_and_bugs_are_not():
    import sqlite3

    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    from study.errors import MAX_MESSAGE_CHARS, expected_failure

    assert expected_failure(FileNotFoundError(2, "No such file or directory", "/x/y")) == "/x/y: No such file or directory"
    assert expected_failure(sqlite3.DatabaseError("file is not a database")) == "file is not a database"
    assert expected_failure(MlflowException("no such run\ndetails")) == "no such run"
    assert expected_failure(OperationalError("SELECT 1", {}, sqlite3.DatabaseError("locked"))).endswith("locked")
    assert len(expected_failure(ValueError("v" * 10**6 + "\nsecond line"))) == MAX_MESSAGE_CHARS
    assert expected_failure(KeyError("bug")) is None
    assert expected_failure(TypeError("bug")) is None


# -- the matrix: every bad input refused with one line, before any file, process or heavy import -----------------
def children() -> set[int]:
    """The processes this one started (Ray's would be among them)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once closed


def garbage_ray_state(tmp_path: Path) -> Path:
    root = bare_study(tmp_path, mlflow_uri=None, address=None, ray_storage=None)
    (root / "ray").mkdir()
    (root / "ray" / "tuner.pkl").write_bytes(b"\x80\x05garbage, not a pickle" * 10)
    return root


RUN = ("run", "{study}", "--storage", "{tmp}/runs")
MATRIX = {  # case: (study file changes, YAML text or None, command, needles)
    "bool as int": ({"training": {**SMOKE["training"], "epochs": True}}, None, RUN,
                    ["training.epochs: True is a boolean; allowed: an integer"]),
    "int key": ({}, "name: x\nmethods: {ce: {}}\n1: x\n", RUN, ["line 3", "key 1 is not text"]),
    "empty grid": ({"methods": {"ls": {"alpha": {"grid": []}}}}, None, RUN,
                   ["methods.ls.alpha.grid: an empty list; allowed: one value or more"]),
    "log range from 0": ({"methods": {"ls": {"alpha": {"low": 0, "high": 0.3, "log": True}}}}, None, RUN,
                         ["methods.ls.alpha.low=0: a log-scaled range starts above 0"]),
    "log range from a declared 0": ({"methods": {"ls": {"alpha": {"log": True}}}}, None, RUN,
                                    ["methods.ls.alpha: a log-scaled range from low=0.0; allowed: low > 0"]),
    "objective twice": ({"objective": [{"metric": "val/acc", "mode": "max"}, {"metric": "val/acc", "mode": "min"}]},
                        None, RUN, ["objective: 'val/acc' is given twice; allowed: each metric once"]),
    "final seeds": ({"final": {"seeds": 10**6}}, None, RUN, ["final.seeds", "less than or equal to 1000"]),
    "final top": ({"final": {"top": 10**6}}, None, RUN, ["final.top", "less than or equal to 1000"]),
    "subset above the dataset": ({"data": {**SMOKE["data"], "subset": 10**6}}, None, RUN,
                                 ["subset=1000000: more than the 1500 training images of digits"]),
    "concurrency": ({"search": {**SMOKE["search"], "max_concurrent": 10**6}}, None, RUN,
                    ["search.max_concurrent", "less than or equal to 100000"]),
    "cuda without a GPU": ({"training": {**SMOKE["training"], "device": "cuda"}}, None, RUN,
                           ["training.device=cuda: this machine has no GPU"]),
    "optuna URL": ({}, None, (*RUN, "--optuna-storage", "bogus"), ["optuna-storage=bogus: not a database URL"]),
    "optuna SQLite in a missing folder": ({}, None, (*RUN, "--optuna-storage", "sqlite:///{tmp}/nowhere/o.db"),
                                          ["optuna-storage=sqlite:///", "/nowhere does not exist"]),
    "optuna server on a closed port": ({}, None, (*RUN, "--optuna-storage", "postgresql://u@127.0.0.1:{port}/db"),
                                       ["no database server answers at 127.0.0.1:"]),
    "mlflow SQLite in a missing folder": ({}, None, (*RUN, "--mlflow-uri", "sqlite:///{tmp}/nowhere/m.db"),
                                          ["mlflow-uri=sqlite:///", "/nowhere does not exist"]),
    "unwritable ray storage": ({}, None, (*RUN, "--ray-storage", "/proc/smoothstudy"),
                               ["ray-storage=/proc/smoothstudy: /proc is not writable"]),
    "garbage Ray state": ({}, None, ("resume", "{garbage}"), ["tuner.pkl: not Ray's experiment state"]),
    "rerun epochs": ({}, None, ("rerun", "{bare}", "--epochs", "1000000"),
                     ["epochs=1000000 is not allowed; allowed: an integer in [1, 10000]"]),
    "final seeds flag": ({}, None, ("final", "{bare}", "--seeds", "1000000"),
                         ["seeds=1000000 is not allowed; allowed: an integer in [1, 1000]"]),
    "final without its MLflow store": ({}, None, ("final", "{bare}"), ["the study's MLflow store is missing"]),
    "status interval": ({}, None, ("status", "{bare}", "--watch", "--interval", "0"), ["interval=0 is not allowed"]),
}


@pytest.mark.parametrize("case", MATRIX)
def test_refused_before_anything_starts(tmp_path, monkeypatch, case):
    changes, text, command, needles = MATRIX[case]
    if case == "cuda without a GPU":
        from study.preflight import local_gpu_count

        if local_gpu_count():
            pytest.skip("this machine has a GPU")
    if case == "optuna server on a closed port":  # refused for its port, also where its driver is installed
        import importlib.util

        monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    study = write_study(inputs, text, **changes)
    values = {"study": study, "tmp": tmp_path, "port": closed_port()}
    if "{garbage}" in command:
        values["garbage"] = garbage_ray_state(tmp_path)
    if "{bare}" in command:
        values["bare"] = bare_study(tmp_path, mlflow_uri=None, address=None, ray_storage=None)
    before, started = snapshot(tmp_path), children()
    refused(cli(*(str(a).format(**values) for a in command)), *needles)
    assert snapshot(tmp_path) == before
    assert children() <= started


def test_a_fifo_is_not_read(tmp_path):
    fifo = tmp_path / "study.yaml"
    os.mkfifo(fifo)
    refused(cli("run", fifo, "--storage", tmp_path / "runs"), f"study file {fifo}: not a regular file")
    assert sorted(tmp_path.iterdir()) == [fifo]


def test_a_bad_study_file_is_refused_before_torch_or_ray_is_imported(tmp_path):
    """In a fresh interpreter: what a refusal of the study file and of the flags imports."""
    bad = [write_study(tmp_path / str(i), None, **changes) for i, changes in enumerate(
        [{"training": {**SMOKE["training"], "epochs": True}}, {"methods": {"ls": {"alpha": {"grid": []}}}},
         {"final": {"seeds": 10**6}}])]
    (tmp_path / "x").mkdir()
    calls = [["run", str(p), "--storage", str(tmp_path / "runs")] for p in bad]
    calls += [["run", str(SMOKE_FILE), "--storage", str(tmp_path / "runs"), "--optuna-storage", "bogus"],
              ["status", str(tmp_path / "x")], ["report", str(tmp_path / "x")], ["ui", str(tmp_path / "x")]]
    script = (f"import sys\nfrom study.cli import main\nfor args in {calls!r}:\n    assert main(args) == 2, args\n"
              "try:\n    main(['--help'])\nexcept SystemExit as stop:\n    assert stop.code == 0\n"
              "print(sorted(m for m in ('torch', 'ray', 'pandas', 'pyarrow', 'mlflow', 'optuna') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == "[]", proc.stdout[-2000:]
    assert len([line for line in proc.stderr.splitlines() if line.startswith("smoothstudy: error: ")]) == len(calls)


def test_cuda_on_a_cluster_without_gpus(monkeypatch):
    import ray

    from study.cluster import check_trial_resources
    from study.runner import load_study

    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 8.0}}])
    resources = load_study(SMOKE_FILE).resources
    check_trial_resources(resources, "cpu")
    with pytest.raises(ValueError, match="training.device=cuda: no node of the cluster has a GPU"):
        check_trial_resources(resources, "cuda")
