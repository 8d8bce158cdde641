import pytest

pn = pytest.importorskip("panel")

from widgets.feature_explorer import FeatureExplorer  # noqa: E402
from workbench.data import load_universe  # noqa: E402


@pytest.fixture(scope="module")
def bars():
    return load_universe("daily", start="2010-01-01", end="2012-12-31")


def test_explorer_views_follow_controls(bars):
    ex = FeatureExplorer(bars=bars, symbols=["SP500", "AAPL"], features=["rsi", "atr"])
    df = ex.feature_frame()
    assert list(df.columns) == ["rsi_20", "atr_20"]  # the window slider drives period
    assert set(df.index.get_level_values("symbol")) == {"SP500", "AAPL"}
    ex.window = 14
    assert list(ex.feature_frame().columns) == ["rsi_14", "atr_14"]
    assert ex.feature_views() is not None
    assert ex.correlation_view() is not None
    assert ex.distribution_view() is not None
    ex.overlay = "sma"
    price = ex.price_view()
    assert "sma" in price.opts.get().kwargs["title"]
    ex.features = ["rsi"]
    assert isinstance(ex.correlation_view(), pn.pane.Markdown)  # needs two features
    assert isinstance(ex.panel(), pn.Row)


def test_dates_filter(bars):
    import datetime as dt

    ex = FeatureExplorer(bars=bars, symbols=["IBM"], features=["rsi"])
    ex.dates = (dt.datetime(2011, 1, 1), dt.datetime(2011, 6, 30))
    ts = ex.feature_frame().index.get_level_values("timestamp")
    assert ts.min().year == 2011 and ts.max().month <= 6


def test_no_symbols_shows_messages_not_other_symbols(bars):
    ex = FeatureExplorer(bars=bars, symbols=["IBM"], features=["rsi", "atr"])
    ex.symbols = []
    for view in (ex.feature_views, ex.correlation_view, ex.distribution_view):
        assert isinstance(view(), pn.pane.Markdown), view.__name__
    assert "symbol" in ex.feature_views().object
    assert "symbol" in ex.correlation_view().object


def test_no_features_keeps_the_price_chart(bars):
    ex = FeatureExplorer(bars=bars, symbols=["IBM"], features=["rsi"])
    ex.features = []
    out = ex.feature_views()
    assert isinstance(out, pn.Column)
    assert "IBM: close with bollinger" in out[0].object.opts.get().kwargs["title"]
    assert "feature" in out[1].object


def test_heatmap_and_histograms_z_score_each_symbol_before_pooling(bars):
    """SMA and ATR are in price units: pooled raw, SP500 (~1,200) against AAPL (~10-90)
    correlates them through the price levels alone."""
    import numpy as np

    ex = FeatureExplorer(bars=bars, symbols=["SP500", "AAPL"], features=["sma", "atr"])
    raw = ex.feature_frame()
    z = ex.standardised_frame()
    for sym in ("SP500", "AAPL"):
        one = raw.xs(sym, level="symbol")
        ref = (one - one.mean()) / one.std()
        np.testing.assert_allclose(z.xs(sym, level="symbol").to_numpy(), ref.to_numpy(),
                                   rtol=1e-12, atol=1e-12)
    want = z.corr().loc["sma_20", "atr_20"]
    assert abs(raw.corr().loc["sma_20", "atr_20"] - want) > 0.1  # the levels did matter
    heat = ex.correlation_view()
    assert "z-scored per symbol" in heat.opts.get().kwargs["title"]
    cells = {(a, b): v for a, b, v in zip(*(heat.dimension_values(k) for k in range(3)))}
    assert cells[("sma_20", "atr_20")] == pytest.approx(want, abs=1e-12)
    hist = ex.distribution_view()
    assert "z-scored per symbol" in hist.opts.get().kwargs["title"]
