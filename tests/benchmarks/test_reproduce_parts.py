"""benchmarks/gpu/reproduce_parts.py: the GPU version of a part's study file, and a smoke run of the whole path
(start in the background, watch, archive, collect) on CPU, so it is never first tried on the GPU machine."""

import json
import os
import tarfile

import pytest
import yaml

from benchmarks.gpu import reproduce_parts
from study.reproduce import collect

PROTOCOL = reproduce_parts.ROOT / "docs" / "reproductions" / "lr_table1_fmnist_augmented.yaml"


def test_gpu_part_file_changes_only_device_precision_and_packing(tmp_path):
    source = reproduce_parts.part_files(PROTOCOL, ["lr"])["lr"]
    original = yaml.safe_load(source.read_text())
    changed = yaml.safe_load(reproduce_parts.gpu_part_file(source, tmp_path / "lr.yaml", 32, False).read_text())
    assert changed["training"] == {**original["training"], "device": "cuda", "amp": False}
    assert changed["resources"] == {**original["resources"], "cpu": round(min(1.0, os.cpu_count() / 32), 3),
                                    "gpu": 1 / 32}
    assert changed["search"] == {**original["search"], "max_concurrent": 32}
    rest = {k for k in original if k not in ("training", "resources", "search")}
    assert {k: changed[k] for k in rest} == {k: original[k] for k in rest}
    smoke = yaml.safe_load(reproduce_parts.gpu_part_file(source, tmp_path / "s.yaml", 32, True).read_text())
    assert smoke == original


def test_an_unknown_part_is_refused_with_the_allowed_ones():
    with pytest.raises(SystemExit, match=r"--parts: xx is not a part .*; allowed: ce, ls, cp, fl, lr"):
        reproduce_parts.part_files(PROTOCOL, ["lr", "xx"])


@pytest.mark.slow  # about 40 s on 2 idle cores: a study in the background; among the GPU kit's slow steps
def test_smoke_run_starts_watches_and_brings_back_what_collect_reads(tmp_path):
    storage, out = tmp_path / "storage", tmp_path / "out"
    reproduce_parts.main(["start", str(PROTOCOL), "--parts", "ce", "--storage", str(storage), "--smoke-test",
                          "--no-head"])
    parts = reproduce_parts.main(["watch", "--storage", str(storage), "--out", str(out), "--seconds", "240",
                                  "--every", "2"])
    assert parts["ce"]["exit"] == 0, (storage / "ce.log").read_text()[-3000:]
    assert parts["ce"]["epoch_rows"] > 0
    assert json.loads((out / "parts_status.json").read_text())["parts"]["ce"]["exit"] == 0
    with tarfile.open(out / "ce.tar.gz") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "back", filter="data")
    assert not any("/ray/" in n or n.endswith(".db") for n in names)
    result = collect(tmp_path / "back" / "lr_table1_fmnist_ce", tmp_path / "data" / "ce", echo=lambda _: None)
    assert result["files"] > 3


def test_tail_reads_only_the_end_of_a_log(tmp_path):
    log = tmp_path / "part.log"
    log.write_bytes(b"x" * 1000 + b"\n[progress] 3/7 trials")
    assert reproduce_parts.tail(log, 22) == b"\n[progress] 3/7 trials"
    assert reproduce_parts.tail(log, 10_000) == log.read_bytes()
    assert reproduce_parts.tail(tmp_path / "not_yet.log", 10) == b""
