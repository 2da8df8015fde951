"""Where a part's study ran: its ``study.json`` (the driver's CPU, GPU and versions, the Ray cluster), else
what its tables say."""

from __future__ import annotations

from analysis.reproduction.parts import Study, column


def machine(study: Study) -> str:
    env = study.meta.get("environment") or {}
    if not env:
        runs = study.frames.runs
        devices = sorted(str(d) for d in column(runs, "config/device").dropna().unique())
        nodes = column(runs, "sys/node_ip").dropna().nunique()
        return (f"no study.json; the tables: device {', '.join(devices) or '?'}"
                + (f", {nodes} Ray node(s)" if nodes else ""))
    driver, cluster, versions = env.get("driver", {}), env.get("cluster", {}), env.get("versions", {})
    bits = [f"{driver.get('cpu', '?')}, {driver.get('cores', '?')} cores"]
    if driver.get("gpu"):
        bits.append(f"GPU: {driver['gpu']}")
    if cluster:
        bits.append(f"Ray: {cluster.get('nodes', '?')} node(s), {cluster.get('cpus', 0):g} CPUs, "
                    f"{cluster.get('gpus', 0):g} GPUs")
    if versions:
        bits.append(f"torch {versions.get('torch', '?')}, Python {versions.get('python', '?')}")
    search, final = (sorted(str(d) for d in column(frame, "config/device").dropna().unique())
                     for frame in (study.frames.trials, study.frames.reruns))
    if final and final != search:  # `smoothstudy final` run elsewhere, e.g. a GPU part's final runs on a CPU
        bits.append(f"final runs on device {', '.join(final)}, the search on {', '.join(search) or '?'}")
    return "; ".join(bits)


def part_machine(studies: list[Study]) -> str:
    """The machine of a part's studies: one line, or each distinct one with the seeds that ran there."""
    seen: dict[str, list[str]] = {}
    for study in studies:
        seen.setdefault(machine(study), []).append("" if study.seed is None else str(study.seed))
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(f"seeds {', '.join(seeds)}: {line}" for line, seeds in seen.items())
