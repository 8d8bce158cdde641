"""Serve one of the workbench's Panel apps with every asset coming from this server.

Usage::

    python -m widgets.serve live_app --address 127.0.0.1 --port 5006 [panel serve options]

Runs ``panel serve widgets/<app>.py`` with its options, after two settings that keep the
browser from ever asking ``cdn.holoviz.org`` for anything (air-gapped machines, CI without
network):

- ``PANEL_CDN_ROOT=/panel-cdn/`` (Panel's documented setting for air-gapped use; it must
  be in the environment before Panel is imported, hence this launcher), so the stylesheet
  URLs Panel bakes into its component classes (``css/markdown.css``, ``css/listpanel.css``,
  ``bundled/theme/default.css``, ...) point at this server;
- ``--static-dirs panel-cdn/<version>/dist=<panel's dist folder>``, which serves them.

Why not rely on Panel's server resource mode alone: Panel rewrites those URLs to its local
``static/extensions/panel/`` route when it renders a page, but stylesheet objects cached
across sessions get re-pointed at the CDN while a second session is being built (a race
seen with two browser sessions on a loaded 2-core machine: dozens of
``net::ERR_NAME_NOT_RESOLVED`` requests for ``cdn.holoviz.org``). With the root below the
URL is local whichever way Panel resolves it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["APPS", "CDN_ROOT", "serve_command", "main"]

#: the servable apps of this package, by short name
APPS = ("live_app", "backtest_viewer", "feature_explorer", "tuning_dashboard")

#: where Panel's "CDN" assets are served from on this server
CDN_ROOT = "/panel-cdn/"

_HERE = Path(__file__).resolve().parent


def serve_command(app: str, args: Sequence[str] = (),
                  environ: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The ``panel serve`` command line and environment that serve ``app`` offline-safe.

    Parameters
    ----------
    app : str
        One of :data:`APPS`, or a path to a ``.py`` app file.
    args : sequence of str
        Further ``panel serve`` options (``--address``, ``--port``, ``--args ...``).
    environ : mapping, optional
        Base environment (default ``os.environ``); a ``PANEL_CDN_ROOT`` already set there
        is kept, and then no static route is added (the caller serves the assets).

    Returns
    -------
    argv : list of str
        ``[<panel executable>, "serve", <app file>, ...]``.
    env : dict of str to str
        ``environ`` plus ``PANEL_CDN_ROOT``.

    Raises
    ------
    ValueError
        If ``app`` is neither a known app name nor an existing ``.py`` file.
    """
    path = _HERE / f"{app}.py" if app in APPS else Path(app)
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"unknown app {app!r}: give one of {', '.join(APPS)} or a .py file")
    env = dict(os.environ if environ is None else environ)
    panel_bin = str(Path(sys.executable).with_name("panel"))
    argv = [panel_bin, "serve", str(path)]
    if "PANEL_CDN_ROOT" not in env:
        env["PANEL_CDN_ROOT"] = CDN_ROOT
        # for the version and the asset folder only; the served process imports Panel anew
        from panel.io.resources import DIST_DIR, JS_VERSION

        mapping = f"{CDN_ROOT.strip('/')}/{JS_VERSION}/dist={DIST_DIR}"
        if "--static-dirs" in args:  # one option takes every mapping: join the caller's
            i = list(args).index("--static-dirs") + 1
            args = [*args[:i], mapping, *args[i:]]
        else:
            argv += ["--static-dirs", mapping]
    return argv + list(args), env


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m widgets.serve APP [panel serve options]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1].strip())
        print(f"\napps: {', '.join(APPS)}")
        raise SystemExit(0 if argv else 2)
    try:
        cmd, env = serve_command(argv[0], argv[1:])
    except ValueError as exc:
        raise SystemExit(f"widgets.serve: {exc}") from None
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
