import math

import numpy as np
import pytest

from tests.live.helpers import ListFeed, bar_batches
from workbench.live import Bar, LiveEngine, Malformed
from workbench.live._broker import PaperBroker
from workbench.live._ledger import Ledger
from workbench.risk import RiskLimits

LIMITS = RiskLimits(max_order_notional=600_000.0, max_position_notional=1_000_000.0,
                    stale_after_s=60.0)


@pytest.fixture(scope="module")
def data():
    return bar_batches()


def _engine(symbols, batches, url, **kw):
    return LiveEngine(ListFeed(symbols, batches), None, ledger=Ledger(url, initial_cash=1e6),
                      broker=PaperBroker(cost_bps=1.0, slippage_bps=2.0),
                      limits=kw.pop("limits", LIMITS), **kw)


def test_engine_trades_and_the_ledger_agrees(data, tmp_path):
    symbols, batches = data
    eng = _engine(symbols, batches, f"sqlite:///{tmp_path}/l.db")
    updates = []
    eng.subscribe(updates.append)
    calls = []
    predict = eng._predict
    eng._predict = lambda x: calls.append(len(x)) or predict(x)
    for b in batches:
        eng.step(b)
    st = eng.state
    assert st.n_bars == len(batches) and len(updates) == len(batches)
    fills = sum(len(u.fills) for u in updates)
    assert fills > 50  # the MACD baseline rebalances as its signals move
    assert eng.ledger.positions() == pytest.approx({k: v for k, v in eng.book.items() if v})
    assert eng.ledger.cash() == pytest.approx(eng.cash, rel=1e-12)
    assert st.equity == pytest.approx(eng.equity(), rel=1e-12)
    assert math.isfinite(st.var_95) and st.var_95 > 0 and st.cvar_95 >= st.var_95
    assert st.gross_exposure <= 1.0 + 1e-9
    lat = eng.latency_percentiles()
    for stage in ("validate", "broker", "features", "inference", "sizing", "risk_checks",
                  "ledger", "risk_state", "end_to_end"):
        assert lat[stage]["p99"] >= lat[stage]["p50"] > 0
    # inference is timed only when the model ran (not in the features' own warm-up)
    assert 0 < len(calls) < len(batches)
    assert eng.latency.count("inference") == len(calls)
    assert eng.latency.count("end_to_end") == len(batches)


def test_restart_resumes_with_identical_book(data, tmp_path):
    symbols, batches = data
    ref = _engine(symbols, batches, f"sqlite:///{tmp_path}/ref.db")
    for b in batches:
        ref.step(b)
    url = f"sqlite:///{tmp_path}/killed.db"
    first = _engine(symbols, batches, url)
    for b in batches[:700]:
        first.step(b)
    at_stop = (dict(first.book), first.cash)
    first.ledger.close()
    # a new process: same ledger, the feed replays from the start
    second = _engine(symbols, batches, url)
    assert second.cash == pytest.approx(at_stop[1], rel=0, abs=0)
    assert {k: v for k, v in second.book.items() if v} == {k: v for k, v in at_stop[0].items()
                                                           if v}
    calls = []
    predict = second._predict
    second._predict = lambda x: calls.append(len(x)) or predict(x)
    warm = []
    for b in batches:
        n = len(calls)
        u = second.step(b)
        warm.append(u)
        if u is not None and u.warmup:
            assert len(calls) == n  # warm-up replays the features only: no model call
    assert any(u is not None and u.warmup for u in warm) and calls
    assert second.ledger.cash() == ref.ledger.cash()
    assert second.ledger.positions() == ref.ledger.positions()
    assert len(second.ledger.fills(limit=None)) == len(ref.ledger.fills(limit=None))


