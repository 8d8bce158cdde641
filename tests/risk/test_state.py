import json
import math
import threading

import numpy as np
import pytest

from workbench.live._types import Order
from workbench.risk import (
    LatencyTracker,
    RiskMonitor,
    RiskState,
    Verdict,
    cvar_historical,
    max_drawdown,
    var_historical,
)

# ---------------------------------------------------------------- LatencyTracker


def test_latency_percentiles_match_numpy():
    rng = np.random.default_rng(0)
    tr = LatencyTracker()
    a = rng.exponential(1e-3, 500)
    b = rng.uniform(0, 2e-4, 300)
    for x in a:
        tr.record("features", x)
    for x in b:
        tr.record("inference", x)
    p = tr.percentiles()
    assert set(p) == {"features", "inference"}
    for stage, x in (("features", a), ("inference", b)):
        assert set(p[stage]) == {"p50", "p95", "p99"}
        expected = np.percentile(x, [50, 95, 99]) * 1e3  # milliseconds
        got = [p[stage]["p50"], p[stage]["p95"], p[stage]["p99"]]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert tr.count("features") == 500 and tr.count("nothing") == 0


def test_latency_ring_buffer_keeps_the_last_window():
    tr = LatencyTracker(window=100)
    x = np.arange(250, dtype=float) * 1e-3
    for v in x:
        tr.record("e2e", v)
    np.testing.assert_array_equal(tr.samples("e2e"), x[-100:])
    assert tr.count("e2e") == 250
    np.testing.assert_allclose(
        tr.percentiles()["e2e"]["p99"], np.percentile(x[-100:], 99) * 1e3, rtol=1e-12
    )
    # partial buffer, oldest first
    tr2 = LatencyTracker(window=100)
    for v in x[:7]:
        tr2.record("e2e", v)
    np.testing.assert_array_equal(tr2.samples("e2e"), x[:7])


def test_latency_validation():
    with pytest.raises(ValueError, match="window"):
        LatencyTracker(window=0)
    with pytest.raises(ValueError, match="window"):
        LatencyTracker(window=2.5)
    tr = LatencyTracker()
    for bad in (-1e-3, math.nan, math.inf):
        with pytest.raises(ValueError, match="'e2e'"):
            tr.record("e2e", bad)
    with pytest.raises(ValueError, match="stage"):
        tr.record("", 1e-3)
    with pytest.raises(KeyError, match="no latency recorded for stage 'x'"):
        tr.samples("x")
    assert tr.percentiles() == {}


def test_latency_concurrent_record_and_read():
    tr = LatencyTracker(window=1_000)
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for q in tr.percentiles().values():
                assert q["p50"] <= q["p95"] <= q["p99"]

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(20_000):
            tr.record("e2e", (i % 97) * 1e-5)
    finally:
        stop.set()
        t.join()
    assert tr.count("e2e") == 20_000


# ---------------------------------------------------------------- RiskMonitor


def feed_equity(mon: RiskMonitor, path, t0: int = 0) -> list[RiskState]:
    """Cash-only book: equity == cash."""
    return [mon.update(t0 + i, positions={}, prices={}, cash=c) for i, c in enumerate(path)]


def test_drawdown_on_crafted_path():
    mon = RiskMonitor(100.0, window=20)
    states = feed_equity(mon, [100.0, 120.0, 90.0, 130.0, 117.0, 104.0])
    dd = [s.drawdown for s in states]
    np.testing.assert_allclose(dd, [0.0, 0.0, 0.25, 0.0, 0.1, 0.2], atol=1e-15)
    np.testing.assert_allclose([s.max_drawdown for s in states],
                               [0.0, 0.0, 0.25, 0.25, 0.25, 0.25], atol=1e-15)
    assert mon.peak_equity == 130.0
    assert states[-1].pnl == pytest.approx(4.0)
    assert states[-1].n_bars == 6
    # agrees with the batch measure on the same returns
    r = np.diff([100.0, 120.0, 90.0, 130.0, 117.0, 104.0]) / [100.0, 120.0, 90.0, 130.0, 117.0]
    assert states[-1].max_drawdown == pytest.approx(-max_drawdown(r), rel=1e-12)


