"""Streaming classes of the microstructure / cross-asset / order-book features equal batch."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tests.features.stream_helpers import assert_stream_matches_batch, run_stream
from tests.features.test_book_features import random_book
from workbench.features import _micro  # noqa: F401  (registers the features)
from workbench.features._catalogue import get


@functools.cache
def real_inputs() -> dict[str, np.ndarray]:
    """Bundled daily universe (SP500, NASDAQ, AAPL, GOOG, IBM, MSFT; late listings, trailing
    NaNs after 2013 for the stocks) plus inner holes punched into some columns."""
    from workbench.data import load_universe

    b = load_universe("daily")
    out = {f: np.array(b[f], dtype=float) for f in ("open", "high", "low", "close", "volume")}
    rng = np.random.default_rng(0)
    T, N = out["close"].shape
    holes = np.zeros((T, N), bool)
    for j in (1, 3, 5):
        holes[rng.choice(np.arange(300, T - 300), size=40, replace=False), j] = True
    holes[1000:1010, 0] = True  # a gap in the market column
    for f in out:
        out[f][holes] = np.nan
    return out


def random_inputs(T=600, N=5, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    h = c * np.exp(rng.uniform(0, 0.02, (T, N)))
    lo = c * np.exp(-rng.uniform(0, 0.02, (T, N)))
    v = rng.integers(0, 5, (T, N)).astype(float) * 1000.0  # some zero volume
    c[:40, 1] = np.nan
    c[rng.random((T, N)) < 0.05] = np.nan
    for a in (h, lo, v):
        a[np.isnan(c)] = np.nan
    return {"high": h, "low": lo, "close": c, "volume": v}


CASES = [
    ("corwin_schultz", {}),
    ("corwin_schultz", {"window": 1}),
    ("corwin_schultz", {"window": 7}),
    ("roll", {}),
    ("roll", {"window": 2}),
    ("amihud", {}),
    ("amihud", {"window": 5, "scale": 1.0}),
    ("correlation", {}),
    ("correlation", {"market": 2, "window": 20, "min_periods": 10}),
    ("beta", {}),
    ("beta", {"market": 1, "window": 5, "min_periods": 3}),
    ("mean_pairwise_correlation", {}),
    ("mean_pairwise_correlation", {"window": 15, "min_periods": 5}),
]


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_stream_matches_batch_real_data(name, params):
    defn = get(name)
    data = real_inputs()
    assert_stream_matches_batch(defn, {f: data[f] for f in defn.inputs}, **params)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_stream_matches_batch_random_data(name, params):
    defn = get(name)
    data = random_inputs(seed=len(name))
    assert_stream_matches_batch(defn, {f: data[f] for f in defn.inputs}, **params)


def test_stream_is_exact_not_just_close():
    # the stream runs the batch's row kernels on the same state: bitwise equal
    data = random_inputs(seed=3)
    for name in ("roll", "correlation", "mean_pairwise_correlation"):
        defn = get(name)
        b = np.asarray(defn.batch(data["close"]))
        s = run_stream(defn, {"close": data["close"]})[..., 0]
        if b.ndim == 1:
            b = np.repeat(b[:, None], s.shape[1], axis=1)
        np.testing.assert_array_equal(s, b)


def test_stream_warm_up_and_holes():
    c = random_inputs(T=60, N=2, seed=4)["close"]
    c[:, 0] = 100 * np.exp(np.linspace(0, 0.3, 60) + 0.01 * np.sin(np.arange(60)))
    c[30, 0] = np.nan
    out = run_stream(get("roll"), {"close": c}, window=5)[:, 0, 0]
    assert np.isnan(out[:6]).all() and not np.isnan(out[6:30]).any()
    assert np.isnan(out[30]) and not np.isnan(out[31:]).any()


BOOK = ["spread", "relative_spread", "depth_imbalance", "weighted_mid", "depth", "price_impact"]


@pytest.mark.parametrize("name", BOOK)
def test_book_streams_match_batch(name):
    defn = get(name)
    bp, ap, bs, az = random_book(T=40, N=3, k=6, seed=5)
    ins = {"bid_px": bp, "ask_px": ap, "bid_sz": bs, "ask_sz": az}
    params = {"levels": 3} if "levels" in defn.params else {}
    assert_stream_matches_batch(defn, {f: ins[f] for f in defn.inputs}, **params)


def test_stream_parameter_errors():
    with pytest.raises(ValueError, match="window must be an int >= 2, got 1"):
        get("roll").stream(3, window=1)
    with pytest.raises(ValueError, match=r"market must be a column index in \[0, 3\)"):
        get("correlation").stream(3, market=5)
    s = get("beta").stream(3, market="B", symbols=("A", "B", "C"))
    assert s.market == 1
    with pytest.raises(ValueError, match="n_symbols must be >= 1"):
        get("amihud").stream(0)


# --------------------------------------------------------------------------- #
# mean pairwise correlation: clean (per-asset, rank-1) and dirty (per-pair) forms
# --------------------------------------------------------------------------- #


def _mpc_per_pair_reference(close: np.ndarray, w: int, minp: int) -> np.ndarray:
    """Plain per-pair algorithm (every pair its own Welford state, exact two-pass every
    ``w`` rows, flat tracking, 16 pair blocks summed in order): what the kernel must
    reproduce bit for bit whichever form each pair is in."""
    import math

    T, N = close.shape
    r = np.full((T, N), np.nan)
    last = np.full(N, np.nan)
    for t in range(T):
        for j in range(N):
            v = close[t, j]
            r[t, j] = math.log(v / last[j]) if v == v and last[j] == last[j] else np.nan
            if v == v:
                last[j] = v
    iu, ju = np.triu_indices(N, 1)
    P = iu.size
    bounds = np.linspace(0, P, min(16, P) + 1).round().astype(int)
    st = np.zeros((P, 6))  # n, mx, my, cxx, cyy, cxy
    never = -(1 << 62)
    flat = [[0.0, 0.0, never, never, never] for _ in range(P)]
    out = np.full(T, np.nan)
    for t in range(T):
        lo = t - w + 1
        rc = np.full(P, np.nan)
        for p in range(P):
            i, j = iu[p], ju[p]
            n, mx, my, cxx, cyy, cxy = st[p]
            if t >= w:
                xo, yo = r[t - w, i], r[t - w, j]
                if xo == xo and yo == yo:
                    nn = n - 1.0
                    if nn <= 0.0:
                        n = mx = my = cxx = cyy = cxy = 0.0
                    else:
                        mxn = mx - (xo - mx) / nn
                        myn = my - (yo - my) / nn
                        cxx -= (xo - mxn) * (xo - mx)
                        cyy -= (yo - myn) * (yo - my)
                        cxy -= (xo - mxn) * (yo - my)
                        n, mx, my = nn, mxn, myn
            x, y = r[t, i], r[t, j]
            if x == x and y == y:
                nn = n + 1.0
                dx, dy = x - mx, y - my
                mxn, myn = mx + dx / nn, my + dy / nn
                cxx += dx * (x - mxn)
                cyy += dy * (y - myn)
                cxy += dx * (y - myn)
                n, mx, my = nn, mxn, myn
                f = flat[p]
                if f[2] != never:
                    if x != f[0]:
                        f[3] = f[2]
                    if y != f[1]:
                        f[4] = f[2]
                f[0], f[1], f[2] = x, y, t
            if (t + 1) % w == 0:
                rows = r[t - w + 1 : t + 1]
                ok = ~np.isnan(rows[:, i]) & ~np.isnan(rows[:, j])
                n = sx = sy = 0.0
                for k in range(w):
                    if ok[k]:
                        n += 1.0
                        sx += rows[k, i]
                        sy += rows[k, j]
                mx = sx / n if n > 0 else 0.0
                my = sy / n if n > 0 else 0.0
                cxx = cyy = cxy = 0.0
                for k in range(w):
                    if ok[k]:
                        a, b = rows[k, i] - mx, rows[k, j] - my
                        cxx += a * a
                        cyy += b * b
                        cxy += a * b
            st[p] = n, mx, my, cxx, cyy, cxy
            f = flat[p]
            if (close[t, i] == close[t, i] and close[t, j] == close[t, j] and n >= minp
                    and f[3] >= lo and f[4] >= lo and cxx > 0.0 and cyy > 0.0):
                v = cxy / math.sqrt(cxx * cyy)
                rc[p] = 1.0 if v > 1.0 else (-1.0 if v < -1.0 else v)
        s = k = 0.0
        for b in range(len(bounds) - 1):
            blk = rc[bounds[b] : bounds[b + 1]]
            a = 0.0
            for v in blk:
                if v == v:
                    a += v
            s += a
            k += float(np.sum(~np.isnan(blk)))
        out[t] = s / k if k > 0 else np.nan
    return out


def _mpc_ragged(T=160, N=8, seed=0):
    """Late listings, scattered holes, a market holiday, a group with identical holes, a
    lone-valid row and a constant stretch: pairs turn dirty and clean again."""
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    c[:25, 1] = np.nan
    c[:70, 2] = np.nan
    c[rng.random((T, N)) < 0.04] = np.nan
    c[50:53] = np.nan  # market holiday
    c[90:94, 3:6] = np.nan  # identical holes in a group
    c[120, 1:] = np.nan  # only asset 0 has a bar
    c[100:130, 4] = c[99, 4]  # constant: zero variance
    return c


@pytest.mark.parametrize("w,minp", [(10, 10), (10, 4), (2, 2), (23, 5), (70, 30)])
def test_mean_pairwise_correlation_bitwise_equals_per_pair_reference(w, minp):
    from workbench.features._micro import mean_pairwise_correlation

    c = _mpc_ragged(seed=w)
    ref = _mpc_per_pair_reference(c, w, minp)
    assert np.isfinite(ref).sum() > 20
    np.testing.assert_array_equal(mean_pairwise_correlation(c, w, minp), ref)
    s = run_stream(get("mean_pairwise_correlation"), {"close": c}, window=w,
                   min_periods=minp)[..., 0]
    np.testing.assert_array_equal(s, np.repeat(ref[:, None], c.shape[1], axis=1))


def test_mean_pairwise_correlation_pairs_turn_dirty_and_clean_again():
    from workbench.features import _cpu_micro as K

    c = _mpc_ragged(seed=1)
    T, N = c.shape
    feat = get("mean_pairwise_correlation").stream(N, window=10)
    nd = feat._state[8]
    out = np.empty((N, 1))
    counts = []
    for t in range(T):
        feat.update({"close": np.ascontiguousarray(c[t])}, out)
        counts.append(int(nd[0]))
    counts = np.array(counts)
    P = N * (N - 1) // 2
    assert counts.max() > 0 and counts[-1] < counts.max()  # some pairs came back clean
    assert counts.min() == 0 and counts.max() <= P
    assert K.pair_offsets(N)[-2] == P - 1  # packed row-major: the last pair is (N-2, N-1)


def test_mean_pairwise_correlation_clean_panel_keeps_every_pair_clean():
    c = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, (90, 12)), axis=0))
    feat = get("mean_pairwise_correlation").stream(12, window=15)
    out = np.empty((12, 1))
    for t in range(90):
        feat.update({"close": np.ascontiguousarray(c[t])}, out)
        assert feat._state[8][0] == 0
    rets = np.diff(np.log(c[-16:]), axis=0)  # the last window: 15 rows of returns
    ref = np.corrcoef(rets, rowvar=False)[np.triu_indices(12, 1)].mean()
    np.testing.assert_allclose(out[:, 0], ref, rtol=1e-10)
