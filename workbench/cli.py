"""``workbench`` command line.

Examples
--------
::

    workbench report                         # default research report
    workbench report -p epochs=5 -p start='"2005-01-01"'
    workbench report --quick                 # tiny settings (CI smoke run)
    workbench index                          # rebuild reports/output/index.html
    workbench universes                      # list bundled universes
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
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n")[0])
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
    args = parser.parse_args(argv)

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
        except FileNotFoundError as exc:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
