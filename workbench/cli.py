"""``workbench`` command line.

Examples
--------
::

    workbench report                         # default research report
    workbench report -p epochs=5 -p start='"2005-01-01"'
    workbench report --quick                 # tiny settings (CI smoke run)
    workbench index                          # rebuild reports/output/index.html
    workbench universes                      # list bundled universes
    workbench tune worker --study NAME --storage postgresql://u@host/db --n-trials 50
    workbench tune show --study NAME [--storage URL]   # trials table and Pareto front
    workbench tune list [--storage URL]                # studies in a storage
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "QUICK_PARAMETERS"]

#: Small settings for smoke runs (CI, tests): a short period, few epochs, a small model.
QUICK_PARAMETERS = {
    "start": "2006-01-01",
    "end": "2012-12-31",
    "epochs": 2,
    "patience": 2,
    "hidden_size": 8,
    "d_model": 8,
    "cnn_channels": 8,
    "n_estimators": 40,
    "min_train_years": 3,
    "test_years": 2,
}


def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"parameter must look like name=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # bare strings are allowed: universe=daily
    return key.strip(), value


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 success, 1 failed run, 2 usage)."""
    from workbench import __version__

    parser = argparse.ArgumentParser(
        prog="workbench", description="Quant Workbench: research reports, bundled data, tuning.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="execute the research report (papermill) and export HTML")
    rep.add_argument("-p", "--param", action="append", type=_parse_param, default=[],
                     metavar="NAME=VALUE", help="notebook parameter (value parsed as JSON)")
    rep.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    rep.add_argument("--output", type=Path, default=None, help="folder of dated runs")
    rep.add_argument("--template", type=Path, default=None, help="parameterised notebook")
    rep.add_argument("--progress", action="store_true", help="show cell progress")
    idx = sub.add_parser("index", help="rebuild the index.html of report runs")
    idx.add_argument("--output", type=Path, default=None)
    sub.add_parser("universes", help="list bundled data universes")
    _add_tune_parser(sub)
    args = parser.parse_args(argv)

    if args.command == "tune":
        return _tune_command(args)

    from workbench import reporting

    if args.command == "report":
        params: dict[str, object] = dict(QUICK_PARAMETERS) if args.quick else {}
        params.update(dict(args.param))
        kwargs = {"output_root": args.output, "progress": args.progress}
        if args.template is not None:
            kwargs["template"] = args.template
        try:
            run_dir = reporting.run_report(params, **kwargs)
        except reporting.ReportError as exc:
            print(f"workbench report: FAILED: {exc}", file=sys.stderr)
            return 1
        except (FileNotFoundError, ValueError) as exc:
            print(f"workbench report: {exc}", file=sys.stderr)
            return 2
        print(f"report written: {run_dir / 'report.html'}")
        print(f"index: {run_dir.parent / 'index.html'}")
        return 0
    if args.command == "index":
        print(reporting.write_index(args.output))
        return 0
    if args.command == "universes":
        from workbench.data import list_universes

        for name in list_universes():
            print(name)
        return 0
    return 2  # pragma: no cover


def _add_tune_parser(sub) -> None:
    tune = sub.add_parser("tune", help="Optuna studies: workers, tables")
    tsub = tune.add_subparsers(dest="tune_command", required=True)
    w = tsub.add_parser("worker", help="join a study and run trials until it has N complete")
    w.add_argument("--study", required=True, help="study name (as created by tune())")
    w.add_argument("--storage", default=None,
                   help="storage URL (postgresql://..., sqlite:///..., journal path); "
                        "default: the project's SQLite file")
    w.add_argument("--n-trials", type=int, default=None,
                   help="COMPLETE trials the study should end with (default: as stored)")
    w.add_argument("--timeout", type=float, default=None, help="seconds; no new trial after")
    w.add_argument("--allow-import", action="append", default=[], metavar="MODULE",
                   help="also import model classes from this module prefix")
    w.add_argument("--heartbeat", type=int, default=None, help="heartbeat interval, seconds")
    w.add_argument("--grace", type=int, default=None,
                   help="seconds without heartbeat before a trial is failed and retried")
    w.add_argument("--seed", type=int, default=None, help="sampler seed of this worker")
    for name, helptext in (("show", "print the trials table and the Pareto front"),
                           ("list", "list the studies in a storage")):
        p = tsub.add_parser(name, help=helptext)
        if name == "show":
            p.add_argument("--study", required=True)
        p.add_argument("--storage", default=None,
                       help="storage URL or journal path (default: the project's SQLite "
                            "file); read only: a file that does not exist is an error")


def _tune_command(args) -> int:
    import logging
    import os
    import socket

    from workbench import tuning
    from workbench.tuning import _storage

    try:
        if args.tune_command == "worker":
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
            kw = {}
            if args.heartbeat is not None:
                kw["heartbeat_interval"] = args.heartbeat
            if args.grace is not None:
                kw["grace_period"] = args.grace
            me = f"{socket.gethostname()}:{os.getpid()}"

            def note(study, frozen):
                values = "" if frozen.values is None else " values=" + ",".join(
                    f"{v:.4g}" for v in frozen.values)
                print(f"worker {me}: trial {frozen.number} {frozen.state.name}{values}",
                      flush=True)

            counts = tuning.run_worker(args.study, args.storage, args.n_trials,
                                       timeout=args.timeout, allow_import=args.allow_import,
                                       seed=args.seed, callbacks=[note], **kw)
            print(f"worker {me} done: " + ", ".join(f"{k.lower()} {v}"
                                                    for k, v in counts.items()), flush=True)
            return 0
        if args.tune_command == "show":
            import pandas as pd

            # read-only: a storage file that does not exist is an error, not created
            study = tuning.load_study(args.study, args.storage, heartbeat_interval=None,
                                      create=False)
            with pd.option_context("display.width", 160, "display.max_columns", 30):
                print(tuning.trials_table(study).to_string(index=False))
                print("\nPareto front:" if len(study.directions) > 1 else "\nBest:")
                print(tuning.pareto_front(study).to_string(index=False))
            return 0
        import optuna

        st = tuning.resolve_storage(args.storage, heartbeat_interval=None, create=False)
        for s in optuna.get_all_study_summaries(st):
            print(f"{s.study_name}\t{s.n_trials} trials")
        return 0
    except (ValueError, RuntimeError) as exc:  # StorageError is a ValueError
        where = _storage.mask_url(args.storage) if args.storage else "the default storage"
        print(f"workbench tune {args.tune_command}: {exc} (storage: {where})", file=sys.stderr)
        # a bad argument/study/storage is a usage error; trials that keep failing are a
        # failed run (see main)
        return 1 if isinstance(exc, RuntimeError) else 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
