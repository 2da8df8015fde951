"""A reproduction's parts run together on one GPU machine, in the background, their tables brought back.

One call to the machine may run 10 minutes, and a process in a session of its own outlives the call while the
machine stays warm. So ``start`` launches the parts and returns; ``watch`` prints their progress and writes
each part's tables (``<part>.tar.gz``: ``study.yaml``, ``study.json`` and ``parquet/``, what ``smoothstudy
reproduce collect`` reads) into ``--out`` as it goes, so a call cut short keeps what the parts wrote.

    python -m benchmarks.gpu.reproduce_parts start docs/reproductions/lr_table1_fmnist_augmented.yaml --parts lr fl \\
        --storage /tmp/repro
    python -m benchmarks.gpu.reproduce_parts watch --storage /tmp/repro --seconds 240 --out $OUT

Each part's study runs as its file says (grid, epochs, seeds, final runs), except that its trials train on the
GPU in fp32 (``device: cuda``, ``amp: false``: the parts trained on CPU ran in fp32 too) on a share of it,
``--slots`` trials at a time over all parts, on one Ray head started here, every process with the machine's
environment of ``run.py`` (the carried packages and data of ``--carry``). ``--smoke-test``: each part's
``--smoke-test`` study on the CPU (with ``--no-head``, each with its own local Ray: the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from analysis.reproduction.protocol import load_protocol
from benchmarks.gpu.run import machine_env
from benchmarks.gpu.steps import archive, gpu_study_file

ROOT = Path(__file__).resolve().parents[2]
STATE = "parts.json"
KEEP = ("study.yaml", "study.json", "parquet")
PROGRESS = re.compile(r"^\[progress\].*$", re.M)
PROGRESS_TAIL_BYTES = 64_000  # enough for a part's last progress line; logs grow to megabytes
LOG_BACK_BYTES = 2_000_000


def gpu_part_file(source: Path, dest: Path, slots: int, smoke: bool) -> Path:
    """``source`` with its trials on a ``1/slots`` share of the GPU, in fp32 (unchanged with ``smoke``)."""
    if smoke:
        shutil.copyfile(source, dest)
        return dest
    # more trials than cores: the GPU waits on each trial's Python, and one round of the grid beats two
    cpu = round(min(1.0, (os.cpu_count() or 1) / slots), 3)
    return gpu_study_file(source, dest, 1 / slots, slots, cpu=cpu, fp32=True)


def part_files(protocol_file: Path, names: list[str]) -> dict[str, Path]:
    protocol = load_protocol(protocol_file)
    parts = protocol.spec["parts"]
    unknown = [n for n in names if n not in parts]
    if unknown:
        raise SystemExit(f"--parts: {unknown[0]} is not a part of {protocol_file}; allowed: {', '.join(parts)}")
    return {n: protocol.repo_root / parts[n]["study"] for n in names}


def start_head(env: dict[str, str], storage: Path, port: int) -> str:
    """A Ray head of this machine's CPUs and GPUs, in a session of its own (it outlives the call)."""
    import torch

    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
           f"--num-cpus={os.cpu_count()}", f"--num-gpus={torch.cuda.device_count()}", "--disable-usage-stats",
           "--include-dashboard=false"]
    with (storage / "ray_head.log").open("w") as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, check=True,
                       timeout=120)
    return f"127.0.0.1:{port}"


def start(args: argparse.Namespace) -> dict:
    files = part_files(args.protocol, args.parts)
    storage = args.storage.resolve()
    storage.mkdir(parents=True, exist_ok=True)
    env = machine_env(args.carry)
    address = args.address or (start_head(env, storage, args.port) if args.head else None)
    state = json.loads((storage / STATE).read_text()) if (storage / STATE).exists() else {"started": time.time(),
                                                                                           "parts": {}}
    for name, source in files.items():
        study_file = gpu_part_file(source, storage / f"{name}.yaml", args.slots, args.smoke_test)
        cmd = [sys.executable, "-m", "study", "run", str(study_file), "--storage", str(storage)]
        cmd += ["--address", address] if address else []
        cmd += ["--smoke-test"] if args.smoke_test else []
        log, rc = storage / f"{name}.log", storage / f"{name}.rc"
        shell = f"{shlex.join(cmd)} > {shlex.quote(str(log))} 2>&1; echo $? > {shlex.quote(str(rc))}"
        proc = subprocess.Popen(["sh", "-c", shell], cwd=ROOT, env=env, start_new_session=True)
        state["parts"][name] = {"pid": proc.pid, "study": yaml.safe_load(study_file.read_text())["name"]}
        print(f"{name}: started ({' '.join(cmd)})", flush=True)
    (storage / STATE).write_text(json.dumps(state, indent=1))
    return state


