import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.live._types import Order
from workbench.risk import RiskLimits, Verdict, check_orders

PRICES = {"AAA": 100.0, "BBB": 50.0, "CCC": 100.0}
FRESH = {"AAA": 1.0, "BBB": 1.0, "CCC": 1.0}


def order(symbol: str, qty: float, ts: int = 1) -> Order:
    return Order(f"{ts}-{symbol}", ts, symbol, qty, PRICES.get(symbol, 1.0))


def run(orders, *, positions=None, prices=PRICES, equity=1_000_000.0, peak_equity=None,
        bar_age_s=FRESH, limits=None):
    return check_orders(
        orders,
        positions={} if positions is None else positions,
        prices=prices,
        equity=equity,
        peak_equity=equity if peak_equity is None else peak_equity,
        bar_age_s=bar_age_s,
        limits=RiskLimits() if limits is None else limits,
    )


def test_clean_order_is_approved():
    (v,) = run([order("AAA", 500)])
    assert v.approved and v.reasons == ()
    assert v.order == order("AAA", 500)


# ---------------------------------------------------------------- each limit alone


def test_order_notional_alone():
    (v,) = run([order("AAA", 1_200)])  # 120,000
    assert not v.approved
    assert v.reasons == ("order notional AAA 120,000 > max 100,000",)
    # sells are measured by absolute value too
    (v,) = run([order("AAA", -1_200)], positions={"AAA": 2_000})
    assert v.reasons == ("order notional AAA 120,000 > max 100,000",)


def test_order_notional_at_the_limit_passes():
    (v,) = run([order("AAA", 1_000)])  # exactly 100,000
    assert v.approved


def test_position_notional_alone():
    # 2,000 held (200,000) + 600 (60,000) -> 260,000
    (v,) = run([order("AAA", 600)], positions={"AAA": 2_000})
    assert v.reasons == ("position notional AAA 260,000 > max 250,000",)
    # short side
    (v,) = run([order("AAA", -600)], positions={"AAA": -2_000})
    assert v.reasons == ("position notional AAA 260,000 > max 250,000",)


def test_gross_exposure_alone():
    # book: +100,000 AAA, -100,000 BBB on equity 150,000 -> gross 133.3 %, net 0
    book = {"AAA": 1_000, "BBB": -2_000}
    (v,) = run([order("CCC", 500)], positions=book, equity=150_000.0)  # +50,000
    assert v.reasons == ("gross exposure 166.7% of equity > max 150.0%",)


def test_net_exposure_alone():
    # +150,000 AAA on equity 200,000; +60,000 BBB -> net 105 %, gross 105 %
    (v,) = run([order("BBB", 1_200)], positions={"AAA": 1_500}, equity=200_000.0)
    assert v.reasons == ("net exposure 105.0% of equity > max 100.0%",)
    (v,) = run([order("BBB", -1_200)], positions={"AAA": -1_500}, equity=200_000.0)
    assert v.reasons == ("net exposure 105.0% of equity > max 100.0%",)


def test_stale_data_alone():
    ages = {**FRESH, "AAA": 7.5}
    (v,) = run([order("AAA", 10)], bar_age_s=ages)
    assert v.reasons == ("stale data for AAA: last bar 7.5 s old > max 5.0 s",)
    (v,) = run([order("AAA", 10)], bar_age_s={**FRESH, "AAA": 5.0})  # at the limit: fresh
    assert v.approved
    (v,) = run([order("AAA", 10)], bar_age_s=ages, limits=RiskLimits(stale_after_s=10.0))
    assert v.approved


def test_missing_or_nan_bar_age_is_rejected():
    (v,) = run([order("AAA", 10)], bar_age_s={"BBB": 0.1})
    assert v.reasons == ("no bar age for AAA: data freshness unknown",)
    (v,) = run([order("AAA", 10)], bar_age_s={"AAA": math.nan})
    assert v.reasons == ("no bar age for AAA: data freshness unknown",)
    (v,) = run([order("AAA", 10)], bar_age_s={"AAA": -100.0})  # clocks disagree
    assert v.reasons == ("bar age for AAA is negative (-100.0 s): the bar is stamped after the "
                         "clock that measures its age; data freshness unknown",)