def test_initial_cash_is_a_peak_and_resume_peak():
    mon = RiskMonitor(100.0, window=20)
    (s,) = feed_equity(mon, [95.0])  # loss before any gain is a drawdown
    assert s.drawdown == pytest.approx(0.05)
    mon = RiskMonitor(100.0, window=20, peak_equity=200.0)
    (s,) = feed_equity(mon, [150.0])
    assert s.drawdown == pytest.approx(0.25) and mon.peak_equity == 200.0
    mon = RiskMonitor(100.0, window=20, peak_equity=50.0)  # never below initial cash
    assert mon.peak_equity == 100.0


def test_var_cvar_equal_historical_measures_on_same_returns():
    rng = np.random.default_rng(1)
    r = rng.normal(0.0005, 0.01, 80)
    eq = 1e6 * np.cumprod(np.concatenate([[1.0], 1.0 + r]))
    mon = RiskMonitor(1e6, window=30)
    states = feed_equity(mon, eq)
    # NaN until 20 returns exist: update k (0-based) has k returns
    assert all(math.isnan(s.var_95) and math.isnan(s.cvar_95) for s in states[:20])
    assert not math.isnan(states[20].var_95)
    rets = np.diff(eq) / eq[:-1]
    np.testing.assert_allclose(rets, r, rtol=1e-9)
    assert states[20].var_95 == pytest.approx(var_historical(rets[:20], 0.95), rel=1e-12)
    assert states[20].cvar_95 == pytest.approx(cvar_historical(rets[:20], 0.95), rel=1e-12)
    last = rets[-30:]  # rolling window of 30 returns
    assert states[-1].var_95 == pytest.approx(var_historical(last, 0.95), rel=1e-12)
    assert states[-1].cvar_95 == pytest.approx(cvar_historical(last, 0.95), rel=1e-12)
    assert states[-1].cvar_95 >= states[-1].var_95
    np.testing.assert_allclose(mon.returns, last, rtol=1e-12)
    np.testing.assert_array_equal(mon.equity_history, eq[-30:])


def test_equity_and_exposure_from_positions():
    mon = RiskMonitor(100_000.0)
    s = mon.update(1, positions={"AAA": 100.0, "BBB": -400.0}, prices={"AAA": 200.0, "BBB": 50.0},
                   cash=100_000.0)
    # values: +20,000 and -20,000 -> equity 100,000, gross 40 %, net 0
    assert s.equity == pytest.approx(100_000.0)
    assert s.gross_exposure == pytest.approx(0.4)
    assert s.net_exposure == pytest.approx(0.0)
    # BBB price not passed: valued at its last price
    s = mon.update(2, positions={"AAA": 100.0, "BBB": -400.0}, prices={"AAA": 250.0}, cash=90_000.0)
    assert s.equity == pytest.approx(90_000.0 + 25_000.0 - 20_000.0)
    assert s.net_exposure == pytest.approx(5_000.0 / 95_000.0)
    assert s.gross_exposure == pytest.approx(45_000.0 / 95_000.0)
    assert s.prices == {"AAA": 250.0, "BBB": 50.0}
    assert s.pnl == pytest.approx(-5_000.0)


def test_non_positive_equity_gives_nan_exposure():
    mon = RiskMonitor(100.0)
    s = mon.update(1, positions={"AAA": -10.0}, prices={"AAA": 20.0}, cash=100.0)  # equity -100
    assert s.equity == pytest.approx(-100.0)
    assert math.isnan(s.gross_exposure) and math.isnan(s.net_exposure)
    assert s.drawdown == pytest.approx(2.0)
    s = mon.update(2, positions={}, prices={}, cash=50.0)  # no return from a <= 0 equity
    assert mon.returns.size == 0


