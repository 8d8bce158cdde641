"""PaperBroker: next-open fills with slippage and fees, pending orders, idempotent submits."""

from __future__ import annotations

import math

import pytest

from workbench.live._broker import PaperBroker
from workbench.live._types import Bar, Fill, Order

T = 1_700_000_000_000_000_000
MIN = 60_000_000_000


def bar(symbol: str, ts: int, open_: float, close: float | None = None) -> Bar:
    close = open_ if close is None else close
    return Bar(symbol, ts, open_, max(open_, close) + 1.0, min(open_, close) - 1.0, close, 1e5)


def order(symbol: str, ts: int, qty: float, ref: float = 100.0) -> Order:
    return Order(f"{ts}-{symbol}", ts, symbol, qty, ref)


def test_buy_fills_at_next_open_with_slippage_and_fee():
    broker = PaperBroker(cost_bps=1.0, slippage_bps=2.0)
    broker.submit([order("SPY", T, 10.0, ref=99.0)])
    fills = broker.on_bars([bar("SPY", T + MIN, 100.0, close=105.0)])
    assert len(fills) == 1
    fill = fills[0]
    # hand-computed: 100 * (1 + 2e-4) = 100.02; fee = 10 * 100.02 * 1e-4 = 0.10002
    assert fill.price == pytest.approx(100.02, rel=1e-15)
    assert fill.fee == pytest.approx(0.10002, rel=1e-12)
    assert fill.price == 100.0 * (1 + 2.0 * 1e-4)
    assert fill.fee == abs(10.0) * fill.price * 1.0 * 1e-4
    assert fill == Fill(fill_id=f"{T}-SPY/fill", order_id=f"{T}-SPY", ts=T + MIN, symbol="SPY",
                        qty=10.0, price=fill.price, fee=fill.fee)
    assert broker.pending() == []


def test_sell_slips_down_and_pays_fee_on_absolute_quantity():
    broker = PaperBroker(cost_bps=5.0, slippage_bps=10.0)
    broker.submit([order("QQQ", T, -4.0)])
    (fill,) = broker.on_bars([bar("QQQ", T + MIN, 200.0)])
    assert fill.price == pytest.approx(199.8, rel=1e-15)  # 200 * (1 - 10e-4)
    assert fill.fee == pytest.approx(4 * 199.8 * 5e-4, rel=1e-12)
    assert fill.fee > 0 and fill.qty == -4.0


def test_zero_bps_fill_at_the_open_exactly():
    broker = PaperBroker(cost_bps=0.0, slippage_bps=0.0)
    broker.submit([order("X", T, 3.0), order("Y", T, -3.0)])
    fills = broker.on_bars([bar("X", T + 1, 12.5), bar("Y", T + 1, 7.25)])
    assert [(f.symbol, f.price, f.fee) for f in fills] == [("X", 12.5, 0.0), ("Y", 7.25, 0.0)]


def test_fills_at_open_not_close():
    broker = PaperBroker(cost_bps=0.0, slippage_bps=0.0)
    broker.submit([order("X", T, 1.0)])
    (fill,) = broker.on_bars([bar("X", T + MIN, 50.0, close=60.0)])
    assert fill.price == 50.0


def test_order_without_later_bar_stays_pending():
    broker = PaperBroker()
    first = order("AAA", T, 5.0)
    broker.submit([first])
    # same timestamp (the decision bar itself), earlier bar, other symbol: no fill
    assert broker.on_bars([bar("AAA", T, 100.0)]) == []
    assert broker.on_bars([bar("AAA", T - MIN, 100.0)]) == []
    assert broker.on_bars([bar("BBB", T + MIN, 100.0)]) == []
    assert broker.on_bars([]) == []
    assert broker.pending() == [first]
    (fill,) = broker.on_bars([bar("AAA", T + 2 * MIN, 101.0)])
    assert fill.order_id == first.order_id and fill.ts == T + 2 * MIN
    assert broker.pending() == []


def test_earliest_later_bar_of_the_symbol_is_used():
    broker = PaperBroker(cost_bps=0.0, slippage_bps=0.0)
    broker.submit([order("AAA", T, 1.0)])
    bars = [bar("AAA", T + 3 * MIN, 103.0), bar("AAA", T, 100.0), bar("AAA", T + MIN, 101.0),
            bar("AAA", T + 2 * MIN, 102.0)]
    (fill,) = broker.on_bars(bars)
    assert (fill.ts, fill.price) == (T + MIN, 101.0)


def test_only_orders_with_a_later_bar_fill_and_order_is_kept():
    broker = PaperBroker()
    a, b, c = order("A", T, 1.0), order("B", T, 2.0), order("C", T + 5 * MIN, 3.0)
    broker.submit([a, b, c])
    fills = broker.on_bars([bar("C", T + MIN, 10.0), bar("B", T + MIN, 10.0),
                            bar("A", T + MIN, 10.0)])
    assert [f.order_id for f in fills] == [a.order_id, b.order_id]  # submission order
    assert broker.pending() == [c]


def test_submit_is_idempotent_for_pending_and_filled_ids():
    broker = PaperBroker()
    first = order("AAA", T, 5.0)
    broker.submit([first, first])
    broker.submit([Order(first.order_id, T, "AAA", 999.0, 1.0)])  # same id, other content
    assert broker.pending() == [first]
    fills = broker.on_bars([bar("AAA", T + MIN, 100.0)])
    assert len(fills) == 1 and fills[0].qty == 5.0
    broker.submit([first])  # replayed after the fill: ignored
    assert broker.pending() == []
    assert broker.on_bars([bar("AAA", T + 2 * MIN, 100.0)]) == []


def test_restore_and_cancel_all():
    broker = PaperBroker()
    broker.submit([order("OLD", T, 1.0)])
    restored = [order("A", T, 1.0), order("B", T, -2.0), order("A", T, 1.0)]
    broker.restore(restored)
    assert broker.pending() == restored[:2]
    assert broker.cancel_all() == restored[:2]
    assert broker.pending() == []
    assert broker.on_bars([bar("A", T + MIN, 1.0)]) == []


def test_restore_rejects_bad_orders_and_keeps_queue():
    broker = PaperBroker()
    keep = order("A", T, 1.0)
    broker.submit([keep])
    with pytest.raises(ValueError, match="qty"):
        broker.restore([order("B", T, math.nan)])
    assert broker.pending() == [keep]


@pytest.mark.parametrize("name", ["cost_bps", "slippage_bps"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5, "2", None, True])
def test_bad_bps_named(name, value):
    with pytest.raises(ValueError, match=name):
        PaperBroker(**{name: value})


def test_bad_orders_are_refused_before_queueing():
    broker = PaperBroker()
    with pytest.raises(ValueError, match="qty"):
        broker.submit([order("A", T, 1.0), order("B", T, math.inf)])
    assert broker.pending() == []
    with pytest.raises(TypeError, match="Order"):
        broker.submit([("A", T, 1.0)])
    with pytest.raises(ValueError, match="ts"):
        broker.submit([Order("x", 1.5, "A", 1.0, 1.0)])


def test_bad_open_raises_and_fills_nothing():
    broker = PaperBroker()
    broker.submit([order("A", T, 1.0), order("B", T, 1.0)])
    with pytest.raises(ValueError, match="'B'.*open=nan"):
        broker.on_bars([bar("A", T + MIN, 10.0), bar("B", T + MIN, math.nan)])
    assert len(broker.pending()) == 2
