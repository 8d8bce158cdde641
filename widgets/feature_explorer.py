"""Feature explorer: pick symbols, features, window and dates; linked hvplot views.

In a notebook::

    from widgets import FeatureExplorer
    FeatureExplorer(bars=bars).panel()

As an app: ``python -m widgets.serve feature_explorer`` (the bundled daily universe).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.data import Bars, load_universe
from workbench.features import FeatureSet, catalogue

__all__ = ["FeatureExplorer"]

#: Parameter names that the explorer's single "window" slider drives.
_WINDOW_PARAMS = ("window", "period", "span")
_OVERLAYS = ("bollinger", "sma", "ema", "vwap", "none")


def _cross_asset(name: str) -> bool:
    """Whether the catalogue feature ``name`` is taken to a market asset (beta, correlation)."""
    return "market" in catalogue()[name].params


def _ohlcv_features() -> list[str]:
    return sorted(n for n, d in catalogue().items()
                  if d.group not in ("order-book",) and d.name != "mean_pairwise_correlation")


class FeatureExplorer(param.Parameterized):
    """Interactive view of catalogue features over a ``Bars`` panel.

    Parameters
    ----------
    bars : workbench.data.Bars, optional
        Panel to explore (default: the bundled ``daily`` universe).

    Notes
    -----
    The views share their time axis (zooming one zooms all): price with an overlay
    (Bollinger bands, SMA, EMA or VWAP) for the first selected symbol, one panel per
    selected feature with a line per symbol, the correlation heatmap of the selected
    features and their distributions. Beta and correlation are taken to :attr:`market`
    whichever symbols are selected (it is computed beside them when not selected). The
    heatmap and the histograms pool the selected symbols and dates after z-scoring each
    feature within each symbol (see :meth:`standardised_frame`), so price-level features
    (SMA, ATR, VWAP) of assets trading at different prices are not correlated through
    their price levels.
    """

    symbols = param.ListSelector(default=[], objects=[], doc="Symbols to show.")
    features = param.ListSelector(default=[], objects=[], doc="Catalogue features to plot.")
    window = param.Integer(default=20, bounds=(2, 260),
                           doc="Window / period / span applied to windowed features.")
    overlay: Any = param.Selector(default="bollinger", objects=list(_OVERLAYS),
                             doc="Overlay on the price chart.")
    dates: Any = param.DateRange(default=None, doc="Date range shown.")
    market: Any = param.Selector(default=None, objects=[],
                                 doc="Market asset of the cross-asset features (beta, "
                                     "correlation); default the panel's first symbol.")

    def __init__(self, bars: Bars | None = None, **params: Any):
        if bars is not None and not isinstance(bars, Bars):
            raise TypeError("FeatureExplorer: bars must be a workbench.data.Bars panel, got "
                            f"{type(bars).__name__} (see workbench.data.read_csv and "
                            "Bars.from_long)")
        self._bars = bars if bars is not None else load_universe("daily")
        super().__init__(**params)
        syms = list(self._bars.symbols)
        choices = {"symbols": syms, "features": _ohlcv_features(), "market": syms}
        for name, allowed in choices.items():
            value = getattr(self, name)
            given = [] if value is None else [value] if isinstance(value, str) else list(value)
            bad = [v for v in given if v not in allowed]
            if bad:
                raise ValueError(f"FeatureExplorer: {name} {', '.join(map(repr, bad))} not "
                                 f"available; choose from {allowed}")
            self.param[name].objects = allowed
            self.param[name].check_on_set = True  # later assignments are checked too
        if self.market is None:
            self.market = syms[0]
        if not self.symbols:
            self.symbols = syms[:2]
        if not self.features:
            self.features = [f for f in ("rsi", "rolling_volatility", "atr")
                             if f in self.param.features.objects]
        lo, hi = self._bars.index[0].to_pydatetime(), self._bars.index[-1].to_pydatetime()
        lo, hi = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
        self.param.dates.bounds = (lo, hi)
        if self.dates is None:
            self.dates = (max(lo, hi - dt.timedelta(days=3 * 365)), hi)
        self._cache: dict = {}

    # -- data ---------------------------------------------------------------
    def _spec(self, name: str) -> tuple[str, dict]:
        d = catalogue()[name]
        return name, {k: self.window for k in d.params if k in _WINDOW_PARAMS}

    def _frame(self, names: list[str]) -> pd.DataFrame:
        """Long frame (timestamp, symbol) x columns for the selected symbols and dates.

        Cross-asset features are computed with :attr:`market` in the panel (added when it
        is not selected, then dropped), so their values do not depend on the selection.
        """
        wanted = list(self.symbols) if self.symbols else list(self._bars.symbols)
        cross = any(_cross_asset(n) for n in names)
        extra = [self.market] if cross and self.market not in wanted else []
        bars = self._bars.select(wanted + extra)
        key = (tuple(bars.symbols), tuple(names), self.window, self.market if cross else None)
        if key not in self._cache:
            fs = FeatureSet(features=[self._spec(n) for n in names],
                            market=self.market if cross else None)
            df = fs.compute(bars).to_pandas("long")
            if extra:
                df = df[df.index.get_level_values("symbol") != self.market]
            self._cache = {key: (df, fs)}
        df, _ = self._cache[key]
        lo, hi = (pd.Timestamp(d, tz="UTC") for d in self.dates)
        ts = df.index.get_level_values("timestamp")
        return df[(ts >= lo) & (ts <= hi)]

    def feature_frame(self) -> pd.DataFrame:
        """The selected features, long layout: index (timestamp, symbol), one column each."""
        return self._frame(list(self.features))

    def standardised_frame(self) -> pd.DataFrame:
        """The selected features z-scored within each symbol over the selected dates.

        Returns
        -------
        pandas.DataFrame
            Same layout as :meth:`feature_frame`; each (symbol, feature) series minus its
            mean over the shown dates, divided by its standard deviation (ddof 1). A
            series that is constant or has fewer than two values there is NaN.

        Notes
        -----
        A display transform over the whole shown window (it uses later values to scale
        earlier ones), not a feature: the catalogue's features stay causal.
        """
        df = self.feature_frame()
        by = df.groupby(level="symbol", sort=False)
        sd = by.transform("std")
        return (df - by.transform("mean")) / sd.where(sd > 0)

    # -- views --------------------------------------------------------------
    def _price_plot(self):
        import hvplot.pandas  # noqa: F401

        sym = self.symbols[0]
        j = list(self._bars.symbols).index(sym)
        frame = pd.DataFrame({"close": self._bars["close"][:, j]}, index=self._bars.index)
        frame.index.name = "timestamp"
        if self.overlay != "none":
            block = FeatureSet(features=[self._spec(self.overlay)]).compute(
                self._bars.select([sym]))
            for c in block.columns:
                frame[c] = block[c][:, 0]
        lo, hi = (pd.Timestamp(d, tz="UTC") for d in self.dates)
        frame = frame.loc[lo:hi].dropna(how="all")
        return frame.hvplot.line(title=f"{sym}: close with {self.overlay}", height=300,
                                 responsive=True, xlabel="", ylabel="price",
                                 value_label="price", group_label="series")

    @param.depends("symbols", "overlay", "window", "dates")
    def price_view(self):
        """Close of the first selected symbol with the chosen overlay."""
        if not self.symbols:
            return pn.pane.Markdown("Pick at least one symbol.")
        return self._price_plot()

    def _no_values(self) -> str:
        return (f"No values of {', '.join(self.features)} for {', '.join(self.symbols)} "
                "between the selected dates (no bars there, or all in the warm-up of the "
                f"{self.window}-bar window).")

    def _title(self, column: str) -> str:
        """Panel title of a feature column; cross-asset ones name their market asset."""
        _, fs = next(iter(self._cache.values()))
        for inst in fs.instances():
            if column in inst.columns and _cross_asset(inst.name):
                return f"{column} ({inst.name} to {self.market})"
        return column

    @param.depends("symbols", "features", "overlay", "window", "dates", "market")
    def feature_views(self):
        """Price and one panel per selected feature (a line per symbol).

        All panels share the time axis (zoom one, zoom all); each keeps its own value axis.
        """
        import holoviews as hv
        import hvplot.pandas  # noqa: F401

        if not self.symbols:
            return pn.pane.Markdown("Pick at least one symbol.")
        if not self.features:  # the price chart stays: it needs no feature
            return pn.Column(self._price_plot(),
                             pn.pane.Markdown("Pick one or more features to plot."),
                             sizing_mode="stretch_width")
        df = self.feature_frame()
        if df.empty:
            return pn.pane.Markdown(self._no_values())
        plots = [self._price_plot()]
        for col in df.columns:
            wide = df[col].unstack("symbol")
            plots.append(wide.hvplot.line(title=self._title(col), height=180, responsive=True,
                                          xlabel="", ylabel=col, value_label=col))
        return hv.Layout(plots).cols(1)

    @param.depends("symbols", "features", "window", "dates", "market")
    def correlation_view(self):
        """Correlation heatmap of the selected features (within-symbol z-scores, pooled)."""
        import hvplot.pandas  # noqa: F401

        if not self.symbols:
            return pn.pane.Markdown("Pick at least one symbol for the correlation heatmap.")
        if len(self.features) < 2:
            return pn.pane.Markdown("Pick two or more features for the correlation heatmap.")
        z = self.standardised_frame()
        if z.dropna(how="all").empty:
            return pn.pane.Markdown(self._no_values())
        corr = z.corr()
        title = ("Feature correlation" if len(self.symbols) == 1
                 else "Correlation (z-scored per symbol)")
        return corr.hvplot.heatmap(title=title, cmap="RdBu_r", clim=(-1, 1),
                                   height=320, width=440, rot=45, xlabel="", ylabel="",
                                   clabel="correlation", shared_axes=False)

    @param.depends("symbols", "features", "window", "dates", "market")
    def distribution_view(self):
        """Distribution of each selected feature (histograms overlaid)."""
        import hvplot.pandas  # noqa: F401

        if not self.symbols:  # feature_frame would pool every symbol
            return pn.pane.Markdown("")
        z = self.standardised_frame().dropna(how="all")
        if z.empty:
            return pn.pane.Markdown("")
        return z.hvplot.hist(bins=60, alpha=0.5, height=320, width=420,
                             title="Distribution (z-scored per symbol)", xlabel="z",
                             ylabel="count", group_label="feature", shared_axes=False)

    def panel(self) -> pn.viewable.Viewable:
        """The explorer layout: controls left, linked views right."""
        controls = pn.Param(
            self.param, parameters=["symbols", "features", "window", "overlay", "dates",
                                    "market"],
            widgets={"symbols": {"type": pn.widgets.MultiChoice},
                     "features": {"type": pn.widgets.MultiChoice},
                     "dates": {"type": pn.widgets.DateRangeSlider}},
            show_name=False, width=300)
        return pn.Row(
            pn.Column("## Feature explorer", controls, width=320),
            pn.Column(self.feature_views,
                      pn.Row(self.correlation_view, self.distribution_view),
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )


if __name__.startswith("bokeh"):  # `panel serve widgets/feature_explorer.py`
    pn.extension()
    FeatureExplorer().panel().servable(title="Quant Workbench: feature explorer")
