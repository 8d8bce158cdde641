"""Live trading app: one paper-trading producer streamed to every Panel session.

In a notebook (``pn.extension("tabulator")`` first)::

    from widgets.live_app import LiveApp
    app = LiveApp(engine)       # any workbench.live.LiveEngine
    app.panel()                 # pushes at 15 Hz while the engine runs
    engine.start()

As an app (``make app`` does this)::

    python -m widgets.serve live_app --address 127.0.0.1 --port 5006

(:mod:`widgets.serve` runs ``panel serve widgets/live_app.py`` with Panel's assets served
locally, so the page never asks a CDN for a stylesheet; plain ``panel serve`` works too
where the network is open.)

The served app shares ONE :class:`~workbench.live.LiveEngine` per process
(:func:`shared_engine`): a replay of the bundled daily universe from 2013 (after the demo
ensemble's training window), the demo ensemble (:func:`workbench.live._demo.
demo_ensemble`), a paper ledger and pre-trade limits scaled to the capital. Environment:

- ``WORKBENCH_LIVE_RATE``: replay bars per second at speed 1 (default 10);
- ``WORKBENCH_LIVE_MODEL``: ``demo`` (default) or ``macd`` (the MACD baseline, no
  training);
- ``WORKBENCH_LIVE_LEDGER``: ledger URL (default SQLite in the data directory);
- ``WORKBENCH_LIVE_RESUME=1``: continue the stored paper account instead of starting
  afresh with new capital.

Serving beyond loopback needs authentication: ``panel serve`` refuses to start when
``--address`` is anything but a loopback address (or missing: the server then listens on
every interface) unless ``--basic-auth`` or ``--oauth-provider`` is given
(:func:`check_serve_args`). The refusal happens before the server listens: Panel imports
the ``panel.auth`` entry points when ``panel serve`` starts, and this project registers
this module there (``pyproject.toml``), so the check runs at start-up. Should the entry
point be missing (e.g. ``bokeh serve``), the first session request stops the server with
the same message.
"""

from __future__ import annotations

import collections
import glob
import ipaddress
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, NumeralTickFormatter
from bokeh.models.annotations import Legend, LegendItem, Span
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

__all__ = ["LiveApp", "shared_engine", "build_engine", "record_history", "check_serve_args",
           "WARMUP_BARS"]

_log = logging.getLogger(__name__)

#: Bars replayed (unpaced) before ``start`` so the features and the ensemble's
#: 63-bar context are ready when the paced replay begins (the demo ensemble first
#: trades after 438 bars, the MACD baseline after 313).
WARMUP_BARS = 440

#: Title of the price chart. The series are rebased once, on the first bar this view
#: received; after the chart's rollover the first bar *shown* is generally not at 100.
PRICES_TITLE = "Prices (100 = first bar this view received)"

_LOOPBACK_NAMES = {"localhost"}
_LIMIT_FIELDS = (
    ("max_order_notional", "Max order notional", 1_000.0),
    ("max_position_notional", "Max position notional", 1_000.0),
    ("max_gross_exposure", "Max gross exposure (x equity)", 0.05),
    ("max_net_exposure", "Max net exposure (x equity)", 0.05),
    ("max_drawdown", "Max drawdown (fraction)", 0.01),
)
_SPEEDS = {"0.25x": 0.25, "0.5x": 0.5, "1x": 1.0, "2x": 2.0, "5x": 5.0, "10x": 10.0,
           "50x": 50.0, "max": 0.0}
_TABLE_COLUMNS = {  # "seq" (hidden) orders the rows newest first
    "fills": ["seq", "time", "symbol", "side", "qty", "price", "notional", "fee"],
    "verdicts": ["seq", "time", "symbol", "qty", "notional", "verdict", "reasons"],
    "rejected": ["seq", "time", "reason", "symbol", "detail"],
}
#: Column widths, percent of the table's width (layout "fit_columns"): every column stays
#: in view whatever the page width (a value too long for its cell ends in "..." and shows
#: in full on hover). The column not listed takes what is left: the free text of the
#: verdicts ("reasons") and rejected inputs ("detail") gets the most room.
#: The verdicts' reasons wrap onto a second line (the rest on hover, and the last rejection
#: in full above the table) rather than end in "..." after a few words.
_WRAP_REASONS = """
.tabulator-row .tabulator-cell[tabulator-field="reasons"] {
  white-space: normal; display: -webkit-inline-box; -webkit-box-orient: vertical;
  -webkit-line-clamp: 2; line-clamp: 2; overflow: hidden; vertical-align: top;
}
"""
_TABLE_WIDTHS = {
    "positions": {"symbol": "15%", "shares": "16%", "price": "16%", "value": "14%",
                  "weight_pct": "15%"},  # model signal: the rest
    # time: room for "2013-03-01 00:03:57" (a looped replay's bars are seconds apart)
    "fills": {"time": "27%", "symbol": "14%", "side": "8%", "qty": "14%", "price": "14%",
              "notional": "14%"},  # fee: the rest
    # (the verdicts table spans the page's width)
    "verdicts": {"time": "14%", "symbol": "9%", "qty": "10%", "notional": "10%",
                 "verdict": "10%"},  # reasons (wrapped): the rest
    "rejected": {"time": "25%", "reason": "20%", "symbol": "14%"},  # detail: the rest
}


# ------------------------------------------------------------------ serving security
def _is_loopback(address: str) -> bool:
    host = address.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve_tokens(argv: Sequence[str]) -> list[str]:
    """Arguments of the ``serve`` sub-command (those after ``serve``, before ``--args``)."""
    argv = [str(a) for a in argv]
    head = argv[:3]
    tokens = argv[head.index("serve") + 1:] if "serve" in head else argv[1:]
    return tokens[:tokens.index("--args")] if "--args" in tokens else tokens


def _option(tokens: Sequence[str], name: str, min_prefix: int | None = None) -> str | None:
    """Last value of ``--name VALUE`` / ``--name=VALUE``; None if absent.

    Abbreviations of at least ``min_prefix`` characters count too (argparse accepts them).
    """
    value = None
    for k, tok in enumerate(tokens):
        flag, eq, inline = tok.partition("=")
        exact = flag == name
        abbrev = (min_prefix is not None and len(flag) >= min_prefix and flag.startswith("--")
                  and name.startswith(flag))
        if not (exact or abbrev):
            continue
        if eq:
            value = inline
        elif k + 1 < len(tokens):
            value = tokens[k + 1]
        else:
            value = ""
    return value


