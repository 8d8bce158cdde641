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


def test_beta_and_correlation_are_to_the_market_whatever_the_selection(bars):
    """Cross-asset features were taken to the first *selected* symbol: AAPL alone had a beta
    of 1 to itself, and reordering the selection changed every value."""
    import numpy as np

    from workbench.features import FeatureSet

    fs = FeatureSet(features=[("beta", {"window": 20}), ("correlation", {"window": 20})],
                    market="SP500")
    want = fs.compute(bars).to_pandas("long")
    ex = FeatureExplorer(bars=bars, features=["beta", "correlation"])
    assert ex.market == "SP500"  # the panel's first symbol by default
    ex.dates = ex.param.dates.bounds  # the whole panel
    for symbols in (["AAPL"], ["NASDAQ", "AAPL"], ["AAPL", "SP500"]):
        ex.symbols = symbols
        got = ex.feature_frame()
        assert set(got.index.get_level_values("symbol")) == set(symbols)  # market not added
        for sym in symbols:
            np.testing.assert_allclose(got.xs(sym, level="symbol").to_numpy(),
                                       want.xs(sym, level="symbol").to_numpy(), rtol=1e-12)
    ex.symbols = ["NASDAQ", "AAPL"]
    ex.market = "NASDAQ"
    nasdaq = ex.feature_frame().xs("NASDAQ", level="symbol")
    assert np.allclose(nasdaq["beta_20"].dropna(), 1.0)
    titles = [p.opts.get().kwargs["title"] for p in ex.feature_views()]
    assert titles[1:] == ["beta_20 (beta to NASDAQ)", "correlation_20 (correlation to NASDAQ)"]


def test_bad_arguments_are_named_errors(bars):
    """An unknown symbol or feature was accepted and failed later inside a view (KeyError
    from Bars.select); a DataFrame for bars was an AttributeError."""
    import pandas as pd

    with pytest.raises(ValueError, match=r"symbols.*'XXX'.*SP500"):
        FeatureExplorer(bars=bars, symbols=["XXX"])
    with pytest.raises(ValueError, match=r"features.*'nope'.*rsi"):
        FeatureExplorer(bars=bars, features=["nope"])
    with pytest.raises(ValueError, match=r"market.*'XXX'"):
        FeatureExplorer(bars=bars, market="XXX")
    with pytest.raises(TypeError, match=r"bars must be a workbench.data.Bars.*DataFrame"):
        FeatureExplorer(bars=pd.DataFrame({"close": [1.0, 2.0]}))
    ex = FeatureExplorer(bars=bars)
    with pytest.raises(ValueError):
        ex.symbols = ["XXX"]  # the selector checks once its objects are set


def test_no_values_in_the_window_is_said_plainly():
    """AAPL has no bars after 2013: the message said "No data in the selected date range"
    although the range had data, and the heatmap drew a grid of NaN."""
    u = load_universe("daily", start="2016-01-01", end="2018-12-31")
    ex = FeatureExplorer(bars=u, symbols=["AAPL"], features=["rsi", "atr"])
    msg = ex.feature_views()
    assert isinstance(msg, pn.pane.Markdown)
    assert "AAPL" in msg.object and "no values" in msg.object.lower()
    assert isinstance(ex.correlation_view(), pn.pane.Markdown)
    assert isinstance(ex.distribution_view(), pn.pane.Markdown)


def test_legends_name_what_they_list(bars):
    """hvplot titles a wide frame's legend "Variable"."""
    from bokeh.models import Legend

    ex = FeatureExplorer(bars=bars, symbols=["SP500"], features=["rsi", "atr"])
    for view, title in ((ex.price_view(), "series"), (ex.distribution_view(), "feature")):
        legends = list(pn.pane.HoloViews(view).get_root().select({"type": Legend}))
        assert legends and all(lg.title == title for lg in legends)