def test_bad_input_is_rejected_counted_and_never_reaches_the_broker(data, tmp_path):
    symbols, batches = data
    eng = _engine(symbols, batches, f"sqlite:///{tmp_path}/l.db")
    seen = []
    orig = eng.broker.on_bars

    def spy(bars):
        seen.extend(bars)
        return orig(bars)

    eng.broker.on_bars = spy
    for b in batches[:400]:
        eng.step(b)
    ts = batches[399][0].ts
    s0 = symbols[0]
    bad = [
        Bar(s0, ts + 10, float("nan"), 1, 1, 1, 1),
        Bar(s0, ts + 11, 1, float("inf"), 1, 1, 1),
        Bar(s0, ts + 12, -1.0, 1, -1.0, 1, 1),
        Bar(s0, ts + 13, 0.0, 1, 0.0, 1, 1),
        Bar(s0, ts - 10, 1, 1, 1, 1, 1),  # older than the last accepted bar
        Bar(s0, ts, 1, 1, 1, 1, 1),  # duplicate timestamp
        Bar("NOPE", ts + 14, 1, 1, 1, 1, 1),
        Bar(s0, ts + 15, 1, 0.5, 1, 1, 1),  # high below open
        Bar(s0, ts + 16, 1, 1, 1, 1, -5),
        Malformed('{"T": "b", "S": "AAPL"}', "missing field 'c'"),
        "not a bar",
        Bar(s0, 2**63, 1, 1, 1, 1, 1),  # past 2262-04-11: no int64 ns timestamp
    ]
    before = eng.state
    out = eng.step(bad)
    assert out is None and eng.state is before  # nothing accepted, nothing traded
    counts = eng.validator.counts
    assert counts == {"non_finite": 2, "non_positive_price": 2, "out_of_order": 1,
                      "duplicate": 1, "unknown_symbol": 1, "inconsistent_ohlc": 1,
                      "negative_volume": 1, "malformed": 3}
    assert any("outside the int64 ns" in r["detail"] for r in eng.validator.recent)
    assert not any(b in seen for b in bad if isinstance(b, Bar))
    eng.step(batches[400])  # and the engine keeps going
    assert eng.state.rejected_inputs == dict(counts)


def test_tighter_risk_limit_changes_the_verdicts(data, tmp_path):
    symbols, batches = data
    eng = _engine(symbols, batches, f"sqlite:///{tmp_path}/l.db")
    for b in batches[:500]:
        eng.step(b)
    assert eng.rejected_orders == 0
    eng.set_limits(LIMITS.replace(max_order_notional=1_000.0))
    rejected = []
    for b in batches[500:560]:
        u = eng.step(b)
        rejected += [v for v in u.verdicts if not v.approved]
    assert rejected and all("max 1,000" in " ".join(v.reasons) for v in rejected)
    with pytest.raises(ValueError, match="limits must be a RiskLimits"):
        eng.set_limits({"max_order_notional": 1})


@pytest.fixture(scope="module")
def ensemble():
    """A small fitted ensemble (LSTM + linear, context 32) on the bars of ``data``."""
    from workbench.data import load_universe
    from workbench.models import DeepMomentumLSTM, Ensemble, LinearModel, MomentumDataset

    ds = MomentumDataset.from_bars(load_universe("daily", start="2004-01-01",
                                                 end="2008-12-31"))
    common = {"seq_len": 16, "burn_in": 16, "epochs": 1, "patience": 1, "seed": 0,
              "device": "cpu", "progress": False}
    members = {"lstm": DeepMomentumLSTM(hidden_size=4, **common),
               "linear": LinearModel(**common)}
    for m in members.values():
        m.fit(ds, slice(260, 600), slice(600, 700))
    return Ensemble(members, method="confidence").fit(ds, slice(600, 700))


def test_a_missed_bar_does_not_freeze_the_symbol(data, ensemble, tmp_path):
    """One missing bar: the symbol is decided again at its next bar, as research does."""
    from workbench import features as ft

    symbols, batches = data
    k, sym = 700, "AAPL"
    j = list(symbols).index(sym)
    L = ensemble.context_length
    gap = [list(b) for b in batches[:k + L + 5]]
    gap[k] = [b for b in gap[k] if b.symbol != sym]
    eng = LiveEngine(ListFeed(symbols, gap), ensemble, ledger=Ledger(f"sqlite:///{tmp_path}/l.db"),
                     limits=LIMITS, features="model", min_trade_fraction=0.0)
    assert eng.context_length == L == 32
    ups = [eng.step(b) for b in gap]
    # research: the same bars with the missing close as NaN; non-finite context reads as 0
    close = np.array([[next((b.close for b in batch if b.symbol == s), np.nan)
                       for s in symbols] for batch in gap])
    feats, _ = ft.deep_momentum_features(close)
    assert not np.isfinite(feats[k, j]).all() and np.isfinite(feats[k + 1, j]).all()
    assert sym not in ups[k].positions  # no bar: not decided (and not reported as flat)
    for t in range(k - 3, len(gap)):
        if t == k:
            continue
        ref = ensemble.predict_sequences(feats[t - L + 1:t + 1].transpose(1, 0, 2))
        got = ups[t].positions
        assert sym in got, f"{sym} not decided at batch {t} ({t - k} after the missed bar)"
        live = [s for s in symbols if s in got]
        np.testing.assert_allclose([got[s] for s in live], ref[[symbols.index(s) for s in live]],
                                   rtol=1e-5, atol=1e-6)
    # and it trades: an order at the bar after the gap, filled at the next open
    assert [v.order.symbol for v in ups[k + 1].verdicts].count(sym) == 1
    assert [f.symbol for f in ups[k + 2].fills].count(sym) == 1
    eng.close()