def check_serve_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Refuse to serve the live app beyond loopback without authentication.

    Parameters
    ----------
    argv : sequence of str
        The server's command line, e.g. ``sys.argv`` of ``panel serve widgets/live_app.py
        --address 0.0.0.0`` (arguments after ``--args`` belong to the app and are ignored).
    environ : mapping, optional
        Environment (default ``os.environ``): ``PANEL_BASIC_AUTH`` and
        ``PANEL_OAUTH_PROVIDER`` configure Panel's authentication like the options do.

    Raises
    ------
    SystemExit
        With a message naming the address and the fixes, when the address is not a
        loopback address (``127.0.0.0/8``, ``::1``, ``localhost``) -- a missing
        ``--address`` counts as non-loopback, because the server then listens on every
        network interface -- and neither ``--basic-auth`` nor ``--oauth-provider`` is
        given. A ``--unix-socket`` is local and passes.

    Notes
    -----
    The app controls a trading engine (pause, speed, risk limits) and shows the book, so
    it must not be reachable from the network without a login. Abbreviated options are
    read the way argparse reads them for ``--address``; the authentication options must
    be spelled out (an abbreviation is refused, which errs on the safe side).
    """
    env = os.environ if environ is None else environ
    tokens = _serve_tokens(argv)
    if _option(tokens, "--unix-socket", min_prefix=4) is not None:
        return
    address = _option(tokens, "--address", min_prefix=5)
    if address is not None and address.strip() and _is_loopback(address):
        return
    auth = (_option(tokens, "--basic-auth") or _option(tokens, "--oauth-provider")
            or env.get("PANEL_BASIC_AUTH") or env.get("PANEL_OAUTH_PROVIDER"))
    if auth:
        return
    where = (f"--address {address}" if address and address.strip()
             else "no --address (the server would listen on every network interface)")
    raise SystemExit(
        f"live_app: refusing to serve the live trading app with {where} and no "
        "authentication: the app controls the paper-trading engine (pause, speed, risk "
        "limits) and shows the book. Serve it on loopback (--address 127.0.0.1, as "
        "`make app` does), or add --basic-auth <password or credentials file> (with "
        "--cookie-secret) or --oauth-provider <provider> (with --oauth-key, --oauth-secret, "
        "--cookie-secret)."
    )


def _command_line() -> list[str]:
    """The process's real command line, interpreter and its options dropped.

    Bokeh and Panel replace ``sys.argv`` with ``[app path, *--args]`` while an app runs,
    so ``sys.orig_argv`` is read (``python -m panel serve`` gives ``["panel", "serve",
    ...]``).
    """
    orig = list(getattr(sys, "orig_argv", None) or [])
    if len(orig) < 2:
        return list(sys.argv)
    args, k = orig[1:], 0
    while k < len(args) and args[k].startswith("-") and args[k] != "-m":
        k += 2 if args[k] in ("-X", "-W", "-Q") else 1  # options taking a value
    args = args[k:]
    if args[:1] == ["-m"] and len(args) >= 2:
        return [args[1], *args[2:]]
    return args or list(sys.argv)


def _is_serve_command(argv: Sequence[str]) -> bool:
    """True when ``argv`` is a ``panel serve`` / ``bokeh serve`` command line."""
    if len(argv) < 2 or str(argv[1]) != "serve":
        return False
    prog = str(argv[0]).replace("\\", "/")
    return (Path(prog).name in ("panel", "bokeh")
            or prog.endswith(("panel/__main__.py", "bokeh/__main__.py")))


def _serves_this_file(argv: Sequence[str]) -> bool:
    """True when ``argv`` is ``panel serve``/``bokeh serve`` naming this file (globs too)."""
    if not _is_serve_command(argv):
        return False
    here = Path(__file__).resolve()
    for tok in _serve_tokens(argv):
        paths = glob.glob(tok) if any(c in tok for c in "*?[") else [tok]
        for path in paths:
            try:
                if path.endswith(".py") and Path(path).resolve() == here:
                    return True
            except OSError:
                continue
    return False


def _refuse_insecure_serve(argv: Sequence[str] | None = None, *, served: bool = False) -> None:
    """Exit (status 2, message on stderr) if :func:`check_serve_args` refuses this serve.

    A no-op unless the process is ``panel serve``/``bokeh serve`` naming this file, or
    ``served`` (this file runs as a served app) and the process is any ``panel serve`` /
    ``bokeh serve``. Programmatic servers (``pn.serve``) are not checked. ``argv``
    defaults to the real command line (:func:`_command_line`).
    """
    argv = _command_line() if argv is None else argv
    if not (_serves_this_file(argv) or (served and _is_serve_command(argv))):
        return
    try:
        check_serve_args(argv)
    except SystemExit as exc:
        print(exc, file=sys.stderr, flush=True)
        os._exit(2)  # not SystemExit: this may run inside Panel's import or a request


#: Value of this project's ``panel.auth`` entry point (``workbench-live-guard``). It is
#: NOT a login handler: the entry point exists because Panel imports that group when
#: ``panel serve`` starts, which runs :func:`_refuse_insecure_serve` below at start-up.
SERVE_GUARD = "widgets.live_app: refuses non-loopback serving without authentication"

_refuse_insecure_serve()


# ------------------------------------------------------------------ the shared producer
_ENGINE: Any = None
_ENGINE_KW: dict[str, Any] = {}
_ENGINE_LOCK = threading.Lock()


class _History:
    """The last ``maxlen`` updates of an engine (for sessions opened later).

    A session opened later then starts with the recent past (charts and tables) instead
    of blank panels.
    """

    def __init__(self, engine: Any, maxlen: int):
        self.lock = threading.Lock()
        self.updates: collections.deque[Any] = collections.deque(maxlen=maxlen)
        self.token = engine.subscribe(self._record)

    def _record(self, update: Any) -> None:
        with self.lock:
            self.updates.append(update)


#: Recorded history per engine (see :func:`record_history`).
_HISTORIES: weakref.WeakKeyDictionary[Any, _History] = weakref.WeakKeyDictionary()


def record_history(engine: Any, maxlen: int = 2000) -> None:
    """Keep the engine's last ``maxlen`` updates for apps created later (idempotent).

    :class:`LiveApp` instances built on ``engine`` afterwards start with this history
    (charts, fills, verdicts) rather than empty panels. :func:`shared_engine` does this
    for the served app.

    Parameters
    ----------
    engine : workbench.live.LiveEngine
    maxlen : int, default 2000
        Updates kept (bounded memory).
    """
    if engine not in _HISTORIES:
        _HISTORIES[engine] = _History(engine, maxlen)


def _env_rate() -> float:
    raw = os.environ.get("WORKBENCH_LIVE_RATE", "10")
    try:
        rate = float(raw)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"WORKBENCH_LIVE_RATE must be a number of bars per second > 0, "
                         f"got {raw!r}")
    return rate


def _resolve_model(model: Any) -> Any:
    if isinstance(model, str):
        choice = model.strip().lower()
        if choice == "auto":
            choice = os.environ.get("WORKBENCH_LIVE_MODEL", "demo").strip().lower() or "demo"
            source = f"WORKBENCH_LIVE_MODEL={os.environ.get('WORKBENCH_LIVE_MODEL')!r}"
        else:
            source = f"model={model!r}"
        if choice == "macd":
            return None
        if choice == "demo":
            from workbench.live._demo import demo_ensemble

            return demo_ensemble()
        raise ValueError(f"{source}: use 'demo' (the trained demo ensemble) or 'macd' (the "
                         "MACD baseline)")
    return model


def build_engine(*, model: Any = "auto", rate: float | None = None, speed: float = 1.0,
                 start: Any = "2009-01-01", end: Any = "2013-03-01",
                 symbols: Sequence[str] | None = None,
                 warmup_bars: int = WARMUP_BARS, ledger: Any = None, resume: bool | None = None,
                 initial_cash: float = 1_000_000.0, loop: bool = True,
                 **engine_kw: Any) -> Any:
    """A (not yet started) live engine replaying the bundled daily universe.

    Parameters
    ----------
    model : "auto", "demo", "macd" or a model, default "auto"
        ``"auto"`` reads ``WORKBENCH_LIVE_MODEL`` (``demo`` unless set); ``"demo"`` the
        demo ensemble (trained once, about 10 s, then loaded from the registry);
        ``"macd"`` the MACD baseline (``LiveEngine(model=None)``); anything else is
        passed to :class:`~workbench.live.LiveEngine`.
    rate : float, optional
        Bars per second at speed 1; default ``WORKBENCH_LIVE_RATE`` or 10.
    speed : float, default 1.0
        Initial replay speed multiplier (0 = as fast as possible).
    start : str or datetime-like, default "2009-01-01"
        First paced bar; the demo ensemble is trained up to 2008-12-31, so the paced
        replay is out of sample.
    end : str or datetime-like, default "2013-03-01"
        Last replayed bar: the last day all six daily series have data (the four stocks
        end there), so no position is left at a stale price. With ``loop`` the replay
        starts over at the first warm-up bar (prices jump back, so the equity curve shows
        a jump at each loop).
    symbols : sequence of str, optional
        Subset of the universe (default all six daily series).
    warmup_bars : int, default :data:`WARMUP_BARS`
        Bars before ``start`` delivered at once (unpaced) to warm the features up; the
        charts show them as history.
    ledger : Ledger, str or None
        A :class:`~workbench.live._ledger.Ledger` or URL; None reads
        ``WORKBENCH_LIVE_LEDGER`` (default SQLite in the data directory).
    resume : bool, optional
        Continue the stored account (warm-up replays up to its cursor); default
        ``WORKBENCH_LIVE_RESUME == "1"``. Otherwise the account is reset to
        ``initial_cash``.
    initial_cash : float, default 1e6
        Paper capital of a new (or reset) account, currency.
    loop : bool, default True
        Replay the history again when it ends, with timestamps that keep increasing: the
        later cycles are time-compressed to 1 s per trading day
        (:class:`~workbench.data.feeds.ReplayFeed` ``loop_step``), so the app can run
        for years at 10 bars/s (real daily spacing would run past the year 2262, the end
        of the ns timestamp range, within about 2 hours).
    **engine_kw
        Passed to :class:`~workbench.live.LiveEngine` (e.g. ``limits``, ``target_vol``).

    Returns
    -------
    workbench.live.LiveEngine
        With limits scaled to the capital unless given: max order 25 % and max position
        50 % of the initial cash, gross 1.5, net 1.0, drawdown 0.2, stale data 30 s.

    Raises
    ------
    ValueError
        Bad environment values (the variable is named), an unknown ``model`` string, a
        ``start`` after the data or ``warmup_bars < 0``.
    """
    from workbench.data import load_universe
    from workbench.data.feeds import ReplayFeed
    from workbench.live._engine import LiveEngine
    from workbench.live._ledger import Ledger
    from workbench.risk import RiskLimits

    if isinstance(warmup_bars, bool) or not isinstance(warmup_bars, int) or warmup_bars < 0:
        raise ValueError(f"warmup_bars must be an int >= 0, got {warmup_bars!r}")
    rate = _env_rate() if rate is None else rate
    model = _resolve_model(model)
    if resume is None:
        resume = os.environ.get("WORKBENCH_LIVE_RESUME", "0") == "1"
    if ledger is None or isinstance(ledger, (str, os.PathLike)):
        ledger = Ledger(ledger if ledger is not None else os.environ.get("WORKBENCH_LIVE_LEDGER"),
                        initial_cash=initial_cash)
    if not resume:
        ledger.reset()

    bars = load_universe("daily", end=end)
    if symbols is not None:
        bars = bars.select(tuple(symbols))
    bars = bars.loc(None, None)  # drops timestamps where no selected symbol has a bar
    first = pd.Timestamp(start)
    first = first.tz_localize("UTC") if first.tz is None else first.tz_convert("UTC")
    i0 = int(bars.index.searchsorted(first))
    if i0 >= bars.T:
        raise ValueError(f"start={start!r} is after the last bar ({bars.index[-1].date()})")
    pre = max(0, i0 - warmup_bars)
    feed = ReplayFeed(bars, start=bars.index[pre], rate=rate, speed=speed, loop=loop)
    skip = int(bars.index[i0 - 1].value) if i0 > pre else None
    cursor = ledger.cursor() if resume else None
    if cursor is not None:
        skip = max(skip or cursor, cursor)
    if skip is not None:
        feed.skip_until(skip, warmup=True)
    cash = float(ledger.initial_cash)
    limits = engine_kw.pop("limits", None) or RiskLimits(
        max_order_notional=0.25 * cash, max_position_notional=0.5 * cash,
        max_gross_exposure=1.5, max_net_exposure=1.0, max_drawdown=0.2, stale_after_s=30.0)
    return LiveEngine(feed, model, ledger=ledger, limits=limits, **engine_kw)


def shared_engine(**kw: Any) -> Any:
    """The process's one live engine, built by :func:`build_engine` and started once.

    Every Panel session of the served app subscribes to this engine (one producer
    fanned out to all sessions); it keeps running when sessions close.

    Parameters
    ----------
    **kw
        Passed to :func:`build_engine` by the first call; later calls return the running
        engine and ignore them (a warning is logged when they differ).

    Returns
    -------
    workbench.live.LiveEngine
        Started (its producer thread runs); also kept in
        ``pn.state.cache["workbench.live.engine"]``.
    """
    global _ENGINE, _ENGINE_KW
    with _ENGINE_LOCK:
        if _ENGINE is None:
            engine = build_engine(**kw)
            record_history(engine)
            engine.start()
            _ENGINE, _ENGINE_KW = engine, dict(kw)
            pn.state.cache["workbench.live.engine"] = engine
        elif kw and kw != _ENGINE_KW:
            _log.warning("shared_engine: already running; ignoring new arguments %s", kw)
        return _ENGINE


# ------------------------------------------------------------------ formatting helpers
def _when(ts: int | None) -> str:
    if ts is None:
        return ""
    t = pd.Timestamp(int(ts), unit="ns", tz="UTC")
    if t.hour == t.minute == t.second == 0 and t.nanosecond == 0 and t.microsecond == 0:
        return t.strftime("%Y-%m-%d")
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _finite(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _esc(text: Any) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 10px 2px 0'>{_esc(h)}</th>"
                   for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px 2px 0'>{c}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table style='font-size:90%;border-collapse:collapse'><tr>{head}</tr>{body}</table>"


# ------------------------------------------------------------------ the app
class LiveApp:
    """Panel view of a :class:`~workbench.live.LiveEngine`, pushed at a fixed rate.

    The engine calls the subscriber on its producer thread; the subscriber only appends
    the :class:`~workbench.live.EngineUpdate` to a bounded thread-safe deque. A periodic
    callback (``rate_hz``) drains the deque and applies every pending update in ONE
    ``pn.io.hold()`` block, so the browser gets at most ``rate_hz`` batched pushes per
    second whatever the feed rate: Bokeh ``ColumnDataSource.stream(rollover=...)`` for
    the price, position, equity and drawdown series, ``Tabulator.patch`` for the
    positions table, ``Tabulator.stream(rollover=...)`` for fills, pre-trade verdicts and
    rejected inputs, and ``pn.indicators.Number`` for the figures.

    Parameters
    ----------
    engine : workbench.live.LiveEngine, optional
        Default :func:`shared_engine` (built and started on first use).
    rate_hz : float, default 15
        UI pushes per second at most, in (0, 60].
    rollover : int, default 500
        Points kept per chart series (>= 10).
    table_rows : int, default 200
        Rows kept in the fills, verdicts and rejected-input tables (>= 10).
    max_pending : int, optional
        Updates queued between two pushes before the oldest are dropped (counted in
        :attr:`dropped_updates`); default ``2 * rollover``.
    latency_every_s : float, default 0.5
        Minimum seconds between two ``engine.latency_percentiles()`` calls (not free).
    table_every_s : float, default 0.25
        Minimum seconds between two streams into the fills, verdicts and rejected-input
        tables (rows wait in between; the browser re-sorts a streamed table, so tables
        refresh at most 4 times a second while charts and figures refresh at
        ``rate_hz``).

    Attributes
    ----------
    rendered_updates : int
        UI pushes that carried at least one engine update.
    applied_updates : int
        Engine updates applied (one push may carry many).
    dropped_updates : int
        Updates dropped because more than ``max_pending`` queued up.
    last_push_ts : float or None
        Wall-clock time (``time.time()``, seconds) of the last push.
    push_lags_ms : collections.deque
        For recent updates: milliseconds from their arrival (producer thread) to the
        push that applied them (last 2000).
    sources : dict of str to bokeh.models.ColumnDataSource
        ``"prices"`` (rebased to 100 at the first bar seen), ``"weights"`` (position
        value, % of equity), ``"equity"`` (equity and drawdown in %); columns ``t`` (ms
        since the epoch) and one per symbol ``s0, s1, ...`` in engine symbol order.
    tables : dict of str to panel.widgets.Tabulator
        ``"positions"``, ``"fills"``, ``"verdicts"``, ``"rejected"``.
    indicators : dict of str to panel.indicators.Number
        ``"equity", "pnl", "var_95", "cvar_95", "gross", "net", "drawdown",
        "latency_p99"``.
    limit_inputs : dict of str to panel.widgets.FloatInput
        One per editable :class:`~workbench.risk.RiskLimits` field.

    Raises
    ------
    ValueError
        On a bad ``rate_hz``, ``rollover``, ``table_rows``, ``max_pending`` or
        ``latency_every_s``.

    Notes
    -----
    Clean-up: in a served session, :meth:`close` runs when the session is destroyed
    (``pn.state.on_session_destroyed``): it unsubscribes from the engine and stops the
    periodic callback. The engine keeps running for the other sessions. The start/pause
    button, speed slider and risk limits act on the shared engine, so every session sees
    the change. "Symbols shown" (and a click on a chart legend's entry, which updates it)
    only chooses the lines this session draws in the price and position charts; the
    engine, the tables and the figures keep every symbol.
    """

    def __init__(self, engine: Any = None, *, rate_hz: float = 15, rollover: int = 500,
                 table_rows: int = 200, max_pending: int | None = None,
                 latency_every_s: float = 0.5, table_every_s: float = 0.25):
        if not (isinstance(rate_hz, (int, float)) and 0 < rate_hz <= 60):
            raise ValueError(f"LiveApp: rate_hz must be a number in (0, 60], got {rate_hz!r}")
        for name, value in (("rollover", rollover), ("table_rows", table_rows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 10:
                raise ValueError(f"LiveApp: {name} must be an int >= 10, got {value!r}")
        if max_pending is None:
            max_pending = 2 * rollover
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"LiveApp: max_pending must be an int >= 1, got {max_pending!r}")
        for name, seconds in (("latency_every_s", latency_every_s),
                              ("table_every_s", table_every_s)):
            if isinstance(seconds, bool) or not (isinstance(seconds, (int, float))
                                                 and seconds >= 0):
                raise ValueError(f"LiveApp: {name} must be a number >= 0, got {seconds!r}")
        self.engine = engine if engine is not None else shared_engine()
        self.rate_hz = float(rate_hz)
        self.rollover = rollover
        self.table_rows = table_rows
        self.max_pending = max_pending
        self.latency_every_s = float(latency_every_s)
        self.table_every_s = float(table_every_s)
        self.symbols: tuple[str, ...] = tuple(self.engine.symbols)
        self.max_chart_rows_per_push = rollover
        self.max_table_rows_per_push = min(table_rows, 100)

        self.rendered_updates = 0
        self.applied_updates = 0
        self.dropped_updates = 0
        self.last_push_ts: float | None = None
        self.push_lags_ms: collections.deque[float] = collections.deque(maxlen=2000)
        self._pending: collections.deque[tuple[float, Any]] = collections.deque()
        self._pending_lock = threading.Lock()
        self._closed = False
        self._callback: Any = None
        self._layout: Any = None
        self._served = False
        self._lat_at = -math.inf
        self._tables_at = -math.inf
        self._table_buf: dict[str, collections.deque[dict[str, Any]]] = {}
        self._last_rejection: dict[str, Any] | None = None
        self._base: dict[str, float] = {}
        self._signal: dict[str, float] = {}
        self._pos_rows: list[dict[str, Any]] = []
        self._last_ts: int | None = None
        self._shown: dict[str, Any] = {}
        self._limits_seen: Any = None
        self._approved = 0
        self._rejected = 0
        self._syncing_lines = False
        self._build()
        history = _HISTORIES.get(self.engine)
        if history is None:
            self._token = self.engine.subscribe(self._on_update)
        else:  # seed with the recent past; subscribing under the lock avoids duplicates
            with history.lock:
                now = time.perf_counter()
                self._pending.extend((now, u) for u in
                                     list(history.updates)[-self.max_pending:])
                self._token = self.engine.subscribe(self._on_update)

    # -- producer side (engine thread) --------------------------------------------
    def _on_update(self, update: Any) -> None:
        """Engine subscriber: queue the update (never touches Bokeh or Panel)."""
        with self._pending_lock:
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self.dropped_updates += 1
            self._pending.append((time.perf_counter(), update))

    @property
    def pending(self) -> int:
        """Updates queued for the next push."""
        return len(self._pending)

    # -- building ---------------------------------------------------------------
    def _build(self) -> None:
        syms = self.symbols
        cols = [f"s{j}" for j in range(len(syms))]
        empty = {"t": np.empty(0), **{c: np.empty(0) for c in cols}}
        self.sources = {
            "prices": ColumnDataSource(dict(empty), name="wb-live-prices"),
            "weights": ColumnDataSource(dict(empty), name="wb-live-weights"),
            "equity": ColumnDataSource({"t": np.empty(0), "equity": np.empty(0),
                                        "drawdown": np.empty(0)}, name="wb-live-equity"),
        }
        colors = [Category10_10[j % 10] for j in range(len(syms))]
        tools = "pan,xwheel_zoom,box_zoom,reset,save"
        self._lines: dict[str, list[Any]] = {s: [] for s in syms}
        fp = figure(height=270, sizing_mode="stretch_width", x_axis_type="datetime",
                    title=PRICES_TITLE, tools=tools,
                    name="wb-live-prices-figure")
        fw = figure(height=270, sizing_mode="stretch_width", x_axis_type="datetime",
                    x_range=fp.x_range, title="Positions (value, % of equity)", tools=tools,
                    name="wb-live-weights-figure")
        fw.add_layout(Span(location=0, dimension="width", line_color="#888",
                           line_width=1))
        items: dict[str, list[LegendItem]] = {"prices": [], "weights": []}
        for s, c, col in zip(syms, colors, cols):
            for key, f in (("prices", fp), ("weights", fw)):
                r = f.line("t", col, source=self.sources[key], color=c, line_width=1.6,
                           name=f"wb-live-{key}-line-{s}")
                self._lines[s].append(r)
                items[key].append(LegendItem(label=s, renderers=[cast(Any, r)]))
                # a legend click hides the line in the browser; the symbol picker follows
                r.on_change("visible", self._line_toggled)
        # legends beside the plot area, never over the lines; a click on an entry hides the
        # symbol in both charts (and removes it from "Symbols shown")
        per_col = max(1, (270 - 60) // 19)  # entries that fit the chart's height
        style: dict[str, Any] = {"location": "top_left", "click_policy": "hide",
                                 "label_text_font_size": "8pt", "glyph_width": 16,
                                 "spacing": 1, "padding": 4, "margin": 4,
                                 "border_line_alpha": 0,
                                 "ncols": math.ceil(len(syms) / per_col) if syms else 1}
        for key, f in (("prices", fp), ("weights", fw)):
            f.add_layout(Legend(items=items[key], name=f"wb-live-{key}-legend", **style),
                         "right")
        fe = figure(height=200, sizing_mode="stretch_width", x_axis_type="datetime",
                    x_range=fp.x_range, title="Equity", tools=tools,
                    name="wb-live-equity-figure")
        fe.line("t", "equity", source=self.sources["equity"], color="#1f77b4", line_width=2)
        fe.yaxis.formatter = NumeralTickFormatter(format="0,0")
        fd = figure(height=200, sizing_mode="stretch_width", x_axis_type="datetime",
                    x_range=fp.x_range, title="Drawdown (%)", tools=tools,
                    name="wb-live-drawdown-figure")
        fd.varea("t", y1=0, y2="drawdown", source=self.sources["equity"], color="#d62728",
                 alpha=0.35)
        fd.line("t", "drawdown", source=self.sources["equity"], color="#d62728")
        self.figures = {"prices": fp, "weights": fw, "equity": fe, "drawdown": fd}
        self._bokeh_panes = {k: pn.pane.Bokeh(f, sizing_mode="stretch_width")
                             for k, f in self.figures.items()}

        num = {"font_size": "20pt", "title_size": "10pt", "width": 135, "nan_format": "-"}
        red, green, amber = "#d62728", "#2ca02c", "#ff7f0e"
        self.indicators = {
            "equity": pn.indicators.Number(label="Equity", format="{value:,.0f}", **num),
            "pnl": pn.indicators.Number(label="PnL", format="{value:+,.0f}",
                                        colors=[(-1e-9, red), (math.inf, green)], **num),
            "var_95": pn.indicators.Number(label="VaR 95 (1 bar)", format="{value:.2f}%",
                                           **num),
            "cvar_95": pn.indicators.Number(label="CVaR 95 (1 bar)", format="{value:.2f}%",
                                            **num),
            "gross": pn.indicators.Number(label="Gross exposure", format="{value:.2f}x",
                                          **num),
            "net": pn.indicators.Number(label="Net exposure", format="{value:+.2f}x", **num),
            "drawdown": pn.indicators.Number(label="Drawdown", format="{value:.1f}%",
                                             colors=[(5, "currentcolor"), (10, amber),
                                                     (math.inf, red)], **num),
            "latency_p99": pn.indicators.Number(label="Latency p99", format="{value:.2f} ms",
                                                **num),
        }
        for key, ind in self.indicators.items():
            ind.value = None
            ind.css_classes = [f"wb-ind-{key}"]

        self._pos_rows = [{"shares": 0.0, "price": math.nan, "value": 0.0,
                           "weight_pct": 0.0, "signal": math.nan} for _ in syms]
        pos = self._positions_frame()
        money = {"type": "money", "thousand": ",", "precision": 0}
        money2 = {"type": "money", "thousand": ",", "precision": 2}
        # every column within the table's width (see _TABLE_WIDTHS), a cut value in full on
        # hover; no sort buttons in the headers (they take room from the titles, and the
        # streamed tables are kept newest first)
        tab = {"disabled": True, "show_index": False, "sizing_mode": "stretch_width",
               "layout": "fit_columns", "header_filters": False,
               "configuration": {"columnDefaults": {"tooltip": True, "headerTooltip": True,
                                                    "headerSort": False}}}
        # newest first: the browser sorts by the hidden "seq" (rows are streamed, and rolled
        # over, in arrival order)
        log = {**tab, "hidden_columns": ["seq"], "sorters": [{"field": "seq", "dir": "desc"}]}
        self._seq = 0
        self.tables = {
            "positions": pn.widgets.Tabulator(
                pos, height=215, css_classes=["wb-positions"],
                widths=_TABLE_WIDTHS["positions"],
                titles={"weight_pct": "weight %", "signal": "model signal"},
                formatters={"shares": money2, "price": money2, "value": money,
                            "weight_pct": {"type": "money", "precision": 1},
                            "signal": {"type": "money", "precision": 2}}, **tab),
            "fills": pn.widgets.Tabulator(
                self._empty("fills"), height=260, css_classes=["wb-fills"],
                widths=_TABLE_WIDTHS["fills"],
                formatters={"qty": money2, "price": money2, "notional": money, "fee": money2},
                **log),
            "verdicts": pn.widgets.Tabulator(
                self._empty("verdicts"), height=260, css_classes=["wb-verdicts"],
                widths=_TABLE_WIDTHS["verdicts"],
                formatters={"qty": money2, "notional": money},
                stylesheets=[_WRAP_REASONS], **log),
            "rejected": pn.widgets.Tabulator(
                self._empty("rejected"), height=200, css_classes=["wb-rejected"],
                widths=_TABLE_WIDTHS["rejected"], **log),
        }

        self.status = pn.pane.Markdown("starting ...", css_classes=["wb-status"],
                                       sizing_mode="stretch_width", margin=(0, 10))
        self.stats = pn.pane.Markdown("", css_classes=["wb-stats"], margin=(0, 10),
                                      styles={"font-size": "85%", "color": "#666"})
        # the server's wall clock (time.time(), s) at the latest push, as bare text: a
        # browser can measure push rate and server-to-browser lag from its changes
        self.push_clock = pn.widgets.StaticText(value="", css_classes=["wb-push-clock"],
                                                visible=False)
        self.risk_summary = pn.pane.Markdown("no orders checked yet",
                                             css_classes=["wb-risk-summary"], margin=(0, 10))
        self.rejected_counts = pn.pane.Markdown("no bad input so far",
                                                css_classes=["wb-rejected-counts"],
                                                margin=(0, 10))
        self.health = pn.pane.HTML("waiting for the model's first call",
                                   css_classes=["wb-health"], margin=(0, 10))
        self.latency = pn.pane.HTML("no batch processed yet", css_classes=["wb-latency"],
                                    margin=(0, 10))

        self.run_button = pn.widgets.Button(label=self._button_label(), color="primary",
                                            css_classes=["wb-run"], width=250)
        self.run_button.on_click(self._toggle_run)
        feed = self.engine.feed
        adjustable = hasattr(feed, "speed") and getattr(feed, "speed_adjustable", False)
        speeds = dict(_SPEEDS)
        current = float(getattr(feed, "speed", 1.0)) if adjustable else 1.0
        current = 0.0 if math.isinf(current) else current
        if current not in speeds.values():
            speeds[f"{current:g}x"] = current
        self.speed = pn.widgets.DiscreteSlider(label="Replay speed", options=speeds,
                                               value=current, disabled=not adjustable,
                                               width=250, css_classes=["wb-speed"])
        self.speed.param.watch(self._set_speed, "value")
        self.symbol_choice = pn.widgets.MultiChoice(label="Symbols shown", options=list(syms),
                                                    value=list(syms), width=250,
                                                    css_classes=["wb-symbols"])
        self.symbol_choice.param.watch(self._show_symbols, "value")
        limits = self.engine.limits
        self._limits_seen = limits
        self.limit_inputs = {}
        for field, label, step in _LIMIT_FIELDS:
            w = pn.widgets.FloatInput(label=label, value=float(getattr(limits, field)),
                                      step=step, start=0.0, width=250,
                                      css_classes=[f"wb-limit-{field}"])
            w.param.watch(lambda ev, f=field: self._set_limit(f, ev), "value")
            self.limit_inputs[field] = w
        self.limit_message = pn.pane.Markdown("", css_classes=["wb-limit-message"],
                                              margin=(0, 10), styles={"color": "#d62728"})
        self._setting_limits = False

    def _empty(self, kind: str) -> pd.DataFrame:
        cols = _TABLE_COLUMNS[kind]
        numeric = {"qty", "price", "notional", "fee"}
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "seq" else
                                          float if c in numeric else object)
                             for c in cols})

    def _positions_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"symbol": s, **row} for s, row in
                             zip(self.symbols, self._pos_rows)],
                            columns=["symbol", "shares", "price", "value", "weight_pct",
                                     "signal"])

    def panel(self) -> pn.viewable.Viewable:
        """The app's layout; starts the periodic push (once).

        Returns
        -------
        panel.layout.Column
            Controls on the left; indicators, charts, tables, risk checks, model health
            and latency on the right. Calling it again returns the same layout.
        """
        if self._layout is not None:
            return self._layout
        controls = pn.Column(
            pn.pane.Markdown("#### Engine"), self.run_button, self.speed, self.symbol_choice,
            pn.pane.Markdown("#### Risk limits"), *self.limit_inputs.values(),
            self.limit_message, self.stats, self.push_clock, width=290)
        indicators = pn.FlexBox(*self.indicators.values(), sizing_mode="stretch_width")

        def section(title: str, *objs: Any) -> pn.Column:
            return pn.Column(pn.pane.Markdown(f"#### {title}", margin=(0, 10)), *objs,
                             sizing_mode="stretch_width")

        main = pn.Column(
            indicators,
            pn.Row(self._bokeh_panes["prices"], self._bokeh_panes["weights"],
                   sizing_mode="stretch_width"),
            pn.Row(self._bokeh_panes["equity"], self._bokeh_panes["drawdown"],
                   sizing_mode="stretch_width"),
            pn.Row(section("Positions", self.tables["positions"]),
                   section("Fills", self.tables["fills"]), sizing_mode="stretch_width"),
            # the full width: the reasons of a rejection stay readable
            section("Risk checks (pre-trade verdicts)", self.risk_summary,
                    self.tables["verdicts"]),
            pn.Row(section("Rejected inputs", self.rejected_counts, self.tables["rejected"]),
                   pn.Column(section("Model health", self.health),
                             section("Latency per stage (ms)", self.latency),
                             sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(pn.pane.Markdown("## Live trading", margin=(0, 10)), self.status,
                   sizing_mode="stretch_width"),
            pn.Row(controls, main, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        doc = pn.state.curdoc
        self._served = doc is not None and doc.session_context is not None
        self.drain()  # what is queued now goes out with the page itself
        # a Tabulator patched before it has a model renders its original rows: resync
        self.tables["positions"].value = self._positions_frame()
        if self._served:
            pn.state.on_session_destroyed(self._session_destroyed)
        # pushing before the browser has built the tables loses their rows (Tabulator
        # "table not initialized"), so the periodic push starts once the page is loaded
        # (at once where there is no page: tests, scripts)
        pn.state.onload(self._start_push)
        return self._layout

    def _start_push(self) -> None:
        if self._closed or self._callback is not None:
            return
        self._callback = pn.state.add_periodic_callback(
            self._tick, period=max(1, int(round(1000.0 / self.rate_hz))))

    def _tick(self) -> None:
        """Periodic-callback entry point (Panel wants a callable returning None)."""
        self.drain()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()

    def servable(self, title: str = "Live trading") -> pn.viewable.Viewable:
        """Mark the layout servable (``panel serve``) with a page title.

        Parameters
        ----------
        title : str, default "Live trading"

        Returns
        -------
        panel.viewable.Viewable
        """
        return self.panel().servable(title=title)

    # -- clean-up -------------------------------------------------------------------
    def _session_destroyed(self, session_context: Any) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe from the engine and stop the periodic push (idempotent).

        The engine keeps running (other sessions may use it).
        """
        if self._closed:
            return
        self._closed = True
        self.engine.unsubscribe(self._token)
        if self._callback is not None:
            try:
                self._callback.stop()
            except Exception:  # noqa: BLE001 - the session's loop may be gone already
                _log.debug("periodic callback stop failed", exc_info=True)
            self._callback = None
        with self._pending_lock:
            self._pending.clear()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    # -- controls -------------------------------------------------------------------
    def _button_label(self) -> str:
        eng = self.engine
        if not eng.running:
            return "Start"
        return "Resume" if getattr(eng.feed, "paused", False) else "Pause"

    def _toggle_run(self, event: Any = None) -> None:
        eng = self.engine
        if not eng.running:
            try:
                eng.start()
            except Exception as exc:  # noqa: BLE001 - e.g. a stopped feed cannot restart
                self.status.object = f"**cannot start:** {_esc(exc)}"
        elif getattr(eng.feed, "paused", False):
            eng.resume()
        elif hasattr(eng.feed, "pause"):
            eng.pause()
        self.run_button.label = self._button_label()
        self._update_status()

    def _set_speed(self, event: Any) -> None:
        try:
            self.engine.feed.speed = float(event.new)
        except (AttributeError, ValueError) as exc:
            self.limit_message.object = f"speed: {_esc(exc)}"

    def _show_symbols(self, event: Any) -> None:
        shown = set(event.new)
        self._syncing_lines = True
        try:
            for s, renderers in self._lines.items():
                for r in renderers:
                    if r.visible != (s in shown):
                        r.visible = s in shown
        finally:
            self._syncing_lines = False

    def _line_toggled(self, attr: str, old: Any, new: Any) -> None:
        """A line was hidden or shown from a legend: update "Symbols shown" to match.

        The symbol is then hidden (or shown) in both charts, through :meth:`_show_symbols`.
        """
        if self._syncing_lines:
            return
        toggled = [s for s, renderers in self._lines.items()
                   if any(r.visible != (s in self.symbol_choice.value) for r in renderers)]
        if not toggled:
            return
        value = [s for s in self.symbol_choice.value if s not in toggled]
        self.symbol_choice.value = value + [s for s in toggled
                                            if s not in self.symbol_choice.value]

    def _set_limit(self, field: str, event: Any) -> None:
        if self._setting_limits:
            return
        value = event.new
        try:
            if value is None:
                raise ValueError(f"RiskLimits.{field} needs a value")
            new = self.engine.limits.replace(**{field: float(value)})
            self.engine.set_limits(new)
        except ValueError as exc:
            self.limit_message.object = f"not applied: {_esc(exc)}"
            self._setting_limits = True
            try:
                self.limit_inputs[field].value = float(getattr(self.engine.limits, field))
            finally:
                self._setting_limits = False
            return
        self._limits_seen = new
        self.limit_message.object = ""

    def _sync_limits(self) -> None:
        """Show limits changed elsewhere (another session, a notebook cell)."""
        limits = self.engine.limits
        if limits is self._limits_seen:
            return
        self._limits_seen = limits
        self._setting_limits = True
        try:
            for field, w in self.limit_inputs.items():
                v = float(getattr(limits, field))
                if w.value != v:
                    w.value = v
        finally:
            self._setting_limits = False

    def _sync_speed(self) -> None:
        """Show a speed set elsewhere (another session, ``feed.speed = ...`` in a cell)."""
        speed = getattr(self.engine.feed, "speed", None)
        if speed is None or self.speed.disabled:
            return
        speed = 0.0 if math.isinf(speed) else float(speed)
        if speed != self.speed.value and speed in self.speed.values:
            self.speed.value = speed

    # -- the push ---------------------------------------------------------------------
    def drain(self) -> int:
        """Apply every queued engine update in one ``pn.io.hold()`` block.

        This is the periodic callback (called ``rate_hz`` times a second by
        :meth:`panel`); call it directly in tests.

        Returns
        -------
        int
            Number of engine updates applied (0 when nothing was queued or the app is
            closed).
        """
        if self._closed:
            return 0
        with self._pending_lock:
            items = list(self._pending)
            self._pending.clear()
        with pn.io.hold():  # everything below reaches the browser as one message
            if items:
                self._apply(items)
                now = time.perf_counter()
                self.push_lags_ms.extend((now - t) * 1e3 for t, _ in items)
                self.rendered_updates += 1
                self.applied_updates += len(items)
                self.last_push_ts = time.time()
                self.push_clock.value = f"{self.last_push_ts:.6f}"
                self.stats.object = (f"UI pushes {self.rendered_updates:,} · updates "
                                     f"{self.applied_updates:,} · dropped "
                                     f"{self.dropped_updates:,}")
            if any(self._table_buf.values()):
                self._flush_tables()
            self._update_status()
            if self.run_button.label != (label := self._button_label()):
                self.run_button.label = label
            self._sync_limits()
            self._sync_speed()
        if items and not self._served:  # notebook: raw Bokeh edits need an explicit push
            pn.io.push_notebook(*self._bokeh_panes.values())
        return len(items)

    def _apply(self, items: list[tuple[float, Any]]) -> None:
        ups = [u for _, u in items if not getattr(u, "warmup", False)]
        if not ups:
            return
        states = [u for u in ups if u.bars and u.state is not None]
        if states:
            if len(self._base) < len(self.symbols):  # rebase on the first bar ever seen
                for u in states:
                    for b in u.bars:
                        self._base.setdefault(b.symbol, b.close)
            self._stream_series(states[-self.max_chart_rows_per_push:])
            last = states[-1]
            self._last_ts = last.ts
            for u in states:
                self._signal.update(u.positions)
            self._apply_state(last.state)
            now = time.monotonic()
            if now - self._lat_at >= self.latency_every_s:
                self._lat_at = now
                self._apply_latency(self.engine.latency_percentiles())
        self._stream_tables(ups)

    def _stream_series(self, ups: list[Any]) -> None:
        n, syms = len(ups), self.symbols
        t = np.fromiter((u.ts / 1e6 for u in ups), dtype=float, count=n)
        prices = np.full((len(syms), n), np.nan)
        weights = np.full((len(syms), n), np.nan)
        equity = np.empty(n)
        dd = np.empty(n)
        index = {s: j for j, s in enumerate(syms)}
        for i, u in enumerate(ups):
            st = u.state
            eq = _finite(st.equity)
            equity[i] = eq
            dd[i] = -100.0 * _finite(st.drawdown)
            for b in u.bars:
                j = index.get(b.symbol)
                if j is None:
                    continue
                base = self._base.setdefault(b.symbol, b.close)
                prices[j, i] = 100.0 * b.close / base
            for s, j in index.items():
                q = st.positions.get(s, 0.0)
                p = st.prices.get(s)
                if p is not None and eq > 0:
                    weights[j, i] = 100.0 * q * p / eq
        cols = {f"s{j}": prices[j] for j in range(len(syms))}
        self.sources["prices"].stream({"t": t, **cols}, rollover=self.rollover)
        self.sources["weights"].stream({"t": t, **{f"s{j}": weights[j]
                                                   for j in range(len(syms))}},
                                       rollover=self.rollover)
        self.sources["equity"].stream({"t": t, "equity": equity, "drawdown": dd},
                                      rollover=self.rollover)

    def _set_indicator(self, key: str, value: float) -> None:
        v = None if not math.isfinite(value) else float(value)
        ind = self.indicators[key]
        if ind.value != v and not (ind.value is None and v is None):
            ind.value = v

    def _apply_state(self, st: Any) -> None:
        self._set_indicator("equity", _finite(st.equity))
        self._set_indicator("pnl", _finite(st.pnl))
        self._set_indicator("var_95", 100.0 * _finite(st.var_95))
        self._set_indicator("cvar_95", 100.0 * _finite(st.cvar_95))
        self._set_indicator("gross", _finite(st.gross_exposure))
        self._set_indicator("net", _finite(st.net_exposure))
        self._set_indicator("drawdown", 100.0 * _finite(st.drawdown))
        # positions table: patch the cells that changed
        eq = _finite(st.equity)
        patch: dict[str, list[tuple[int, Any]]] = {}
        for i, s in enumerate(self.symbols):
            q = float(st.positions.get(s, 0.0))
            p = _finite(st.prices.get(s))
            value = q * p if math.isfinite(p) else 0.0
            row = {"shares": q, "price": p, "value": value,
                   "weight_pct": 100.0 * value / eq if eq > 0 else math.nan,
                   "signal": _finite(self._signal.get(s))}
            old = self._pos_rows[i]
            for k, v in row.items():
                o = old[k]
                same = (o == v) or (isinstance(o, float) and isinstance(v, float)
                                    and math.isnan(o) and math.isnan(v))
                if not same:
                    patch.setdefault(k, []).append((i, v))
                    old[k] = v
        if patch:
            self.tables["positions"].patch(patch)
        health = dict(st.model_health or {})
        if health != self._shown.get("health"):
            self._shown["health"] = health
            self.health.object = self._health_html(health)

    @staticmethod
    def _health_html(health: Mapping[str, Any]) -> str:
        state = health.get("state", "unknown")
        color = {"ok": "#2ca02c", "degraded": "#ff7f0e", "error": "#d62728"}.get(state, "#666")
        rows = []
        for name, h in health.items():
            if not isinstance(h, Mapping):
                continue
            active = h.get("active")
            mark = ("<span style='color:#2ca02c'>active</span>" if active else
                    "<span style='color:#d62728'>excluded</span>")
            rows.append([_esc(name), mark, _esc(h.get("failures", 0)),
                         _esc(h.get("last_error") or "")])
        calls = health.get("calls")
        head = (f"<div>ensemble state: <b style='color:{color}'>{_esc(state)}</b>"
                + (f" &middot; {int(calls):,} calls" if isinstance(calls, int) else "")
                + "</div>")
        return head + _html_table(["member", "status", "failures", "last error"], rows)

    def _apply_latency(self, lat: Mapping[str, Mapping[str, float]]) -> None:
        from workbench.live._engine import STAGES

        e2e = lat.get("end_to_end", {}).get("p99", math.nan)
        self._set_indicator("latency_p99", _finite(e2e))
        rows = [[_esc(s), f"{lat[s]['p50']:.3f}", f"{lat[s]['p99']:.3f}"]
                for s in STAGES if s in lat]
        self.latency.object = _html_table(["stage", "p50", "p99"], rows)

    def _stream_tables(self, ups: list[Any]) -> None:
        """Queue the updates' fills, verdicts and rejected inputs as table rows."""
        k = self.max_table_rows_per_push
        buf = self._table_buf
        for key in _TABLE_COLUMNS:
            buf.setdefault(key, collections.deque(maxlen=k))
        for u in ups:
            when = _when(u.ts)
            for f in u.fills:
                buf["fills"].append({
                    "seq": self._next_seq(), "time": _when(f.ts), "symbol": f.symbol,
                    "side": "buy" if f.qty > 0 else "sell", "qty": float(f.qty),
                    "price": float(f.price), "notional": abs(f.qty * f.price),
                    "fee": float(f.fee)})
            for v in u.verdicts:
                o = v.order
                row = {"seq": self._next_seq(), "time": when, "symbol": o.symbol,
                       "qty": float(o.qty), "notional": abs(o.qty * o.ref_price),
                       "verdict": "approved" if v.approved else "REJECTED",
                       "reasons": "; ".join(v.reasons)}
                if v.approved:
                    self._approved += 1
                else:
                    self._rejected += 1
                    self._last_rejection = row
                buf["verdicts"].append(row)
            for r in u.rejected_inputs:
                buf["rejected"].append({
                    "seq": self._next_seq(), "time": _when(r.get("ts")) or when,
                    "reason": str(r.get("reason", "")), "symbol": str(r.get("symbol", "")),
                    "detail": str(r.get("detail", ""))[:200]})

    def _flush_tables(self, force: bool = False) -> None:
        """Stream the queued rows (at most every ``table_every_s`` unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._tables_at < self.table_every_s:
            return
        self._tables_at = now
        for key, rows in self._table_buf.items():
            if rows:
                frame = pd.DataFrame(list(rows), columns=_TABLE_COLUMNS[key])
                rows.clear()
                self.tables[key].stream(frame, rollover=self.table_rows, follow=False)
                if key == "verdicts":
                    text = (f"**{self._approved:,}** approved · **{self._rejected:,}** "
                            "rejected (this view)")
                    last = self._last_rejection
                    if last is not None:
                        text += (f"  \nlast rejection ({last['time']}): {last['symbol']}: "
                                 f"{last['reasons']}")
                    self.risk_summary.object = text
                elif key == "rejected":
                    counts = self._validator_counts()
                    self.rejected_counts.object = " · ".join(
                        f"{k}: **{v}**" for k, v in sorted(counts.items())) or "no bad input"

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _validator_counts(self) -> dict[str, int]:
        counts = getattr(getattr(self.engine, "validator", None), "counts", {})
        for _ in range(3):  # the producer may add a key while we copy
            try:
                return {str(k): int(v) for k, v in dict(counts).items()}
            except RuntimeError:
                continue
        return {}

    def _update_status(self) -> None:
        eng = self.engine
        feed = eng.feed
        if eng.error:
            state = f"<b style='color:#d62728'>stopped: {_esc(eng.error)}</b>"
        elif not eng.running:
            state = "<b>idle</b> (producer thread not running)"
        elif getattr(feed, "paused", False):
            state = "<b style='color:#ff7f0e'>paused</b>"
        else:
            state = "<b style='color:#2ca02c'>running</b>"
        parts = [state]
        if self._last_ts is not None:
            parts.append(f"bar {_when(self._last_ts)}")
        parts.append(f"{eng.n_batches:,} batches")
        speed = getattr(feed, "speed", None)
        if speed is not None:
            parts.append("speed max" if speed in (0, math.inf) else f"speed {speed:g}x")
        views = eng.n_subscribers - (1 if self.engine in _HISTORIES else 0)
        parts.append(f"{views} view(s)")
        feed_error = getattr(feed, "error", None)
        if feed_error is not None:
            parts.append(f"<span style='color:#d62728'>feed: {_esc(feed_error)}</span>")
        text = " · ".join(parts)
        if text != self._shown.get("status"):
            self._shown["status"] = text
            self.status.object = text


# ------------------------------------------------------------------ served entry point
if __name__.startswith("bokeh"):
    _refuse_insecure_serve(served=True)  # e.g. served through a glob or without the hook
    pn.extension("tabulator")
    from widgets.live_app import LiveApp as _LiveApp
    from widgets.live_app import shared_engine as _shared_engine

    _LiveApp(_shared_engine()).servable(title="Live trading")
