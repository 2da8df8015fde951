"""benchmarks/gpu/run.py --smoke-test: the GPU session's steps on CPU, so the script is never first tried on the
GPU machine; and the carried folder's builder (offline parts).

The default suite runs the steps that prepare the machine (install, imports); the others call entry points the
suite tests on their own: the GPU tests (tests/trainables/test_gpu_paths.py, tests/study/test_gpu_study.py),
the benchmarks' smoke modes (test_bench_*.py) and the lr_table1_fmnist preset's smoke run
(tests/test_preset_smoke_runs.py). All steps together (~3 min on an idle 2-core machine) are the slow test,
run before a GPU session."""

import json
import zipfile

import pytest

from benchmarks.gpu import carry, run, steps


def fake_wheel(folder):
    folder.mkdir(parents=True)
    path = folder / "carried_demo-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("carried_demo/__init__.py", "VALUE = 7\n")
        z.writestr("carried_demo-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: carried-demo\nVersion: 0.1\n")
        z.writestr("carried_demo-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                   "Tag: py3-none-any\n")
        z.writestr("carried_demo-0.1.dist-info/RECORD", "")
    return path


def smoke_run(tmp_path, steps):
    """``run.py --smoke-test`` of ``steps`` with a fake carried wheel: every step ok, the wheel installed, the
    imports' lower bounds met; the saved results and the log folder."""
    fake_wheel(tmp_path / "carry" / "wheels")
    out = tmp_path / "out"
    results = run.main(["--smoke-test", "--out", str(out), "--carry", str(tmp_path / "carry"), "--steps", *steps])
    statuses = {name: entry["status"] for name, entry in results["steps"].items()}
    assert statuses == {name: "ok" for name in steps}, statuses
    assert (tmp_path / "carry" / "site" / "carried_demo" / "__init__.py").exists()
    saved = json.loads((out / "gpu_results.json").read_text())
    assert saved["steps"]["imports"]["result"]["unmet"] == []
    assert "== imports: ok" in (out / "gpu_run.log").read_text()
    return saved, out


@pytest.mark.slow  # 15 s of the default suite on a 2-core EPYC
def test_smoke_run_of_the_machine_steps(tmp_path):
    smoke_run(tmp_path, ("install", "imports"))


@pytest.mark.slow
def test_smoke_run_of_all_steps(tmp_path):
    saved, out = smoke_run(tmp_path, run.DEFAULT_STEPS)
    assert saved["steps"]["tests"]["result"]["tests"] >= 10
    assert saved["steps"]["trainable_mlp"]["result"]["ratio"]["median"] > 0
    assert saved["steps"]["lr_grid"]["result"]["archive"] == ["lr_grid.tar.gz"]
    import tarfile

    with tarfile.open(out / "lr_grid.tar.gz") as tar:
        names = tar.getnames()
    assert "lr_table1_fmnist_augmented/study.yaml" in names and any("/parquet/" in n for n in names)
    assert not any("/ray/" in n for n in names)
    assert "== lr_grid: ok" in (out / "gpu_run.log").read_text()


def test_steps_past_their_limit_or_the_budget_are_cut_and_the_rest_still_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(run.LIMITS, "flops", 2)
    out = tmp_path / "out"
    results = run.main(["--out", str(out), "--carry", str(tmp_path / "none"), "--steps", "install", "flops",
                        "imports", "--budget", "9"])
    steps_ = results["steps"]
    assert steps_["install"]["status"] == "ok"  # no wheels: nothing to install
    assert steps_["flops"]["status"] == "timeout after 2 s" and steps_["flops"]["seconds"] < 30
    assert steps_["imports"]["status"] in ("ok", "skipped: budget spent") or steps_["imports"]["status"].startswith(
        "timeout")


def test_archive_splits_into_capped_parts(tmp_path, monkeypatch):
    root = tmp_path / "study"
    (root / "parquet").mkdir(parents=True)
    (root / "parquet" / "blob.bin").write_bytes(__import__("os").urandom(3 * 2**20))
    (root / "ray").mkdir()
    (root / "ray" / "checkpoint.pt").write_bytes(b"x" * 100)
    monkeypatch.setattr(steps, "ARCHIVE_PART_MB", 1)
    parts = steps.archive(root, tmp_path / "a.tar.gz")
    assert parts == [f"a.tar.gz.part{i}" for i in range(len(parts))] and len(parts) == 4
    assert all((tmp_path / p).stat().st_size <= 2**20 for p in parts)


def test_gpu_study_file_puts_trials_on_a_gpu_share(tmp_path):
    import yaml

    path = steps.gpu_study_file(steps.ROOT / "studies" / "lr_table1_fmnist_augmented.yaml", tmp_path / "s.yaml", 0.125, 8)
    spec = yaml.safe_load(path.read_text())
    assert spec["resources"] == {"cpu": 1, "gpu": 0.125}
    assert spec["training"]["device"] == "cuda" and spec["training"]["epochs"] == 50
    assert spec["search"]["max_concurrent"] == 8


@pytest.mark.parametrize("marker,expected", [
    ('python_version < "3.11"', []),
    ('extra == "tune"', ["ray needs tensorboard-x-missing"]),
    ('extra == "other"', []),
    (None, ["ray needs tensorboard-x-missing"]),
])
def test_closure_check_reads_markers_and_extras(tmp_path, marker, expected):
    wheel = tmp_path / "ray-1.0-py3-none-any.whl"
    req = "tensorboard-x-missing" + (f"; {marker}" if marker else "")
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("ray-1.0.dist-info/METADATA", f"Name: ray\nRequires-Dist: {req}\nRequires-Dist: numpy\n")
    assert carry.missing_dependencies([wheel], {"numpy"}) == expected


def test_trim_ray_drops_java_and_keeps_record_consistent(tmp_path):
    wheel = tmp_path / "ray-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("ray/__init__.py", "")
        z.writestr("ray/jars/ray_dist.jar", b"j" * 1000)
        z.writestr("ray-1.0.dist-info/RECORD", "ray/__init__.py,sha256=x,0\nray/jars/ray_dist.jar,sha256=y,1000\n")
    carry.trim_ray(wheel)
    with zipfile.ZipFile(wheel) as z:
        assert z.namelist() == ["ray/__init__.py", "ray-1.0.dist-info/RECORD"]
        assert z.read("ray-1.0.dist-info/RECORD").decode() == "ray/__init__.py,sha256=x,0\n"
