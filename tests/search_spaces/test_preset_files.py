import shutil
import subprocess
import sys
import zipfile

from search_spaces.preset_files import preset_names, study_file
from tests.conftest import ROOT


def test_a_preset_runs_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"quick", "smoke"} <= set(preset_names())
    assert set(preset_names()) == {p.stem for p in (ROOT / "studies").glob("*.yaml")}
    for arg in ("quick", "quick.yaml"):
        assert study_file(arg).read_text() == (ROOT / "studies" / "quick.yaml").read_text()
    (tmp_path / "quick.yaml").write_text("name: mine\n")
    assert study_file("quick.yaml").resolve() == tmp_path / "quick.yaml"  # a file here wins
    assert str(study_file("no_such_preset")) == "no_such_preset"


def test_the_wheel_ships_the_presets_and_states_its_license_and_bounds(tmp_path):
    source = tmp_path / "src"  # a copy: an in-tree build would leave build/ in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "runs", "build", "*.egg-info", "__pycache__", "docs", "tests", "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, cwd=tmp_path, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("smoothstudy-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    shipped = {n.rsplit("/", 1)[-1].removesuffix(".yaml") for n in names if n.startswith("search_spaces/presets/")}
    assert shipped == set(preset_names())
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Dist: ray[tune]>=2.52" in metadata