def tail(path: Path, size: int) -> bytes:
    """The last ``size`` bytes of ``path`` (empty when it does not exist yet)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read()
    except FileNotFoundError:
        return b""


def status(storage: Path) -> dict[str, dict]:
    state = json.loads((storage / STATE).read_text())
    out = {}
    for name, part in state["parts"].items():
        rc_file, log = storage / f"{name}.rc", storage / f"{name}.log"
        text = tail(log, PROGRESS_TAIL_BYTES).decode(errors="replace")
        progress = PROGRESS.findall(text)
        rc = rc_file.read_text().strip() if rc_file.exists() else None
        out[name] = {"study": part["study"], "exit": None if rc is None else int(rc),
                     "epoch_rows": epoch_rows(storage / part["study"]),
                     "progress": progress[-1] if progress else (text.strip().splitlines() or [""])[-1][:200]}
    return out


def epoch_rows(root: Path) -> int:
    """Epoch results the part's Parquet holds so far (search trials and final runs)."""
    import pyarrow.parquet as pq

    rows = 0
    for folder in (root / "parquet" / "epochs", root / "parquet" / "reruns" / "epochs"):
        for f in folder.glob("part-*.parquet") if folder.is_dir() else ():
            try:
                rows += pq.ParquetFile(f).metadata.num_rows
            except (OSError, ValueError):
                pass
    return rows


def collect_archives(storage: Path, out: Path, parts: dict[str, dict]) -> None:
    """Each part's tables into ``out`` as ``<part>.tar.gz``."""
    for name, part in parts.items():
        root = storage / part["study"]
        if (root / "study.yaml").exists():
            try:
                archive(root, out / f"{name}.tar.gz", keep=KEEP)
            except OSError as err:  # a file the running study replaced meanwhile: the next round takes it
                print(f"{name}: archive not updated ({err})", flush=True)


def _state(part: dict) -> tuple:
    """What changes when a part writes: an archive of an unchanged part is not made again."""
    return part["exit"], part["epoch_rows"], part["progress"]


def watch(args: argparse.Namespace) -> dict:
    storage = args.storage.resolve()
    state = json.loads((storage / STATE).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.seconds
    archived: dict[str, tuple] = {}  # per part, its state when last archived
    while True:
        parts = status(storage)
        elapsed = time.time() - state["started"]
        for name, part in parts.items():
            print(f"[{elapsed:6.0f} s] {name}: exit {part['exit']}, {part['epoch_rows']} epochs | {part['progress']}",
                  flush=True)
        changed = {n: p for n, p in parts.items()
                   if archived.get(n) != _state(p) or not (args.out / f"{n}.tar.gz").exists()}
        collect_archives(storage, args.out, changed)
        archived.update({n: _state(p) for n, p in changed.items()})
        done = all(p["exit"] is not None for p in parts.values())
        if done or time.monotonic() + args.every > deadline:
            break
        time.sleep(args.every)
    (args.out / "parts_status.json").write_text(json.dumps({"elapsed_s": time.time() - state["started"],
                                                            "parts": parts}, indent=1))
    for name in parts:
        log = storage / f"{name}.log"
        if log.exists():
            (args.out / f"{name}.log").write_bytes(tail(log, LOG_BACK_BYTES))
    return parts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    st = sub.add_parser("start", help="launch the parts in the background and return")
    st.add_argument("protocol", type=Path)
    st.add_argument("--parts", nargs="+", required=True)
    st.add_argument("--storage", type=Path, required=True)
    st.add_argument("--slots", type=int, default=16, help="trials on the GPU at a time, all parts together")
    st.add_argument("--head", action=argparse.BooleanOptionalAction, default=True,
                    help="start one Ray head for all parts (default); --no-head: each part its own local Ray")
    st.add_argument("--port", type=int, default=6379, help="the head's GCS port")
    st.add_argument("--address", help="join this Ray head (e.g. one an earlier start began) instead")
    st.add_argument("--carry", type=Path, default=ROOT / ".gpu_carry",
                    help="the carried folder (carry.py): its site/ and data/ are used when present")
    st.add_argument("--smoke-test", action="store_true")
    wa = sub.add_parser("watch", help="progress and archives until the parts end or --seconds pass")
    wa.add_argument("--storage", type=Path, required=True)
    wa.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    wa.add_argument("--seconds", type=float, default=240)
    wa.add_argument("--every", type=float, default=30)
    args = parser.parse_args(argv)
    return start(args) if args.action == "start" else watch(args)


if __name__ == "__main__":
    main()