def test_positions_report_only_decided_symbols(data, tmp_path):
    symbols, batches = data
    eng = _engine(symbols, batches, f"sqlite:///{tmp_path}/l.db", features="model")
    ups = [eng.step(b) for b in batches[:1000]]
    # the MACD baseline needs ~250 bars of history: before that no symbol is decided
    assert not ups[10].positions
    assert all(u.positions.keys() <= {b.symbol for b in u.bars} for u in ups)
    assert ups[-1].positions.keys() == set(symbols)
    assert all(-1 <= v <= 1 for v in ups[-1].positions.values())


def test_restart_refuses_a_ledger_holding_untraded_symbols(data, tmp_path):
    symbols, batches = data
    url = f"sqlite:///{tmp_path}/l.db"
    first = _engine(symbols, batches, url)
    for b in batches[:420]:
        first.step(b)
    held = {s for s, q in first.book.items() if q}
    pending = {o.symbol for o in first.broker.pending()}
    assert {"AAPL", "MSFT"} <= held and pending  # the MACD baseline holds them by now
    first.ledger.close()
    kept = ["SP500", "NASDAQ"]
    ledger = Ledger(url)
    with pytest.raises(ValueError) as err:
        LiveEngine(ListFeed(kept, []), None, ledger=ledger)
    msg = str(err.value)
    for s in sorted((held | pending) - set(kept)):
        assert repr(s) in msg
    assert "'SP500'" not in msg.split("symbols=")[0]  # only the untraded ones are named
    assert "Trade them too" in msg and "new ledger" in msg
    # the same ledger with every held symbol traded resumes as before
    again = LiveEngine(ListFeed(symbols, batches), None, ledger=ledger)
    assert {k: v for k, v in again.book.items() if v} == ledger.positions()
    again.prices.update(first.prices)
    assert again.equity() == pytest.approx(ledger.equity(first.prices), rel=1e-12)
    assert again.equity() == pytest.approx(first.equity(), rel=1e-12)


def test_restart_refuses_open_orders_in_untraded_symbols(tmp_path):
    from workbench.live import Order

    ledger = Ledger(f"sqlite:///{tmp_path}/l.db")
    ledger.commit_bar(D := 86_400 * 10**9, new_orders=[
        Order(order_id=f"{D}-ZZZ", ts=D, symbol="ZZZ", qty=5.0, ref_price=10.0)])
    with pytest.raises(ValueError, match=r"holds 'ZZZ' \(open order\): symbol\(s\) this "
                                         r"engine does not trade"):
        LiveEngine([], None, symbols=["A"], ledger=ledger)
    assert LiveEngine([], None, symbols=["A", "ZZZ"], ledger=ledger).broker.pending()


