"""Joining or starting Ray, and refusing trial resources the cluster cannot give."""

from __future__ import annotations

import os
import socket

from analysis.core.errors import UsageError
from search_spaces.study_file import Resources
from study.stop import stop_on_sigterm

AUTH_MODE_ENV = "RAY_AUTH_MODE"
ADDRESS_TIMEOUT_S = 5.0  # ray.init retries an absent head for minutes


def token_available() -> bool:
    """A Ray auth token is where Ray looks for one: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH or
    ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    return os.path.isfile(path) and os.path.getsize(path) > 0


def enable_token_auth(address: str | None) -> None:
    """Ray 2.60 sends its token when joining a cluster by an explicit address only with RAY_AUTH_MODE=token
    (``ray start --head`` turns token auth on by itself when a token exists). Send ours whenever we have one
    and the user did not choose a mode; RAY_AUTH_MODE=disabled stays theirs to set."""
    if address and address != "auto" and AUTH_MODE_ENV not in os.environ and token_available():
        os.environ[AUTH_MODE_ENV] = "token"
        from ray._raylet import Config

        Config.initialize("")  # Ray reads its config once per process: make it see token mode (as Ray does)


def connect(address: str | None, num_cpus: int | None = None) -> str | None:
    """Join ``address``, else ``RAY_ADDRESS``, else start a local Ray; returns the address joined (None for a
    local Ray this process started, which ends with it)."""
    # Tune warns on every forced experiment snapshot; the callback prints one concise line per trial instead.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return address
    # Worker stdout (Tune's per-checkpoint INFO lines) stays in the session logs; trial errors still reach the
    # driver through Tune's error reports.
    kwargs = {"include_dashboard": False, "log_to_driver": False}
    if address:
        if not reachable(address, ADDRESS_TIMEOUT_S):
            raise UsageError(f"address={address}: no Ray cluster answers there within {ADDRESS_TIMEOUT_S:g} s; "
                             "start one with 'ray start --head' or leave --address (and RAY_ADDRESS) out")
        if not speaks_grpc(address, ADDRESS_TIMEOUT_S):
            raise UsageError(f"address={address}: something listens there but it is not a Ray head (no gRPC "
                             f"answer within {ADDRESS_TIMEOUT_S:g} s); give the head's GCS port (6379 by default)")
        enable_token_auth(address)
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    stop_on_sigterm()
    return address


def _host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    return (host.strip("[]"), int(port)) if sep and port.isdigit() else None


def reachable(address: str, timeout_s: float = 3.0) -> bool:
    """Whether anything answers at the HOST:PORT of a Ray address (``ray.init`` would retry an absent head for
    minutes). Addresses without a port (``auto``) count as reachable: ``ray.init`` fails fast on those."""
    where = _host_port(address)
    if where is None:
        return True
    try:
        with socket.create_connection(where, timeout=timeout_s):
            return True
    except OSError:
        return False


# An HTTP/2 client's connection preface and an empty SETTINGS frame: a gRPC server (a Ray head's GCS, a Ray
# Client server) answers with its own SETTINGS frame.
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def speaks_grpc(address: str, timeout_s: float = 3.0) -> bool:
    """Whether the HOST:PORT of a Ray address answers like a gRPC server: a port that accepts connections and
    says nothing (not a Ray head) keeps ``ray.init`` waiting for minutes. True when it cannot tell: no port,
    or TLS (``RAY_USE_TLS``), which this plain-text hello would not get through."""
    where = _host_port(address)
    if where is None or os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return True
    try:
        with socket.create_connection(where, timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(_HTTP2_HELLO)
            head = sock.recv(9)
    except OSError:
        return False
    return len(head) >= 4 and head[3] == 0x04  # frame type 4: SETTINGS


def cluster_summary() -> dict[str, float | int | str]:
    """Alive nodes and the cluster's CPUs, GPUs and accelerator types, once connected."""
    import ray

    total = ray.cluster_resources()
    out: dict[str, float | int | str] = {"nodes": sum(1 for n in ray.nodes() if n.get("Alive")),
                                         "cpus": total.get("CPU", 0.0), "gpus": total.get("GPU", 0.0)}
    kinds = sorted(k.removeprefix("accelerator_type:") for k in total if k.startswith("accelerator_type:"))
    if kinds:
        out["accelerators"] = ", ".join(kinds)
    return out


def check_trial_resources(resources: Resources, device: str | None = None) -> None:
    """A trial must fit on one node, else Ray leaves it PENDING forever, and ``device: cuda`` needs a node with
    a GPU: say so before any trial starts."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    best_cpu = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    best_gpu = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    if resources.cpu > best_cpu:
        raise UsageError(f"resources.cpu={resources.cpu:g} is more than any node of the cluster has; "
                         f"allowed: at most {best_cpu:g}")
    if resources.gpu > best_gpu:
        raise UsageError(f"resources.gpu={resources.gpu:g} is more than any node of the cluster has; "
                         f"allowed: at most {best_gpu:g}" + (" (no GPU found)" if best_gpu == 0 else ""))
    if device == "cuda" and best_gpu == 0:
        raise UsageError("training.device=cuda: no node of the cluster has a GPU; allowed: cpu or auto, or a "
                         "cluster with GPUs")
