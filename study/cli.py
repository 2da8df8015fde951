"""smoothstudy: label-smoothing hyperparameter studies on Ray (bad input: one line on stderr, exit code 2)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from analysis.core.errors import UsageError
from study.errors import expected_failure

DEFAULT_STORAGE = "runs"
VERBOSE = ("--verbose",)
VERBOSE_KW = {"action": "store_true", "help": "show Ray's, Tune's, Optuna's and MLflow's INFO lines too"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smoothstudy", description=__doc__.split(" (")[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a study file on a local or remote Ray cluster")
    run.add_argument("study_file", type=Path, help="a study file, or a preset's name (quick, smoke, all_methods …)")
    run.add_argument("--address", help="Ray cluster to join (auto, HOST:PORT); default: RAY_ADDRESS or a local one")
    run.add_argument("--storage", type=Path, default=Path(DEFAULT_STORAGE), help="where runs/<study>/ goes")
    run.add_argument("--ray-storage", help="where Ray keeps trial checkpoints: a directory every node sees or "
                     "s3://bucket/prefix (default: runs/<study>/)")
    run.add_argument("--mlflow-uri", help="MLflow tracking URI (default: sqlite under runs/<study>/)")
    run.add_argument("--optuna-storage", help="Optuna storage, any SQLAlchemy URL (postgresql://…, mysql://…) every "
                     "head node can reach (default: sqlite under runs/<study>/); recorded in study.json")
    run.add_argument("--smoke-test", action="store_true", help="the same study cut to seconds")
    run.add_argument("--force", action="store_true", help="replace an existing study of the same name")
    run.add_argument(*VERBOSE, **VERBOSE_KW)

    res = sub.add_parser("resume", help="continue an interrupted study")
    res.add_argument("study_dir", type=Path)
    res.add_argument("--address")
    res.add_argument(*VERBOSE, **VERBOSE_KW)

    st = sub.add_parser("status", help="trials by state, best so far, and whether the study can be resumed")
    st.add_argument("study_dir", type=Path)
    st.add_argument("--watch", action="store_true", help="follow a running study's progress until it ends")
    st.add_argument("--interval", type=float, default=5.0, help="seconds between updates with --watch")
    st.add_argument("--json", action="store_true", help="the status and the study's answer as JSON")

    rep = sub.add_parser("report", help="compare the methods of a study")
    rep.add_argument("study_dir", type=Path)
    rep.add_argument("--out", type=Path, help="output directory (default: runs/<study>/report)")

    rr = sub.add_parser("rerun", help="retrain a study's best configurations with new seeds shared by every "
                        "method (locally, or on Ray with --parallel)")
    rr.add_argument("study_dir", type=Path)
    rr.add_argument("--trial", default="best", help="'best' (per method with --top) or a trial id")
    rr.add_argument("--top", type=int, default=1, help="best K configurations of each method")
    rr.add_argument("--seeds", type=int, default=1,
                    help="new seeds per configuration; the i-th is the same for every configuration")
    rr.add_argument("--epochs", type=int, help="override the number of epochs")
    rr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    rr.add_argument("--parallel", action="store_true",
                    help="run the reruns as Ray tasks: on --address, else RAY_ADDRESS, else the cluster the study "
                         "joined (the address recorded in study.json; a local Ray when that one is unreachable), "
                         "else a local Ray (a study that started its own Ray recorded none)")
    rr.add_argument("--address", help="Ray cluster for --parallel (default: see --parallel)")
    rr.add_argument(*VERBOSE, **VERBOSE_KW)

    fin = sub.add_parser("final", help="the final runs of a finished study: each method's best configuration "
                         "(by the objective on validation) retrained with new seeds shared by every method, on Ray")
    fin.add_argument("study_dir", type=Path)
    fin.add_argument("--top", type=int, help="best K configurations of each method (default: the study's final.top, else 1)")
    fin.add_argument("--seeds", type=int, help="seeds per configuration (default: the study's final.seeds, else 3)")
    fin.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the study's training.device")
    fin.add_argument("--gpu", type=float, help="GPUs per run on Ray (default: the study's resources.gpu; "
                     "1 with --device cuda when the study asked for none)")
    fin.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else the study's, else a local one)")
    fin.add_argument(*VERBOSE, **VERBOSE_KW)

    cmp_ = sub.add_parser("compare", help="compare methods across several studies (e.g. two datasets)")
    cmp_.add_argument("study_dirs", type=Path, nargs="+")
    cmp_.add_argument("--out", type=Path, default=Path("runs/compare"), help="output directory")

    srv = sub.add_parser("mlflow-server", help="start an MLflow tracking server (SQLite or any SQLAlchemy URI)")
    srv.add_argument("--port", type=int, default=5000)
    srv.add_argument("--host", default="127.0.0.1", help="bind address (default: this machine only)")
    srv.add_argument("--store", default="runs/mlflow-server", help="directory, or a SQLAlchemy URI (postgresql://…)")

    sync = sub.add_parser("mlflow-sync", help="back-fill MLflow from a study's Parquet files (idempotent)")
    sync.add_argument("study_dir", type=Path)
    sync.add_argument("--mlflow-uri", help="tracking URI (default: the one the study used)")

    ui = sub.add_parser("ui", help="open the study's runs table in the MLflow UI (a server's address is printed)")
    ui.add_argument("study_dir", type=Path, nargs="?", default=Path(DEFAULT_STORAGE))
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--no-browser", action="store_true", help="print the address only")

    exp = sub.add_parser("export", help="a study's chosen configurations as a study file that 'run' trains again")
    exp.add_argument("study_dir", type=Path)
    exp.add_argument("--out", type=Path, required=True, help="the study file to write (a new file)")
    exp.add_argument("--method", action="append", help="a method to export (repeat; default: every method)")
    exp.add_argument("--seeds", type=int, help="final seeds (default: the study's final.seeds, else 3)")

    sub.add_parser("list", help="registered methods, datasets and models")

    from study.reproduce import add_parser as add_reproduce

    add_reproduce(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from study.stop import stop_on_sigterm

    stop_on_sigterm()
    try:
        if hasattr(args, "verbose"):
            from study.quiet import quiet

            quiet(args.verbose)
        code = COMMANDS[args.command](args) or 0
        _shutdown_ray()  # here, not in the interpreter's exit, where a failure would change the exit code
        return code
    except (KeyboardInterrupt, SystemExit) as interrupted:
        # Ray's SIGTERM handler (ray.init's, until ours is back) exits with the signal's number
        if isinstance(interrupted, SystemExit) and interrupted.code != signal.SIGTERM:
            raise
        _shutdown_ray()
        folder = getattr(args, "study_dir", None) or _run_folder(args)
        where = f"; 'smoothstudy status {folder}' shows what it holds" if isinstance(folder, Path) else ""
        print(f"smoothstudy: stopped (Ctrl-C or SIGTERM){where}", file=sys.stderr)
        return 130
    except Exception as err:
        line = expected_failure(err)  # None: a bug, which keeps its traceback
        if line is None:
            raise
        print(f"smoothstudy: error: {line}", file=sys.stderr)
        return 2


def cmd_run(args: argparse.Namespace) -> int:
    from analysis.core.layout import StudyDir
    from search_spaces.preset_files import study_file
    from search_spaces.study_file import read_study_file
    from study.preflight import check_run_flags
    from study.replace import check_replaceable

    path = study_file(args.study_file)
    spec = read_study_file(path)  # refused here, before torch and Ray are imported
    check_run_flags(spec, args.smoke_test, args.storage, args.address, args.mlflow_uri, args.ray_storage,
                    args.optuna_storage)
    check_replaceable(StudyDir.of(args.storage, spec["name"]), args.force)
    from study.runner import run_study

    study = run_study(path, args.storage, args.address, args.mlflow_uri, args.smoke_test, args.force,
                      ray_storage=args.ray_storage, optuna_storage=args.optuna_storage)
    _stopped_by_sigterm()
    _final_runs(study)
    _print_summary(study, args.mlflow_uri)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from study.preflight import check_ray_state

    check_ray_state(_study_dir(args.study_dir))
    from study.resume import resume_study

    study = resume_study(args.study_dir, args.address)
    _stopped_by_sigterm()
    _final_runs(study)
    _print_summary(study, None)
    return 0


def _final_runs(study) -> None:
    from study.final import final_if_asked
    from study.state import run_spec

    final_if_asked(study, run_spec(study))


def cmd_status(args: argparse.Namespace) -> int:
    study = _study_dir(args.study_dir)
    if args.interval <= 0:
        raise UsageError(f"interval={args.interval:g} is not allowed; allowed: a number of seconds > 0")
    from study.status import print_status, watch_status

    if args.json:
        from study.status import status_json

        print(status_json(study))
    elif args.watch:
        watch_status(study, args.interval)
    else:
        print_status(study)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    study = _study_dir(args.study_dir)
    from study.report import make_report

    path = make_report(study, args.out)
    print(f"report: {path}")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    study = _study_dir(args.study_dir)
    for name in ("top", "seeds"):
        _check_count(name, getattr(args, name))
    if args.epochs is not None:
        from trainables.config import MAX_EPOCHS

        _check_count("epochs", args.epochs, MAX_EPOCHS)
    from study.rerun import rerun

    rerun(study, trial=args.trial, top=args.top, seeds=args.seeds, epochs=args.epochs,
          device=args.device, parallel=args.parallel, address=args.address)
    return 0


def cmd_final(args: argparse.Namespace) -> int:
    study = _study_dir(args.study_dir)
    for name in ("top", "seeds"):
        if getattr(args, name) is not None:
            _check_count(name, getattr(args, name))
    if args.gpu is not None and not args.gpu >= 0:
        raise UsageError(f"gpu={args.gpu:g} is not allowed; allowed: a number >= 0")
    _check_own_store(study)
    from study.final import run_final
    from study.state import run_spec

    spec = run_spec(study)
    gpus = args.gpu
    if gpus is None and args.device == "cuda" and spec.resources.gpu == 0:
        gpus = 1.0
    run_final(study, spec, top=args.top, seeds=args.seeds, device=args.device, gpus=gpus, address=args.address)
    from study.report import make_report

    print(f"report: {make_report(study, None)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    studies = [_study_dir(p) for p in args.study_dirs]
    from study.compare import compare_studies

    path = compare_studies(studies, args.out)
    print(f"report: {path}")
    return 0


def cmd_mlflow_server(args: argparse.Namespace) -> int:
    from study.mlflow_server import serve

    return serve(host=args.host, port=args.port, store=args.store)


def cmd_mlflow_sync(args: argparse.Namespace) -> int:
    from study.preflight import check_mlflow_uri

    study = _study_dir(args.study_dir)
    uri = args.mlflow_uri or study.mlflow_uri
    check_mlflow_uri(uri)
    from study.sinks.mlflow_sync import sync_study
    from study.state import check_sqlite_file

    if uri == study.default_mlflow_uri:
        check_sqlite_file(study.mlflow_db)
        if not study.mlflow_db.exists():  # the one command that makes the study's store when it is gone
            print(f"mlflow-sync: {study.mlflow_db} is missing; rebuilding it from the study's Parquet files")
    summary = sync_study(study, uri)
    print(f"mlflow-sync {study.name} -> {uri}: {summary}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from analysis.core.layout import StudyDir
    from study.mlflow_server import is_loopback
    from study.preflight import check_port

    check_port(args.host, args.port)
    if not is_loopback(args.host):
        print(f"warning: the MLflow UI listens on {args.host}: anyone who can reach port {args.port} can read and "
              "change every run (no authentication); bind 127.0.0.1 and use an SSH tunnel instead", file=sys.stderr)
    root = args.study_dir.expanduser().absolute()
    if not (root / "study.yaml").exists():
        candidates = sorted(p.parent for p in root.glob("*/study.yaml"))
        if len(candidates) != 1:
            names = ", ".join(c.name for c in candidates) or "none"
            raise UsageError(f"study_dir={root}: give one study directory; studies here: {names}")
        root = candidates[0]
    from study.ui import open_ui

    open_ui(StudyDir(root), host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from study.export import export_study

    export_study(_study_dir(args.study_dir), args.out, args.method, args.seeds)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from trainables.data import get_dataset_info, list_datasets
    from trainables.losses import LOSSES
    from trainables.models import list_models

    print("methods:")
    for info in LOSSES:
        params = ", ".join(f"{h.name}={h.default!r} [{h.allowed()}]" for h in info.hparams) or "-"
        print(f"  {info.name:<20} {info.summary}; {params}")
    print("datasets:\n" + "\n".join(f"  {n:<20} {get_dataset_info(n).num_classes} classes" for n in list_datasets()))
    print("models:\n" + "\n".join(f"  {m}" for m in list_models()))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from study.reproduce import cmd_reproduce as run

    return run(args)


def _study_dir(path: Path):
    from analysis.core.layout import StudyDir

    study = StudyDir(path.expanduser().absolute())
    if not study.study_file.exists():
        raise UsageError(f"study_dir={path}: not a study directory (no study.yaml); run 'smoothstudy run' first")
    study.meta()  # a study.json that is not smoothstudy's is named now
    return study


def _check_count(name: str, value: int, most: int | None = None) -> None:
    from search_spaces.study_file import MAX_FINAL

    most = most or MAX_FINAL
    if not 1 <= value <= most:
        raise UsageError(f"{name}={value} is not allowed; allowed: an integer in [1, {most}]")


def _check_own_store(study) -> None:
    """A command that logs to the study's own MLflow store finds it there (it never makes a new one)."""
    from study.sqlite_cache import study_tracking_uri

    study_tracking_uri(study)


