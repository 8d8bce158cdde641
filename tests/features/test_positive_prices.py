"""Prices <= 0: a clear ValueError from every feature on price ratios or logs; no kernel crash.

NaN marks a missing bar and stays allowed; a finite price <= 0 is an input error for the
features whose docstrings ask for positive prices (``FeatureDef.positive``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.features.test_ta_parity import random_ohlcv
from workbench import features as ft
from workbench.features import FeatureSet, _api
from workbench.features._catalogue import get
from workbench.features._feature_stream import FeatureStream
from workbench.features._featureset import load_catalogue

T, N = 300, 3


def _ohlcv(bad: float | None = None, row: int = 100, col: int = 1) -> dict[str, np.ndarray]:
    d = random_ohlcv(T, N, seed=7)
    if bad is not None:
        for f in ("open", "high", "low", "close"):
            d[f][row, col] = bad
    return d


#: Catalogue features on price ratios or log prices (their docstrings ask for positive prices).
POSITIVE = ("returns", "log_returns", "rolling_volatility", "ex_ante_volatility",
            "normalised_return", "roc", "vol_of_vol", "skewness", "kurtosis", "parkinson",
            "garman_klass", "corwin_schultz", "roll", "amihud", "correlation", "beta",
            "mean_pairwise_correlation")


def test_catalogue_marks_the_price_ratio_features():
    assert {n for n, d in load_catalogue().items() if getattr(d, "positive", ())} == set(POSITIVE)


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_batch_function_names_the_input_and_first_position(name, bad):
    load_catalogue()
    d = get(name)
    field = "high" if name in ("parkinson", "corwin_schultz") else (
        "open" if name == "garman_klass" else "close")
    x = _ohlcv(bad, row=100, col=1)
    x[field][150, 0] = bad  # a later one is not the first
    with pytest.raises(ValueError, match=rf"^{field} must hold positive prices \(NaN marks a "
                                         rf"missing bar\); got {bad!r} at row 100, column 1$"):
        d.batch(*(x[f] for f in d.inputs))
    # (T,) input: the row only
    with pytest.raises(ValueError, match=rf"got {bad!r} at row 100$"):
        d.batch(*(x[f][:, 1] for f in d.inputs))
    # NaN is a missing bar, not an error
    x = _ohlcv(np.nan)
    d.batch(*(x[f] for f in d.inputs))


@pytest.mark.parametrize("fn", [ft.log_returns, ft.simple_returns, ft.ex_ante_volatility,
                                ft.normalised_returns, ft.deep_momentum_features,
                                ft.rolling_skewness, ft.rolling_kurtosis, ft.roll_spread,
                                ft.mean_pairwise_correlation])
def test_public_functions_reject_a_zero_price(fn):
    p = _ohlcv()["close"]
    p[100, 2] = 0.0
    with pytest.raises(ValueError, match=r"close must hold positive prices.*row 100, column 2"):
        fn(p)
    with pytest.raises(ValueError, match=r"close must hold positive prices.*row 100, column 2"):
        ft.rolling_volatility(p, 20)
    with pytest.raises(ValueError, match=r"close must hold positive prices.*row 100, column 2"):
        ft.rolling_correlation(p, 0, 20)


def test_difference_features_still_take_any_finite_series():
    x = np.sin(np.arange(200.0)) * 5  # crosses zero: not a price-ratio feature
    assert np.isfinite(ft.sma(x, 5)[-1]) and np.isfinite(ft.rsi(x, 5)[-1])
    FeatureSet(features=["sma", "ema", "rsi", "macd"]).compute({"close": x[:, None]})


def test_featureset_names_field_row_and_symbol():
    d = _ohlcv()
    d["high"][120, 2] = 0.0
    frames = {f: pd.DataFrame(v, columns=["A", "B", "C"]) for f, v in d.items()}
    fs = FeatureSet(features=["rsi", ("rolling_volatility", {"window": 20}), "parkinson"])
    for data, sym in ((d, "x2"), (frames, "C")):
        with pytest.raises(ValueError, match=rf"^high must hold positive prices \(NaN marks a "
                                             rf"missing bar\); got 0.0 at row 120, column 2 "
                                             rf"\(symbol '{sym}'\)$"):
            fs.compute(data)
    close = d["close"].copy()
    close[130, 2] = 0.0
    with pytest.raises(ValueError, match=r"close must hold positive prices.*row 130, column 2 "
                                         r"\(symbol 'x2'\)"):
        FeatureSet(features=["returns"]).compute({"close": close})  # the fused kernel
    with pytest.raises(ValueError, match=r"close must hold positive prices.*\(symbol 'C'\)"):
        FeatureSet(features=["roll"]).write_parquet(
            {"close": pd.DataFrame(close, columns=list("ABC"))}, "/nonexistent/never.parquet")


def test_stream_rejects_a_nonpositive_price_and_keeps_its_state():
    d = _ohlcv()
    specs = [("rolling_volatility", {"window": 5}), ("rsi", {"period": 5})]
    ref = FeatureStream(specs, ["A", "B", "C"])
    fs = FeatureStream(specs, ["A", "B", "C"])
    for t in range(20):
        ref.update({"close": d["close"][t]})
        fs.update({"close": d["close"][t]})
    bar = d["close"][20].copy()
    bar[1] = -2.0
    with pytest.raises(ValueError, match=r"bar field 'close' must hold positive prices \(NaN "
                                         r"marks a missing bar\); it is -2.0 at column 1 "
                                         r"\(symbol 'B'\)"):
        fs.update({"close": bar})
    np.testing.assert_array_equal(fs.update({"close": d["close"][20]}),
                                  ref.update({"close": d["close"][20]}))
    block = d["close"][21:40].copy()
    block[5, 2] = 0.0
    with pytest.raises(ValueError, match=r"block field 'close' must hold positive prices.*got "
                                         r"0.0 at row 5, column 2 \(symbol 'C'\)"):
        fs.update_many({"close": block})
    np.testing.assert_array_equal(fs.update_many({"close": d["close"][21:40]}),
                                  ref.update_many({"close": d["close"][21:40]}))
    # a stream of difference features only takes any finite value
    FeatureStream([("rsi", {})], ["A"]).update({"close": np.array([-3.0])})


def test_no_kernel_raises_on_nonpositive_prices(monkeypatch):
    """Kernels behind the checks never raise (ZeroDivisionError, SystemError) on such input."""
    monkeypatch.setattr(_api, "_check_positive", lambda *a, **k: None, raising=False)
    d = _ohlcv(0.0, row=100, col=1)
    for f in ("open", "high", "low", "close"):
        d[f][150, 2] = -1.0
        d[f][160:, 0] = np.where(np.arange(T - 160) % 2, 1.0, -1.0)  # SMA exactly 0
    with np.errstate(all="ignore"):
        for defn in load_catalogue().values():
            if defn.group == "order-book":
                continue
            defn.batch(*(d[f] for f in defn.inputs))
        FeatureSet.full(market=None).compute(d)