def test_missing_and_invalid_price():
    (v,) = run([order("ZZZ", 10)], bar_age_s={"ZZZ": 0.0})
    assert v.reasons == ("no price for ZZZ",)
    for bad in (0.0, -1.0, math.nan, math.inf):
        (v,) = run([order("AAA", 10)], prices={**PRICES, "AAA": bad})
        assert not v.approved
        assert len(v.reasons) == 1 and v.reasons[0].startswith("price for AAA is invalid")


def test_non_finite_quantity_is_rejected_not_raised():
    (v,) = run([order("AAA", math.nan)])
    assert not v.approved
    assert v.reasons == ("order quantity for AAA is not finite (nan)",)


def test_drawdown_kill_switch():
    # equity 76,900 vs peak 100,000 -> drawdown 23.1 %
    kw = dict(positions={"AAA": 300}, equity=76_900.0, peak_equity=100_000.0)
    reason = "drawdown kill switch: 23.1% >= 20.0%"
    buy, sell, flip_big, flip_small = run(
        [order("AAA", 10), order("AAA", -100), order("AAA", -500), order("AAA", -150)], **kw
    )
    assert buy.reasons == (reason,)
    assert sell.approved  # 300 -> 200
    assert flip_big.reasons == (reason,)  # 200 -> -300: |position| grows
    assert flip_small.approved  # 200 -> 50
    (short_new,) = run([order("BBB", -10)], **kw)
    assert short_new.reasons == (reason,)
    # below the threshold nothing is blocked
    (v,) = run([order("AAA", 10)], positions={"AAA": 300}, equity=80_100.0,
               peak_equity=100_000.0)
    assert v.approved
    # exactly at the threshold the switch is on (>=)
    (v,) = run([order("AAA", 10)], positions={"AAA": 300}, equity=80_000.0,
               peak_equity=100_000.0)
    assert v.reasons == ("drawdown kill switch: 20.0% >= 20.0%",)


def test_every_limit_passes_at_the_boundary_and_fails_just_over_it():
    lim = RiskLimits(max_position_notional=250_000.0, max_order_notional=100_000.0,
                     max_gross_exposure=1.5, max_net_exposure=1.0, max_drawdown=0.2,
                     stale_after_s=5.0)
    # order notional exactly 100,000; position notional exactly 250,000 (150,000 held)
    (v,) = run([order("AAA", 1_000)], positions={"AAA": 1_500}, limits=lim)
    assert v.approved
    # gross exactly 150 % and net exactly 100 % of equity 200,000: +250,000 AAA, -50,000 BBB
    (v,) = run([order("BBB", -1_000)], positions={"AAA": 2_500}, equity=200_000.0, limits=lim)
    assert v.approved
    (v,) = run([order("AAA", 1_000)], positions={"AAA": 1_000}, equity=200_000.0, limits=lim)
    assert v.approved  # net exactly 100 %
    # drawdown exactly 20 % (up to float rounding: 1 - 80,000 / 100,000) trips the switch
    (v,) = run([order("AAA", 1)], equity=80_000.0, peak_equity=100_000.0, limits=lim)
    assert v.reasons == ("drawdown kill switch: 20.0% >= 20.0%",)
    (v,) = run([order("AAA", 1)], equity=80_000.01, peak_equity=100_000.0, limits=lim)
    assert v.approved
    (v,) = run([order("AAA", 1)], bar_age_s={"AAA": 5.0}, limits=lim)
    assert v.approved


def test_reasons_just_over_a_limit_do_not_print_the_limit_twice():
    # a breach by less than the printed precision shows the digits that tell it apart
    prices = {**PRICES, "AAA": 100.0004}
    (v,) = run([order("AAA", 1_000)], prices=prices)  # 100,000.4
    assert v.reasons == ("order notional AAA 100,000.4 > max 100,000.0",)
    (v,) = run([order("AAA", 10)], bar_age_s={"AAA": 5.04})
    assert v.reasons == ("stale data for AAA: last bar 5.04 s old > max 5.00 s",)
    # 50,000 AAA held + 100,000 CCC bought = gross 150,000 on equity 150,000 / 1.50004
    (v,) = run([order("CCC", 1_000)], positions={"AAA": 500}, equity=150_000.0 / 1.50004,
               limits=RiskLimits(max_net_exposure=2.0))
    assert v.reasons == ("gross exposure 150.004% of equity > max 150.000%",)
    for r in v.reasons:
        value, limit = r.rsplit(" > max ", 1)
        assert value.split()[-1] != limit.split()[0].rstrip("%s")