def _run_folder(args: argparse.Namespace) -> Path | None:
    """The study folder of a ``run`` (its study file read again: the name is in it)."""
    if args.command != "run":
        return None
    try:
        from search_spaces.preset_files import study_file
        from search_spaces.study_file import read_study_file

        return args.storage.expanduser().absolute() / read_study_file(study_file(args.study_file))["name"]
    except (OSError, ValueError):
        return None


def _stopped_by_sigterm() -> None:
    """A search that SIGTERM stopped (Tune saved its state) goes no further: no final runs, no report."""
    from study import stop

    if stop.requested():
        _shutdown_ray()
        raise KeyboardInterrupt  # main's one line


def _shutdown_ray() -> None:
    """Ray's workers and the local cluster this process started end with it (a cluster it joined runs on)."""
    ray = sys.modules.get("ray")
    if ray is not None and getattr(ray, "is_initialized", lambda: False)():
        ray.shutdown()


def _print_summary(study, mlflow_uri: str | None) -> None:
    from study.report import make_report

    report = make_report(study, None, echo=print)
    print()
    print(f"MLflow store:   {mlflow_uri or study.default_mlflow_uri}")
    print(f"Parquet files:  {study.parquet}")
    print(f"Report:         {report}")
    print(f"MLflow UI:      smoothstudy ui {study.root}")


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "status": cmd_status, "report": cmd_report,
            "rerun": cmd_rerun, "final": cmd_final, "ui": cmd_ui, "list": cmd_list, "compare": cmd_compare,
            "mlflow-server": cmd_mlflow_server, "mlflow-sync": cmd_mlflow_sync, "reproduce": cmd_reproduce,
            "export": cmd_export}

if __name__ == "__main__":
    sys.exit(main())