def test_passthrough_fields_and_verdict_counting():
    mon = RiskMonitor(1_000.0)
    o = Order("1-AAA", 1, "AAA", 5.0, 10.0)
    ok = Verdict(o, True)
    bad = Verdict(o, False, ("order notional AAA 50 > max 10",))
    tr = LatencyTracker()
    tr.record("e2e", 0.002)
    s = mon.update(1, positions={}, prices={}, cash=1_000.0, model_health={"drift": 0.1},
                   rejected_inputs={"missing field 'c'": 3}, verdicts=[ok, bad, bad],
                   latency=tr)
    assert s.model_health == {"drift": 0.1}
    assert s.rejected_inputs == {"missing field 'c'": 3}
    assert s.rejected_orders == 2
    assert s.last_verdicts == (ok, bad, bad)
    assert s.latency == {"e2e": {"p50": pytest.approx(2.0), "p95": pytest.approx(2.0),
                                 "p99": pytest.approx(2.0)}}
    # None keeps the previous values; verdicts accumulate, capped at 50
    s2 = mon.update(2, positions={}, prices={}, cash=1_000.0, verdicts=[bad] * 60)
    assert s2.model_health == {"drift": 0.1} and s2.rejected_inputs == {"missing field 'c'": 3}
    assert s2.latency == s.latency
    assert s2.rejected_orders == 62
    assert len(s2.last_verdicts) == 50 and all(v is bad for v in s2.last_verdicts)
    # a plain percentile dict is accepted as well
    s3 = mon.update(3, positions={}, prices={}, cash=1_000.0, latency={"x": {"p50": 1.0}})
    assert s3.latency == {"x": {"p50": 1.0}}
    # earlier snapshots are unaffected by later updates
    assert s.rejected_orders == 2 and len(s.last_verdicts) == 3
    assert mon.state is s3


def test_to_dict_is_strict_json():
    mon = RiskMonitor(1_000.0)
    o = Order("1-AAA", 1, "AAA", 5.0, 10.0)
    s = mon.update(np.int64(1_700_000_000_000_000_000), positions={"AAA": 5.0},
                   prices={"AAA": np.float64(10.0)}, cash=950.0,
                   verdicts=[Verdict(o, False, ("stale",))], model_health={"nan": np.nan})
    d = s.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["var_95"] is None and back["cvar_95"] is None  # NaN before 20 returns
    assert back["ts"] == 1_700_000_000_000_000_000
    assert back["equity"] == pytest.approx(1_000.0)
    assert back["model_health"] == {"nan": None}
    assert back["last_verdicts"] == [{
        "order": {"order_id": "1-AAA", "ts": 1, "symbol": "AAA", "qty": 5.0, "ref_price": 10.0},
        "approved": False, "reasons": ["stale"]}]
    assert list(d) == list(RiskState.__dataclass_fields__)


def test_monitor_validation():
    with pytest.raises(ValueError, match="initial_cash"):
        RiskMonitor(0.0)
    with pytest.raises(ValueError, match="initial_cash"):
        RiskMonitor(math.nan)
    with pytest.raises(ValueError, match="window"):
        RiskMonitor(1.0, window=10)
    mon = RiskMonitor(1.0)
    with pytest.raises(ValueError, match="ts must be an integer"):
        mon.update(1.5, positions={}, prices={}, cash=1.0)
    with pytest.raises(ValueError, match="cash must be finite"):
        mon.update(1, positions={}, prices={}, cash=math.inf)
    with pytest.raises(ValueError, match=r"prices\['AAA'\] must be finite and > 0"):
        mon.update(1, positions={}, prices={"AAA": 0.0}, cash=1.0)
    with pytest.raises(ValueError, match=r"positions\['AAA'\] must be finite"):
        mon.update(1, positions={"AAA": math.nan}, prices={"AAA": 1.0}, cash=1.0)
    with pytest.raises(ValueError, match="no price for held symbol 'ZZZ'"):
        mon.update(1, positions={"ZZZ": 1.0}, prices={}, cash=1.0)
    with pytest.raises(TypeError, match=r"verdicts\[0\] must be a Verdict"):
        mon.update(1, positions={}, prices={}, cash=1.0, verdicts=["x"])
    assert mon.state is None  # failed updates leave no snapshot
    # ... and commit nothing: the AAA price of the failed call is not remembered
    with pytest.raises(ValueError, match=r"positions\['BBB'\] must be finite"):
        mon.update(1, positions={"BBB": math.nan}, prices={"AAA": 2.0}, cash=1.0)
    with pytest.raises(ValueError, match="no price for held symbol 'AAA'"):
        mon.update(1, positions={"AAA": 1.0}, prices={}, cash=1.0)
    assert mon.equity_history.size == 0