def test_peak_below_equity_means_no_drawdown():
    (v,) = run([order("AAA", 10)], equity=100_000.0, peak_equity=50_000.0)
    assert v.approved


# ---------------------------------------------------------------- combinations


def test_several_reasons_at_once():
    v, = run(
        [order("AAA", 3_000)],  # 300,000 order and position, gross/net 300 % of 100,000
        equity=100_000.0, peak_equity=200_000.0, bar_age_s={"AAA": 60.0},
    )
    assert not v.approved
    assert v.reasons == (
        "stale data for AAA: last bar 60.0 s old > max 5.0 s",
        "drawdown kill switch: 50.0% >= 20.0%",
        "order notional AAA 300,000 > max 100,000",
        "position notional AAA 300,000 > max 250,000",
        "gross exposure 300.0% of equity > max 150.0%",
        "net exposure 300.0% of equity > max 100.0%",
    )


def test_sequential_book_update_position():
    # 100,000 held; two buys of 90,000 each fit alone but not together
    first, second = run([order("AAA", 900, 1), order("AAA", 900, 2)], positions={"AAA": 1_000})
    assert first.approved
    assert second.reasons == ("position notional AAA 280,000 > max 250,000",)
    # each alone is fine
    assert run([order("AAA", 900, 2)], positions={"AAA": 1_000})[0].approved


def test_sequential_book_update_gross_across_symbols():
    # equity 100,000; 2 orders of 80,000 in different symbols: 80 % then 160 % gross
    lim = RiskLimits(max_net_exposure=2.0)
    a, b = run([order("AAA", 800), order("CCC", -800)], equity=100_000.0, limits=lim)
    assert a.approved
    assert b.reasons == ("gross exposure 160.0% of equity > max 150.0%",)


def test_rejected_order_does_not_update_book():
    first, second, third = run(
        [order("AAA", 2_000, 1), order("AAA", 900, 2), order("AAA", 700, 3)],
        positions={"AAA": 1_000},
    )
    assert first.reasons == ("order notional AAA 200,000 > max 100,000",
                             "position notional AAA 300,000 > max 250,000")
    assert second.approved  # book still 100,000 -> 190,000 (would be 390,000 had #1 applied)
    assert third.reasons == ("position notional AAA 260,000 > max 250,000",)


def test_reducing_orders_pass_when_already_over_limits():
    # a price move left the book over every exposure limit: 300,000 AAA on equity 100,000
    book = {"AAA": 3_000}
    (v,) = run([order("AAA", -100)], positions=book, equity=100_000.0)  # still 290,000
    assert v.approved
    (v,) = run([order("AAA", 1)], positions=book, equity=100_000.0)
    assert v.reasons == (
        "position notional AAA 300,100 > max 250,000",
        "gross exposure 300.1% of equity > max 150.0%",
        "net exposure 300.1% of equity > max 100.0%",
    )


def test_unpriced_held_symbol_fails_closed_for_increases():
    book = {"AAA": 100, "QQQ": 10}
    inc, dec = run([order("BBB", 10), order("AAA", -50)], positions=book)
    assert inc.reasons == ("cannot value the book: no valid price for QQQ",)
    assert dec.approved


def test_non_positive_equity_only_allows_reductions():
    book = {"AAA": 100}
    inc, dec = run([order("AAA", 10), order("AAA", -10)], positions=book, equity=-5_000.0,
                   peak_equity=100_000.0)
    assert not inc.approved
    assert "equity -5,000 <= 0: exposure undefined, only reducing orders are allowed" in inc.reasons
    assert dec.approved


def test_zero_quantity_order_is_approved():
    (v,) = run([order("AAA", 0.0)])
    assert v.approved


