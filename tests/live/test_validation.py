import numpy as np
import pandas as pd
import pytest

from tests.live.helpers import ListFeed, bar_batches
from workbench.live import Bar, LiveEngine, Malformed
from workbench.live._ledger import Ledger
from workbench.live._validation import BarValidator

D = 86_400 * 10**9


def _bar(symbol, ts, price=10.0, volume=100.0):
    return Bar(symbol, ts, price, price + 1, price - 1, price, volume)


def test_a_batch_is_checked_in_timestamp_order():
    v = BarValidator(["A", "B"])
    out = v.check([_bar("A", 2 * D), Malformed("{}", "missing field 'c'"), _bar("B", 1 * D),
                   _bar("A", 1 * D), "junk", _bar("A", 2 * D, 11.0), _bar("B", 3 * D)])
    # stable: within a timestamp the input order is kept, so the first A@2D wins
    assert [(b.symbol, b.ts // D, b.close) for b in out] == [
        ("B", 1, 10.0), ("A", 1, 10.0), ("A", 2, 10.0), ("B", 3, 10.0)]
    assert v.counts == {"malformed": 2, "duplicate": 1} and v.accepted == 4
    assert [r["reason"] for r in v.last_rejected] == ["malformed", "malformed", "duplicate"]
    # order is still checked against the last accepted bar of earlier batches
    assert v.check([_bar("A", 1 * D + 1), _bar("A", 4 * D)]) == [_bar("A", 4 * D)]
    assert v.counts["out_of_order"] == 1


def test_engine_steps_a_mixed_batch_in_timestamp_order(tmp_path):
    eng = LiveEngine([], None, symbols=["A", "B"], features="model",
                     ledger=Ledger(f"sqlite:///{tmp_path}/l.db"))
    seen = []
    eng.subscribe(seen.append)
    u = eng.step([_bar("A", 2 * D), _bar("B", 1 * D), _bar("A", 1 * D), 42])
    assert [x.ts for x in seen] == [1 * D, 2 * D] and u is seen[-1]
    assert [b.symbol for b in seen[0].bars] == ["B", "A"]
    assert eng.validator.accepted == 3 and eng.validator.counts == {"malformed": 1}
    assert seen[0].rejected_inputs[0]["reason"] == "malformed"


def test_numpy_scalars_are_accepted_as_plain_numbers():
    ts = pd.date_range("2020-01-01", periods=4, freq="D", tz="UTC").asi8
    v = BarValidator(["A"])
    out = v.check([Bar("A", ts[0], np.float32(10.0), np.float64(11.0), 9, np.int64(10),
                       np.int32(100))])
    assert v.counts == {} and len(out) == 1
    b = out[0]
    assert type(b.ts) is int and b.ts == int(ts[0])
    assert all(type(x) is float for x in (b.open, b.high, b.low, b.close, b.volume))
    assert (b.open, b.high, b.low, b.close, b.volume) == (10.0, 11.0, 9.0, 10.0, 100.0)
    # still malformed: bool or non-integer timestamps, bool or non-numeric fields
    bad = [_bar("A", True), _bar("A", np.bool_(True)), _bar("A", np.float64(ts[1])),
           _bar("A", float(ts[1])), _bar("A", str(ts[1])),
           Bar("A", ts[2], True, 11, 9, 10, 1), Bar("A", ts[2], 10, 11, 9, 10, np.bool_(False)),
           Bar("A", ts[2], "10", 11, 9, 10, 1), Bar("A", ts[2], 10**400, 11, 9, 10, 1)]
    assert v.check(bad) == []
    assert v.counts == {"malformed": len(bad)}
    assert v.check([_bar("A", np.uint64(ts[3]))])[0].ts == int(ts[3])


def test_engine_trades_a_feed_of_numpy_scalars(tmp_path):
    symbols, batches = bar_batches(end="2005-06-30")
    np_batches = [[Bar(b.symbol, np.int64(b.ts), np.float32(b.open), np.float32(b.high),
                       np.float32(b.low), np.float32(b.close), np.float32(b.volume))
                   for b in batch] for batch in batches]
    # float32 rounding may make high < open: keep the bars consistent
    np_batches = [[b if b.high >= max(b.open, b.close) and b.low <= min(b.open, b.close)
                   else Bar(b.symbol, b.ts, b.close, b.close, b.close, b.close, b.volume)
                   for b in batch] for batch in np_batches]
    eng = LiveEngine(ListFeed(symbols, np_batches), None,
                     ledger=Ledger(f"sqlite:///{tmp_path}/l.db"))
    ups = [eng.step(b) for b in np_batches]
    assert eng.validator.counts == {} and all(u is not None for u in ups)
    fills = [f for u in ups for f in u.fills]
    assert fills and all(type(f.price) is float and type(f.ts) is int for f in fills)
    assert eng.ledger.positions() == pytest.approx({k: v for k, v in eng.book.items() if v})


def test_a_bar_for_a_timestamp_already_stepped_is_late():
    """A feed that splits one timestamp over two batches, or a bar arriving after a later
    timestamp was stepped: one engine step per timestamp, never a step back in time."""
    v = BarValidator(["A", "B", "C"])
    assert len(v.check([_bar("A", 1 * D), _bar("B", 1 * D)])) == 2 and v.clock == 1 * D
    assert v.check([_bar("C", 1 * D)]) == []  # same timestamp, next batch
    assert v.check([_bar("A", 3 * D), _bar("B", 2 * D)]) == [_bar("B", 2 * D), _bar("A", 3 * D)]
    assert v.check([_bar("C", 2 * D)]) == []  # C never had a bar: still behind the clock
    assert v.counts == {"late": 2} and v.clock == 3 * D
    assert [r["reason"] for r in v.recent] == ["late", "late"]
    assert "earlier batch" in v.recent[-1]["detail"]
    assert v.check([_bar("C", 4 * D)]) == [_bar("C", 4 * D)]
    v2 = BarValidator(["A", "B"])
    v2.restore({"A": 5 * D})
    assert v2.check([_bar("B", 5 * D)]) == [] and v2.counts == {"late": 1}


def test_engine_never_steps_one_timestamp_twice(tmp_path):
    symbols, batches = bar_batches(end="2005-06-30")
    k = 300
    g = [b for b in batches[k] if b.symbol == "GOOG"]
    split = [list(b) for b in batches]
    split[k] = [b for b in split[k] if b.symbol != "GOOG"]
    split.insert(k + 1, g)  # GOOG's bar of batch k arrives in a batch of its own
    eng = LiveEngine(ListFeed(symbols, split), None, ledger=Ledger(f"sqlite:///{tmp_path}/l.db"))
    seen = []
    orig = eng.broker.on_bars
    eng.broker.on_bars = lambda bars: seen.extend(bars) or orig(bars)
    ups = [eng.step(b) for b in split]
    assert ups[k + 1] is None and eng.n_batches == len(batches)
    assert eng.validator.counts == {"late": 1} and g[0] not in seen
    assert [u.ts for u in ups if u is not None] == sorted({b[0].ts for b in batches})
