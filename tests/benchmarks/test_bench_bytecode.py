import subprocess
import sys

from benchmarks.harness import ROOT


def test_bench_bytecode_smoke():
    """The smoke run on a module light enough for the default suite; the real cases are in BENCHMARKS.md."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_bytecode", "--smoke-test", "--cases", "imports",
                           "--modules", "json"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for needed in ("cpu:", "imports: json", ".pyc:", "imports      cached", "imports      uncached", "runs 1",
                   "cached / uncached"):
        assert needed in done.stdout, done.stdout


def test_pyc_share_counts_only_this_interpreters_bytecode(tmp_path):
    from benchmarks.bench_bytecode import pyc_share

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / f"a.{sys.implementation.cache_tag}.pyc").write_bytes(b"")
    (tmp_path / "__pycache__" / "b.other-99.pyc").write_bytes(b"")
    assert pyc_share(tmp_path) == (1, 3)


def test_uncached_reads_no_bytecode_under_site_packages_and_cached_does(tmp_path):
    """A module whose valid .pyc says one thing and whose source another (same size and mtime, so Python trusts
    the .pyc): the cached mode imports the .pyc's value, the uncached one the source's; a module outside the
    site folder keeps its cache in both."""
    import os
    import py_compile

    from benchmarks.bench_bytecode import environments

    site, other = tmp_path / "site", tmp_path / "other"
    for folder in (site, other):
        folder.mkdir()
        source = folder / f"mod_{folder.name}.py"
        source.write_text("X = 'pyc'\n")
        stat = source.stat()
        py_compile.compile(str(source), doraise=True)  # writes __pycache__/mod_….cpython-XY.pyc
        source.write_text("X = 'src'\n")
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    envs = environments(site, tmp_path / "no_cache", f"{site}{os.pathsep}{other}")
    read = {mode: subprocess.run([sys.executable, "-c", "import mod_site, mod_other; print(mod_site.X, mod_other.X)"],
                                 env=env, capture_output=True, text=True, check=True).stdout.split()
            for mode, env in envs.items()}
    assert read == {"cached": ["pyc", "pyc"], "uncached": ["src", "pyc"]}
