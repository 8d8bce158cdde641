"""LiveApp without a browser: an engine stepped by hand, the drain callback called directly."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from bokeh.models import Legend

from tests.live.helpers import ListFeed, bar_batches
from widgets import live_app
from widgets.live_app import LiveApp, build_engine, check_serve_args, record_history
from workbench.live._broker import PaperBroker
from workbench.live._engine import LiveEngine
from workbench.live._ledger import Ledger
from workbench.live._types import Bar, Malformed
from workbench.risk import RiskLimits

LIMITS = RiskLimits(max_order_notional=600_000.0, max_position_notional=1_000_000.0,
                    stale_after_s=60.0)
APP_FILE = str(Path(live_app.__file__).resolve())


@pytest.fixture(scope="module")
def data():
    return bar_batches("2004-01-01", "2007-12-31")


@pytest.fixture
def engine(data, tmp_path):
    symbols, batches = data
    eng = LiveEngine(ListFeed(symbols, batches), None,
                     ledger=Ledger(f"sqlite:///{tmp_path}/ledger.db", initial_cash=1e6),
                     broker=PaperBroker(cost_bps=1.0, slippage_bps=2.0), limits=LIMITS)
    yield eng
    eng.ledger.close()


def test_one_drain_applies_every_pending_update(data, engine):
    symbols, batches = data
    app = LiveApp(engine, rollover=300, table_rows=50, table_every_s=0)
    updates = []
    engine.subscribe(updates.append)
    for b in batches[:500]:
        engine.step(b)
    assert app.pending == 500 and app.rendered_updates == 0 and app.last_push_ts is None
    assert app.drain() == 500
    assert app.rendered_updates == 1 and app.applied_updates == 500
    assert app.last_push_ts is not None and app.pending == 0
    assert float(app.push_clock.value) == pytest.approx(app.last_push_ts, abs=1e-5)
    assert len(app.push_lags_ms) == 500 and min(app.push_lags_ms) >= 0

    prices = app.sources["prices"].data
    assert len(prices["t"]) == 300  # rollover
    assert prices["t"][-1] == updates[-1].ts / 1e6
    j = symbols.index("SP500")
    first = next(b.close for b in batches[0] if b.symbol == "SP500")
    last = next(b.close for b in batches[499] if b.symbol == "SP500")
    assert prices[f"s{j}"][-1] == pytest.approx(100 * last / first)
    eq = app.sources["equity"].data
    assert eq["equity"][-1] == pytest.approx(engine.state.equity)
    assert eq["drawdown"][-1] == pytest.approx(-100 * engine.state.drawdown)
    w = app.sources["weights"].data[f"s{j}"][-1]
    st = engine.state
    assert w == pytest.approx(100 * st.positions.get("SP500", 0) * st.prices["SP500"]
                              / st.equity)

    n_fills = sum(len(u.fills) for u in updates)
    n_verdicts = sum(len(u.verdicts) for u in updates)
    assert n_fills > 50 and n_verdicts > 50
    fills = app.tables["fills"].value
    assert len(fills) == 50  # table rollover
    last_fill = [f for u in updates for f in u.fills][-1]
    newest = fills.loc[fills["seq"].idxmax()]
    assert newest["symbol"] == last_fill.symbol
    assert newest["qty"] == pytest.approx(last_fill.qty)
    assert newest["price"] == pytest.approx(last_fill.price)
    assert len(app.tables["verdicts"].value) == 50
    assert f"**{n_verdicts:,}** approved" in app.risk_summary.object

    pos = app.tables["positions"].value.set_index("symbol")
    for s in symbols:
        assert pos.loc[s, "shares"] == pytest.approx(engine.book.get(s, 0.0))
    assert app.indicators["equity"].value == pytest.approx(st.equity)
    assert app.indicators["pnl"].value == pytest.approx(st.pnl)
    assert app.indicators["var_95"].value == pytest.approx(100 * st.var_95)
    assert app.indicators["gross"].value == pytest.approx(st.gross_exposure)
    assert app.indicators["latency_p99"].value == pytest.approx(
        engine.latency_percentiles()["end_to_end"]["p99"], rel=0.5)
    assert "end_to_end" in app.latency.object
    assert "macd_baseline" in app.health.object and ">ok<" in app.health.object
    assert "2007" in app.status.object or "200" in app.status.object

    assert app.drain() == 0 and app.rendered_updates == 1  # nothing new, no push
    engine.step(batches[500])
    assert app.drain() == 1 and app.rendered_updates == 2
    assert len(app.sources["prices"].data["t"]) == 300


def test_positions_table_is_patched_not_replaced(data, engine):
    _, batches = data
    app = LiveApp(engine)
    table = app.tables["positions"]
    for b in batches[:400]:
        engine.step(b)
    app.drain()
    patches = []
    orig = table.patch
    table.patch = lambda p, **kw: (patches.append(p), orig(p, **kw))
    replaced = []
    table.param.watch(lambda e: replaced.append(e), "value")
    engine.step(batches[400])
    app.drain()
    assert patches and not replaced
    changed = {col for p in patches for col in p}
    assert "weight_pct" in changed and "symbol" not in changed


def test_limit_inputs_change_the_engine_limits_and_bad_values_are_refused(data, engine):
    _, batches = data
    app = LiveApp(engine, table_every_s=0)
    for b in batches[:400]:
        engine.step(b)
    app.drain()
    assert "REJECTED" not in set(app.tables["verdicts"].value["verdict"])
    app.limit_inputs["max_order_notional"].value = 1_000.0
    assert engine.limits.max_order_notional == 1_000.0
    assert engine.limits.max_position_notional == LIMITS.max_position_notional
    app.limit_inputs["max_gross_exposure"].value = -1.0
    assert engine.limits.max_gross_exposure == LIMITS.max_gross_exposure
    assert "not applied" in app.limit_message.object
    assert "max_gross_exposure" in app.limit_message.object
    assert app.limit_inputs["max_gross_exposure"].value == LIMITS.max_gross_exposure
    for b in batches[400:460]:
        engine.step(b)
    app.drain()
    table = app.tables["verdicts"].value
    rejected = table[table["verdict"] == "REJECTED"]
    assert len(rejected) > 0 and rejected["reasons"].str.contains("max 1,000").all()
    assert "last rejection" in app.risk_summary.object
    # a change made elsewhere (another session) shows up at the next push
    engine.set_limits(engine.limits.replace(max_drawdown=0.1))
    app.drain()
    assert app.limit_inputs["max_drawdown"].value == 0.1
    assert engine.limits.max_order_notional == 1_000.0


def test_rejected_inputs_are_listed_and_counted(data, engine):
    _, batches = data
    app = LiveApp(engine, table_every_s=3600)
    for b in batches[:400]:
        engine.step(b)
    app.drain()  # the first flush is immediate, the next one waits ``table_every_s``
    assert len(app.tables["verdicts"].value) > 0
    ts = batches[399][0].ts
    engine.step([Bar("SP500", ts + 1, math.nan, 1, 1, 1, 1), Bar("NOPE", ts + 2, 1, 1, 1, 1, 1),
                 Malformed('{"T": "b"}', "missing field 'c'")])
    app.drain()
    assert app.tables["rejected"].value.empty  # held back: tables refresh at a lower rate
    app.table_every_s = 0
    app.drain()  # nothing new queued, but the held rows go out now
    rej = app.tables["rejected"].value
    assert sorted(rej["reason"]) == ["malformed", "non_finite", "unknown_symbol"]
    assert rej["detail"].str.contains("missing field 'c'").any()
    text = app.rejected_counts.object
    assert "non_finite: **1**" in text and "unknown_symbol: **1**" in text


def test_symbol_choice_hides_lines(data, engine):
    symbols, _ = data
    app = LiveApp(engine)
    app.symbol_choice.value = ["SP500"]
    for s, renderers in app._lines.items():
        assert len(renderers) == 2 and all(r.visible == (s == "SP500") for r in renderers)


def test_legends_sit_beside_the_charts_and_hide_on_click(data, engine):
    symbols, _ = data
    app = LiveApp(engine)
    for key in ("prices", "weights"):
        f = app.figures[key]
        assert not [m for m in f.center if isinstance(m, Legend)]  # never over the lines
        (legend,) = [m for m in f.right if isinstance(m, Legend)]
        assert legend.click_policy == "hide"
        assert [item.label.value for item in legend.items] == list(symbols)


def test_a_legend_click_updates_the_symbol_choice(data, engine):
    """Hiding a line from a legend (the browser sets ``visible``) hides the symbol in both
    charts and removes it from "Symbols shown"; showing it again adds it back."""
    symbols, _ = data
    app = LiveApp(engine)
    price_line, weight_line = app._lines["AAPL"]
    price_line.visible = False  # what a click on the price chart's legend entry syncs
    assert app.symbol_choice.value == [s for s in symbols if s != "AAPL"]
    assert not weight_line.visible
    assert all(r.visible for s, rs in app._lines.items() if s != "AAPL" for r in rs)
    weight_line.visible = True  # a click on the positions chart's (greyed) entry
    assert app.symbol_choice.value == [s for s in symbols if s != "AAPL"] + ["AAPL"]
    assert price_line.visible and weight_line.visible
    app.symbol_choice.value = ["SP500"]  # the picker still drives the lines
    assert all(r.visible == (s == "SP500") for s, rs in app._lines.items() for r in rs)


def test_tables_fit_every_column_in_their_width(data, engine):
    app = LiveApp(engine)
    for key, table in app.tables.items():
        assert table.layout == "fit_columns", key
        shown = [c for c in table.value.columns if c not in table.hidden_columns]
        # every shown column but one has a share of the width; the last takes the rest
        widths = table.widths
        flexible = [c for c in shown if c not in widths]
        assert len(flexible) == 1, (key, flexible)
        total = sum(float(w.rstrip("%")) for w in widths.values())
        assert total <= 92, (key, total)  # the flexible column keeps >= 8 %
        assert table._configuration["columnDefaults"]["tooltip"] is True  # cut text on hover
    # the reasons of a rejection wrap onto a second line instead of ending in "..."
    assert any('tabulator-field="reasons"' in css and "white-space: normal" in css
               for css in app.tables["verdicts"].stylesheets)


def test_close_unsubscribes_and_stops_the_push(data, engine):
    _, batches = data
    before = engine.n_subscribers
    app = LiveApp(engine)
    layout = app.panel()
    assert layout is app.panel()  # built once
    assert engine.n_subscribers == before + 1
    assert app._callback is not None
    app.close()
    assert app.closed and engine.n_subscribers == before and app._callback is None
    engine.step(batches[0])
    assert app.pending == 0 and app.drain() == 0
    app.close()  # idempotent


def test_history_seeds_a_later_app_without_duplicates(data, engine):
    _, batches = data
    record_history(engine, maxlen=100)
    record_history(engine, maxlen=100)  # idempotent: one recorder
    for b in batches[:150]:
        engine.step(b)
    app = LiveApp(engine)
    for b in batches[150:160]:
        engine.step(b)
    assert app.drain() == 110
    t = app.sources["prices"].data["t"]
    assert len(t) == 110 and np.all(np.diff(t) > 0)
    assert "1 view(s)" in app.status.object  # the recorder is not a view


def test_feed_controls(tmp_path):
    eng = build_engine(model="macd", rate=50.0, ledger=f"sqlite:///{tmp_path}/l.db",
                       symbols=["SP500", "NASDAQ"], warmup_bars=5, resume=False)
    app = LiveApp(eng)
    try:
        assert app.run_button.label == "Start"
        app.run_button.clicks += 1
        assert eng.running and app.run_button.label == "Pause"
        app.run_button.clicks += 1
        assert eng.feed.paused and app.run_button.label == "Resume"
        app.run_button.clicks += 1
        assert not eng.feed.paused and app.run_button.label == "Pause"
        app.speed.value = 5.0
        assert eng.feed.speed == 5.0
        app.speed.value = 0.0
        assert eng.feed.speed == 0.0
    finally:
        eng.close()
        app.close()


def test_build_engine_replays_from_2013_with_a_fast_warm_up(tmp_path):
    url = f"sqlite:///{tmp_path}/l.db"
    old = Ledger(url, initial_cash=1e6)
    old.commit_bar(5)
    old.close()
    eng = build_engine(model="macd", ledger=url, warmup_bars=30, rate=1.0)
    try:
        assert eng.ledger.cursor() is None  # reset: fresh paper capital
        assert eng.limits.max_order_notional == pytest.approx(250_000)
        assert eng.limits.max_position_notional == pytest.approx(500_000)
        assert eng.limits.stale_after_s == 30.0
        it = iter(eng.feed)
        import time

        t0 = time.perf_counter()
        first = [next(it) for _ in range(31)]
        assert time.perf_counter() - t0 < 5  # 30 warm-up bars unpaced (rate 1/s)
        dates = [np.datetime64(b[0].ts, "ns") for b in first]
        assert dates[29] < np.datetime64("2009-01-01") <= dates[30]
        assert eng.feed.loop
    finally:
        eng.close()


def test_build_engine_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_LIVE_MODEL", "bogus")
    with pytest.raises(ValueError, match="WORKBENCH_LIVE_MODEL='bogus'"):
        build_engine(ledger=f"sqlite:///{tmp_path}/l.db")
    monkeypatch.setenv("WORKBENCH_LIVE_MODEL", "macd")
    monkeypatch.setenv("WORKBENCH_LIVE_RATE", "fast")
    with pytest.raises(ValueError, match="WORKBENCH_LIVE_RATE.*'fast'"):
        build_engine(ledger=f"sqlite:///{tmp_path}/l.db")
    monkeypatch.setenv("WORKBENCH_LIVE_RATE", "25")
    monkeypatch.setenv("WORKBENCH_LIVE_LEDGER", f"sqlite:///{tmp_path}/env.db")
    eng = build_engine()
    try:
        assert eng.feed.rate == 25.0 and eng.ledger.url.endswith("env.db")
        assert type(eng.model).__name__ == "_MACDFallback"
    finally:
        eng.close()
    with pytest.raises(ValueError, match="warmup_bars"):
        build_engine(warmup_bars=-1, ledger=f"sqlite:///{tmp_path}/l.db")


@pytest.mark.parametrize("kw, match", [
    ({"rate_hz": 0}, "rate_hz"), ({"rate_hz": 100}, "rate_hz"), ({"rollover": 5}, "rollover"),
    ({"table_rows": 2.5}, "table_rows"), ({"max_pending": 0}, "max_pending"),
    ({"latency_every_s": -1}, "latency_every_s"), ({"table_every_s": None}, "table_every_s"),
])
def test_bad_parameters_are_named(engine, kw, match):
    with pytest.raises(ValueError, match=match):
        LiveApp(engine, **kw)


def test_health_panel_shows_excluded_members():
    html = LiveApp._health_html({"state": "degraded", "calls": 12,
                                 "lstm": {"active": False, "failures": 2,
                                          "last_error": "RuntimeError: <nan>"},
                                 "mlp": {"active": True, "failures": 0, "last_error": None}})
    assert "degraded" in html and "excluded" in html and "active" in html
    assert "RuntimeError: &lt;nan&gt;" in html and "12 calls" in html


# ------------------------------------------------------------------ serving security
@pytest.mark.parametrize("args", [
    ["--address", "0.0.0.0"],
    ["--address=0.0.0.0"],
    ["--address", "192.168.1.20", "--port", "5006"],
    ["--addr", "0.0.0.0"],  # argparse accepts the abbreviation
    [],  # no --address: the server listens on every interface
    ["--address", ""],
    ["--address", "0.0.0.0", "--args", "--address", "127.0.0.1", "--basic-auth", "x"],
    ["--address", "0.0.0.0", "--basic-au", "secret"],  # abbreviated auth: refused (safe side)
    ["--address", "127.0.0.1", "--address", "0.0.0.0"],  # the last one counts
])
def test_non_loopback_without_auth_is_refused(args):
    with pytest.raises(SystemExit) as err:
        check_serve_args(["panel", "serve", "widgets/live_app.py", *args], environ={})
    msg = str(err.value)
    assert "refusing to serve" in msg and "--basic-auth" in msg and "--oauth-provider" in msg
    assert "127.0.0.1" in msg


@pytest.mark.parametrize("args, env", [
    (["--address", "127.0.0.1"], {}),
    (["--address", "localhost"], {}),
    (["--address", "::1"], {}),
    (["--address", "[::1]"], {}),
    (["--address", "127.0.0.2"], {}),
    (["--address", "0.0.0.0", "--basic-auth", "s3cret"], {}),
    (["--address=0.0.0.0", "--basic-auth=creds.json"], {}),
    (["--address", "0.0.0.0", "--oauth-provider", "github"], {}),
    (["--address", "0.0.0.0"], {"PANEL_BASIC_AUTH": "s3cret"}),
    (["--address", "0.0.0.0"], {"PANEL_OAUTH_PROVIDER": "github"}),
    (["--unix-socket", "/tmp/live.sock"], {}),
])
def test_loopback_or_authenticated_serving_is_allowed(args, env):
    assert check_serve_args(["panel", "serve", "widgets/live_app.py", *args],
                            environ=env) is None


def test_the_refusal_names_the_address():
    with pytest.raises(SystemExit, match="--address 10.1.2.3 and no authentication"):
        check_serve_args(["panel", "serve", "x.py", "--address", "10.1.2.3"], environ={})
    with pytest.raises(SystemExit, match="every network interface"):
        check_serve_args(["panel", "serve", "x.py"], environ={})


def test_the_startup_guard_only_fires_for_a_serve_of_this_file():
    panel_bin = str(Path(sys.executable).parent / "panel")
    assert live_app._serves_this_file([panel_bin, "serve", APP_FILE, "--address", "0.0.0.0"])
    assert live_app._serves_this_file(["bokeh", "serve", APP_FILE])
    assert not live_app._serves_this_file([panel_bin, "serve", "widgets/other.py"])
    assert not live_app._serves_this_file(["pytest", APP_FILE, "-k", "serve"])
    assert not live_app._serves_this_file([panel_bin, "serve", "x.py", "--args", APP_FILE])
    live_app._refuse_insecure_serve(["pytest", "serve", APP_FILE])  # no exit here


def test_the_real_command_line_is_read_from_orig_argv(monkeypatch):
    monkeypatch.setattr(sys, "orig_argv", ["/usr/bin/python3", "-u", "-X", "dev",
                                           "/v/bin/panel", "serve", "a.py"], raising=False)
    assert live_app._command_line() == ["/v/bin/panel", "serve", "a.py"]
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "panel", "serve", "a.py",
                                           "--address", "0.0.0.0"], raising=False)
    assert live_app._command_line() == ["panel", "serve", "a.py", "--address", "0.0.0.0"]
    assert live_app._is_serve_command(live_app._command_line())
    glob_arg = str(Path(APP_FILE).parent / "live_*.py")
    assert live_app._serves_this_file(["panel", "serve", glob_arg, "--glob"])


def test_price_chart_title_names_the_rebasing_bar(data, engine):
    """The prices are rebased on the first bar received, not on the first bar shown."""
    symbols, batches = data
    app = LiveApp(engine, rollover=300, table_every_s=0)
    for b in batches[:500]:
        engine.step(b)
    app.drain()
    title = app.figures["prices"].title.text
    assert title == live_app.PRICES_TITLE and "received" in title and "shown" not in title
    j = symbols.index("SP500")
    shown_first = app.sources["prices"].data[f"s{j}"][0]  # after rollover: not 100
    assert not math.isclose(shown_first, 100.0)
