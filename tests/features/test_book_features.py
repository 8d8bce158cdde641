"""L2 order-book features on generated books with known answers.

No installed package ships real L2 order-book data (searched the venv's site-packages
for CSVs with order-book columns), so the books here are generated: a hand-written
two-snapshot book with answers worked out by hand, and random valid books (strictly
ordered levels, absent levels, one-sided and empty books) checked against direct
numpy formulas written in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features.features_helpers import assert_close
from workbench.features import _micro as M
from workbench.features._catalogue import get

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_book(T=50, N=3, k=6, seed=0, p0=100.0, absent=True):
    """Valid random books: bids strictly decreasing, asks strictly increasing."""
    rng = np.random.default_rng(seed)
    mid = p0 * np.exp(np.cumsum(rng.normal(0, 0.001, (T, N)), axis=0))
    half = rng.uniform(0.005, 0.05, (T, N))
    steps_b = rng.uniform(0.01, 0.1, (T, N, k))
    steps_a = rng.uniform(0.01, 0.1, (T, N, k))
    steps_b[..., 0] = 0.0
    steps_a[..., 0] = 0.0
    bid_px = (mid - half)[..., None] - np.cumsum(steps_b, axis=-1)
    ask_px = (mid + half)[..., None] + np.cumsum(steps_a, axis=-1)
    bid_sz = rng.integers(1, 500, (T, N, k)).astype(float)
    ask_sz = rng.integers(1, 500, (T, N, k)).astype(float)
    if absent:
        # shallow books: levels from a random depth on are absent
        depth_b = rng.integers(0, k + 1, (T, N))
        depth_a = rng.integers(0, k + 1, (T, N))
        lv = np.arange(k)
        gone_b = lv >= depth_b[..., None]
        gone_a = lv >= depth_a[..., None]
        bid_px[gone_b] = np.nan
        bid_sz[gone_b] = np.nan
        ask_px[gone_a] = np.nan
        ask_sz[gone_a] = np.nan
    return bid_px, ask_px, bid_sz, ask_sz


def hand_book():
    """Two snapshots, one symbol, three levels."""
    nan = np.nan
    bid_px = np.array([[[99.0, 98.5, 98.0]], [[99.5, nan, nan]]])
    ask_px = np.array([[[101.0, 101.5, 102.0]], [[nan, nan, nan]]])
    bid_sz = np.array([[[10.0, 20.0, 30.0]], [[5.0, nan, nan]]])
    ask_sz = np.array([[[30.0, 5.0, 5.0]], [[nan, nan, nan]]])
    return bid_px, ask_px, bid_sz, ask_sz


def test_hand_computed_snapshot():
    bp, ap, bs, az = hand_book()
    # snapshot 0: spread 2, mid 100, microprice (99*30 + 101*10)/40 = 99.5
    np.testing.assert_allclose(M.spread(bp, ap)[0, 0], 2.0)
    np.testing.assert_allclose(M.relative_spread(bp, ap)[0, 0], 0.02)
    np.testing.assert_allclose(M.weighted_mid(bp, ap, bs, az)[0, 0], 99.5)
    np.testing.assert_allclose(M.price_impact(bp, ap, bs, az)[0, 0], 0.005)
    # top 2 levels: bids 30, asks 35; all 3: bids 60, asks 40
    np.testing.assert_allclose(M.depth(bp, ap, bs, az, levels=2)[0, 0], 65.0)
    np.testing.assert_allclose(M.depth_imbalance(bp, ap, bs, az, levels=2)[0, 0], -5 / 65)
    np.testing.assert_allclose(M.depth_imbalance(bp, ap, bs, az, levels=5)[0, 0], 20 / 100)
    np.testing.assert_allclose(M.depth(bp, ap, bs, az)[0, 0], 100.0)
    # snapshot 1: one-sided book (no asks) -> NaN everywhere
    for f in (M.spread, M.relative_spread):
        assert np.isnan(f(bp, ap)[1, 0])
    for f in (M.weighted_mid, M.price_impact, M.depth, M.depth_imbalance):
        assert np.isnan(f(bp, ap, bs, az)[1, 0])


def test_against_numpy_reference():
    bp, ap, bs, az = random_book(T=80, N=4, k=7, seed=1)
    b0, a0, bs0, as0 = bp[..., 0], ap[..., 0], bs[..., 0], az[..., 0]
    two = ~np.isnan(b0) & ~np.isnan(a0)
    assert two.any() and (~two).any()
    mid = (a0 + b0) / 2
    wm = (b0 * as0 + a0 * bs0) / (bs0 + as0)
    L = 5
    B = np.nansum(bs[..., :L], axis=-1)
    A = np.nansum(az[..., :L], axis=-1)
    assert_close(M.spread(bp, ap), a0 - b0)
    assert_close(M.relative_spread(bp, ap), (a0 - b0) / mid)
    assert_close(M.weighted_mid(bp, ap, bs, az), wm)
    assert_close(M.price_impact(bp, ap, bs, az), np.abs(wm - mid) / mid)
    assert_close(M.depth(bp, ap, bs, az), np.where(two, A + B, np.nan))
    with np.errstate(invalid="ignore"):
        di = np.where(two, (B - A) / (B + A), np.nan)
    assert_close(M.depth_imbalance(bp, ap, bs, az), di)
    assert_close(M.depth(bp, ap, bs, az, levels=50), M.depth(bp, ap, bs, az, levels=7))


def test_zero_sizes_give_nan_not_inf():
    bp, ap, bs, az = random_book(T=5, N=2, k=3, seed=2, absent=False)
    bs[0, 0] = 0.0
    az[0, 0] = 0.0
    assert np.isnan(M.depth_imbalance(bp, ap, bs, az)[0, 0])
    assert np.isnan(M.weighted_mid(bp, ap, bs, az)[0, 0])
    assert M.depth(bp, ap, bs, az)[0, 0] == 0.0
    assert np.isfinite(M.weighted_mid(bp, ap, bs, az)[1:]).all()


def test_dtype_shapes_and_errors():
    bp, ap, bs, az = random_book(T=10, N=2, k=3, seed=3)
    assert M.spread(bp, ap).shape == (10, 2)
    assert M.depth(bp, ap, bs, az, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"bid_px must be a 3-D \(T, N, k\) array"):
        M.spread(bp[:, 0], ap[:, 0])
    with pytest.raises(ValueError, match="ask_px must have the shape of bid_px"):
        M.spread(bp, ap[:, :, :2])
    with pytest.raises(ValueError, match="levels must be an int >= 1, got 0"):
        M.depth(bp, ap, bs, az, levels=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        M.spread(bp, ap, backend="tpu")
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        M.spread(bp, ap, dtype=np.int32)


@pytest.mark.parametrize("field", ["bid_px", "ask_px", "bid_sz", "ask_sz"])
def test_inf_in_a_book_is_refused_like_the_stream(field):
    # an inf size used to give depth inf and imbalance NaN silently (the stream and the
    # OHLCV features refuse inf); every book feature and FeatureSet now name the field
    from workbench.features import FeatureSet

    book = dict(zip(("bid_px", "ask_px", "bid_sz", "ask_sz"),
                    random_book(T=6, N=2, k=3, seed=5, absent=False)))
    book[field][2, 1, 1] = -np.inf if field == "bid_px" else np.inf
    for name in ("spread", "relative_spread", "depth_imbalance", "weighted_mid", "depth",
                 "price_impact"):
        defn = get(name)
        if field not in defn.inputs:
            continue
        with pytest.raises(ValueError, match=f"{field} contains \\+/-inf"):
            defn.batch(*(book[f] for f in defn.inputs))
        with pytest.raises(ValueError, match=f"{field} contains \\+/-inf"):
            FeatureSet(features=[name]).compute(book)


def test_a_book_without_levels_is_refused_by_name():
    # k = 0 used to raise a bare IndexError from the kernels (batch and stream)
    from workbench.features import FeatureStream

    empty = np.zeros((4, 2, 0))
    with pytest.raises(ValueError, match=r"bid_px must be a 3-D \(T, N, k\) array with "
                                         r"k >= 1 levels, got shape \(4, 2, 0\)"):
        M.spread(empty, empty)
    with pytest.raises(ValueError, match="k >= 1 levels"):
        M.depth(empty, empty, empty, empty)
    fs = FeatureStream(["spread"], ["a", "b"])
    with pytest.raises(ValueError, match=r"bar field 'bid_px' must have shape \(N, k\), "
                                         r"k >= 1, with N=2 symbols, got \(2, 0\)"):
        fs.update({"bid_px": np.zeros((2, 0)), "ask_px": np.zeros((2, 0))})
    with pytest.raises(ValueError, match=r"block field 'bid_px' must have shape "
                                         r"\(B, 2, k\), k >= 1, got \(4, 2, 0\)"):
        fs.update_many({"bid_px": empty, "ask_px": empty})
    bp, ap, _, _ = random_book(T=2, N=2, k=2, seed=1, absent=False)
    np.testing.assert_array_equal(fs.update({"bid_px": bp[0], "ask_px": ap[0]}),
                                  M.spread(bp, ap)[:1].T)


def test_registry_entries():
    for name in ("spread", "relative_spread", "depth_imbalance", "weighted_mid", "depth",
                 "price_impact"):
        d = get(name)
        assert d.group == "order-book" and d.stream is not None
        assert d.inputs[:2] == ("bid_px", "ask_px")
    assert get("depth").params == {"levels": 5}


# --------------------------------------------------------------------------- #
# properties
# --------------------------------------------------------------------------- #


@st.composite
def books(draw):
    T = draw(st.integers(1, 30))
    N = draw(st.integers(1, 3))
    k = draw(st.integers(1, 6))
    return random_book(T, N, k, seed=draw(st.integers(0, 2**32 - 1)),
                       p0=draw(st.floats(1.0, 1e4)), absent=draw(st.booleans()))


@SETTINGS
@given(b=books(), c=st.floats(-0.5, 1e3), levels=st.integers(1, 6))
def test_shift_invariance(b, c, levels):
    bp, ap, bs, az = b
    sp, sa = bp + c, ap + c  # adding c to every price keeps the book valid
    scale = np.abs(np.nan_to_num(ap)).max() + abs(c)
    tol = dict(rtol=0, atol=1e-12 * scale)
    assert_close(M.spread(sp, sa), M.spread(bp, ap), **tol)
    assert_close(M.depth(sp, sa, bs, az, levels), M.depth(bp, ap, bs, az, levels), rtol=0)
    assert_close(M.depth_imbalance(sp, sa, bs, az, levels),
                 M.depth_imbalance(bp, ap, bs, az, levels), rtol=0)
    d0 = M.weighted_mid(bp, ap, bs, az) - (bp[..., 0] + ap[..., 0]) / 2
    d1 = M.weighted_mid(sp, sa, bs, az) - (sp[..., 0] + sa[..., 0]) / 2
    assert_close(d1, d0, rtol=0, atol=1e-11 * scale)


@SETTINGS
@given(b=books(), c=st.floats(1e-3, 1e3))
def test_scale_invariance_of_relative_measures(b, c):
    bp, ap, bs, az = b
    # a spread is a small difference of large prices: rounding is amplified by mid / spread
    assert_close(M.relative_spread(bp * c, ap * c), M.relative_spread(bp, ap), rtol=1e-9)
    assert_close(M.price_impact(bp * c, ap * c, bs, az), M.price_impact(bp, ap, bs, az),
                 rtol=1e-9, atol=1e-15)
    assert_close(M.spread(bp * c, ap * c), M.spread(bp, ap) * c, rtol=1e-9)