def test_inputs_are_not_mutated():
    book = {"AAA": 100.0}
    run([order("AAA", 100), order("BBB", 100)], positions=book)
    assert book == {"AAA": 100.0}


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="equity must be finite"):
        run([order("AAA", 1)], equity=math.nan, peak_equity=1.0)
    with pytest.raises(ValueError, match="peak_equity must be finite and > 0"):
        run([order("AAA", 1)], peak_equity=0.0)
    with pytest.raises(ValueError, match=r"positions\['AAA'\] must be finite"):
        run([order("AAA", 1)], positions={"AAA": math.nan})
    with pytest.raises(ValueError, match=r"prices\['AAA'\] must be a number"):
        run([order("AAA", 1)], prices={"AAA": "x"})
    with pytest.raises(TypeError, match="limits must be a RiskLimits"):
        run([order("AAA", 1)], limits={"max_order_notional": 1})
    with pytest.raises(TypeError, match=r"orders\[1\] must be an Order"):
        run([order("AAA", 1), ("AAA", 1)])
    with pytest.raises(TypeError, match="positions must be a mapping"):
        run([order("AAA", 1)], positions=[("AAA", 1)])


# ---------------------------------------------------------------- RiskLimits / Verdict


FIELDS = ["max_position_notional", "max_order_notional", "max_gross_exposure",
          "max_net_exposure", "max_drawdown", "stale_after_s"]


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "1", None, True])
def test_limits_validation_names_the_field(name, bad):
    with pytest.raises(ValueError, match=f"RiskLimits.{name} "):
        RiskLimits(**{name: bad})
    with pytest.raises(ValueError, match=f"RiskLimits.{name} "):
        RiskLimits().replace(**{name: bad})


def test_limits_drawdown_is_a_fraction():
    with pytest.raises(ValueError, match="max_drawdown"):
        RiskLimits(max_drawdown=1.5)
    assert RiskLimits(max_drawdown=1).max_drawdown == 1.0


def test_limits_replace_returns_validated_copy():
    base = RiskLimits()
    new = base.replace(max_order_notional=5_000, stale_after_s=2)
    assert new.max_order_notional == 5_000.0 and isinstance(new.max_order_notional, float)
    assert new.stale_after_s == 2.0
    assert new.max_position_notional == base.max_position_notional
    assert base.max_order_notional == 100_000.0  # original untouched
    with pytest.raises(ValueError, match="no field"):
        base.replace(max_leverage=2.0)
    with pytest.raises(AttributeError):
        base.max_drawdown = 0.5  # frozen


def test_limits_defaults():
    lim = RiskLimits()
    assert (lim.max_position_notional, lim.max_order_notional, lim.max_gross_exposure,
            lim.max_net_exposure, lim.max_drawdown, lim.stale_after_s) == (
        250_000.0, 100_000.0, 1.5, 1.0, 0.2, 5.0)


def test_verdict_consistency():
    o = order("AAA", 1)
    with pytest.raises(ValueError, match="approved Verdict must have no reasons"):
        Verdict(o, True, ("x",))
    with pytest.raises(ValueError, match="rejected Verdict needs at least one reason"):
        Verdict(o, False, ())
    v = Verdict(o, False, ["a", "b"])
    assert v.reasons == ("a", "b")


# ---------------------------------------------------------------- property


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["AAA", "BBB", "CCC"]),
                  st.integers(min_value=-3_000, max_value=3_000)),
        max_size=25,
    ),
    st.floats(min_value=50_000.0, max_value=400_000.0),
)
def test_approved_orders_keep_a_compliant_book_compliant(trades, equity):
    lim = RiskLimits()
    orders = [order(s, float(q), i) for i, (s, q) in enumerate(trades)]
    verdicts = run(orders, equity=equity)
    book: dict[str, float] = {}
    for v in verdicts:
        assert v.approved == (not v.reasons)
        if not v.approved:
            continue
        o = v.order
        assert abs(o.qty) * PRICES[o.symbol] <= lim.max_order_notional
        book[o.symbol] = book.get(o.symbol, 0.0) + o.qty
        notional = {s: q * PRICES[s] for s, q in book.items()}
        assert all(abs(x) <= lim.max_position_notional for x in notional.values())
        assert sum(abs(x) for x in notional.values()) / equity <= lim.max_gross_exposure + 1e-12
        assert abs(sum(notional.values())) / equity <= lim.max_net_exposure + 1e-12