def test_sizing_matches_backtest_portfolio_weights(tmp_path):
    """``w = X * target_vol / sigma / n_t``, n_t the symbols with a bar and a valid sigma,
    as workbench.backtest.portfolio_weights: GOOG (listed 2004-08-19) has a sigma long
    before its MACD inputs are finite and keeps its share of the risk budget meanwhile."""
    from workbench import features as ft
    from workbench.backtest import portfolio_weights

    symbols, batches = bar_batches(end="2005-10-31")
    loose = RiskLimits(max_order_notional=1e12, max_position_notional=1e12,
                       max_gross_exposure=100.0, max_net_exposure=100.0, stale_after_s=1e9)
    eng = LiveEngine(ListFeed(symbols, batches), None, ledger=Ledger(f"sqlite:///{tmp_path}/l.db"),
                     limits=loose, min_trade_fraction=0.0, features="model")
    T, N = len(batches), len(symbols)
    close, pos, got = (np.full((T, N), np.nan) for _ in range(3))
    for t, batch in enumerate(batches):
        u = eng.step(batch)
        for b in batch:
            close[t, symbols.index(b.symbol)] = b.close
        for s, p in u.positions.items():
            pos[t, symbols.index(s)] = p
        equity = eng.equity()  # the decision's equity: this bar's fills, closes
        for v in u.verdicts:  # target = book after this bar's fills + the order
            j = symbols.index(v.order.symbol)
            got[t, j] = (eng.book.get(v.order.symbol, 0.0) + v.order.qty) * close[t, j] / equity
    ref = portfolio_weights(pos, ft.ex_ante_volatility(close, span=60), target_vol=0.15,
                            max_gross=1.0)
    traded = np.isfinite(got)
    g = symbols.index("GOOG")
    warming = traded.any(axis=1) & ~np.isfinite(pos[:, g]) & np.isfinite(close[:, g])
    assert warming.sum() > 20  # rows where GOOG has a bar but is not decided yet
    np.testing.assert_allclose(got[traded], ref[traded], rtol=1e-9, atol=1e-12)


def test_a_failing_model_call_does_not_stop_the_producer(data, tmp_path):
    symbols, batches = data
    eng = _engine(symbols, batches[:420], f"sqlite:///{tmp_path}/l.db")
    predict, calls = eng._predict, []

    def flaky(x):
        calls.append(1)
        if len(calls) in (3, 4):
            raise RuntimeError("model blew up")
        return predict(x) if len(calls) != 6 else predict(x)[:2]  # wrong shape

    eng._predict = flaky
    eng.start()
    eng._thread.join(60)
    assert eng.error is None and eng.n_batches == 420
    assert eng.model_errors == 3 and "shape (2,)" in eng.last_model_error
    assert len(calls) > 10 and eng.state.model_health["state"] == "ok"
    assert eng.state.model_health["predict"]["failures"] == 3
    # the failed batches decided nothing: no position reported, no order, the book held
    eng2 = _engine(symbols, batches, f"sqlite:///{tmp_path}/l2.db")
    eng2._predict, n = (lambda x: (_ for _ in ()).throw(ValueError("bad"))), 0
    for b in batches[:420]:
        u = eng2.step(b)
        n += len(u.verdicts) + len(u.positions)
    assert n == 0 and not any(eng2.book.values()) and eng2.cash == 1e6
    assert eng2.state.model_health["state"] == "error"
    assert eng2.state.model_health["predict"]["last_error"] == "ValueError: bad"


def test_a_second_engine_on_the_same_account_is_stopped_not_mixed_in(data, tmp_path):
    """Two engines writing one account: the ledger's fill ids would silently keep the
    first engine's fills and drop the second's, so the ledger would match neither book.
    The second engine's first commit (orders only, before any fill) sees a cursor it did
    not commit and writes nothing."""
    from workbench.live._ledger import LedgerError

    symbols, batches = data
    url = f"sqlite:///{tmp_path}/l.db"
    first = _engine(symbols, batches, url)
    second = _engine(symbols, batches, url, target_vol=0.10)
    n_second = 0
    with pytest.raises(LedgerError, match="another writer committed a bar") as err:
        for b in batches[:400]:
            first.step(b)
            n_second += 1
            second.step(b)
    assert "this writer last committed or read None" in str(err.value)
    assert second.cash == 1e6 and not any(second.book.values())  # stopped before a fill
    assert n_second < 400
    ledger = Ledger(url)
    assert ledger.cash() == first.cash
    assert ledger.positions() == {k: v for k, v in first.book.items() if v}


def test_pause_on_a_feed_that_cannot_pause_is_a_named_error(tmp_path):
    eng = LiveEngine([], None, symbols=["A"], ledger=Ledger(f"sqlite:///{tmp_path}/l.db"))
    for name in ("pause", "resume"):
        with pytest.raises(TypeError, match=rf"LiveEngine.{name}: the feed \(list\) has no "
                                            rf"{name}\(\) method"):
            getattr(eng, name)()
