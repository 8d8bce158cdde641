"""``FeatureSet``: a declarative, param-based spec that computes a named (T, N, F) block.

A researcher lists catalogue features (with windows), a dtype and a backend; the set
computes them chunk by chunk over assets into one block whose memory layout keeps
each feature contiguous, converts to pandas or xarray, or streams the block to Parquet
without ever holding it whole.
"""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import param

from workbench.features._catalogue import CATALOGUE, FeatureDef

#: Close-only features computed by the fused CPU kernel (``_cpu_fused.FUSABLE``; kept
#: here so planning imports neither numba nor the kernels).
_FUSABLE = frozenset({"sma", "ema", "rolling_std", "rsi", "macd", "bollinger", "roc",
                      "momentum", "returns", "log_returns", "rolling_volatility"})

__all__ = ["FeatureBlock", "FeatureInstance", "FeatureSet", "load_catalogue"]

_CATALOGUE_MODULES = (
    "workbench.features._register_core",
    "workbench.features._ta",
    "workbench.features._micro",
)
#: Parameters left out of column names unless they differ from the default.
_QUIET_PARAMS = {"periods_per_year", "scale", "ddof", "min_periods", "price_window",
                 "signal_window", "market"}
_BOOK_FIELDS = ("bid_px", "ask_px", "bid_sz", "ask_sz")
#: Fresh blocks of at least this many elements are pre-faulted in parallel.
_PREFAULT = 1 << 20


def load_catalogue() -> dict[str, FeatureDef]:
    """Import every feature family so the registry is complete; return the catalogue."""
    for mod in _CATALOGUE_MODULES:
        importlib.import_module(mod)
    return CATALOGUE


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (tuple, list)):
        return "-".join(_fmt(x) for x in v)
    return str(v)


@dataclass(frozen=True)
class FeatureInstance:
    """One configured feature of a :class:`FeatureSet`.

    Attributes
    ----------
    name : str
        Catalogue name (``workbench.features.catalogue()``).
    params : dict
        Full parameters (defaults filled in).
    columns : tuple of str
        Output column names, e.g. ``("macd_12_26_9_line", "macd_12_26_9_signal", ...)``.
    given : frozenset of str
        Names of the parameters given explicitly (the others are catalogue defaults).
    """

    name: str
    params: dict
    columns: tuple[str, ...]
    given: frozenset = frozenset()

    @property
    def definition(self) -> FeatureDef:
        """The catalogue entry."""
        return CATALOGUE[self.name]

    @property
    def market(self) -> int | str | None:
        """The feature's own market asset (symbol or column index), or None.

        None for a feature without a ``market`` parameter or one that left it to the
        set (``FeatureSet.market``, else the first symbol). A market given explicitly
        (even 0, the catalogue default) is the feature's own and appears in its column
        name, e.g. ``beta_NASDAQ_60``.
        """
        if "market" not in self.params:
            return None
        m = self.params["market"]
        default = self.definition.params["market"]
        return m if m is not None and ("market" in self.given or m != default) else None


def _market_index(market: Any, symbols: Sequence[str], where: str) -> int:
    """Column of ``market`` (a symbol in ``symbols`` or a column index).

    Raises
    ------
    ValueError
        Prefixed by ``where``: an unknown symbol (the message lists the symbols) or an
        index outside [0, N).
    """
    syms = list(symbols)
    if isinstance(market, str):
        if market not in syms:
            raise ValueError(f"{where}market {market!r} is not among the symbols {syms}")
        return syms.index(market)
    if (isinstance(market, bool) or not isinstance(market, numbers.Integral)
            or not 0 <= int(market) < len(syms)):
        raise ValueError(f"{where}market must be a column index in [0, {len(syms)}) or a "
                         f"symbol name, got {market!r}")
    return int(market)


def _parse(item: Any, where: str) -> FeatureInstance:
    load_catalogue()
    if isinstance(item, FeatureInstance):
        return item
    if isinstance(item, str):
        name, given, alias = item, {}, None
    elif isinstance(item, Mapping):
        item = dict(item)
        name = item.pop("name", None)
        alias = item.pop("alias", None)
        given = item.pop("params", item)
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3) and isinstance(item[0], str):
        name, given = item[0], dict(item[1])
        alias = item[2] if len(item) == 3 else None
    else:
        raise ValueError(f"{where}: a feature must be a name, (name, params) or a mapping, "
                         f"got {item!r}")
    if name not in CATALOGUE:
        raise ValueError(f"{where}: unknown feature {name!r}; known: {sorted(CATALOGUE)}")
    d = CATALOGUE[name]
    unknown = sorted(set(given) - set(d.params))
    if unknown:
        raise ValueError(f"{where}: feature {name!r} has no parameter(s) {unknown}; "
                         f"its parameters are {sorted(d.params)}")
    market = given.get("market")
    if market is not None and (isinstance(market, bool)
                               or not isinstance(market, (str, numbers.Integral))):
        raise ValueError(f"{where}: market of feature {name!r} must be a symbol name or a "
                         f"column index, got {market!r}")
    params = {**d.params, **given}
    if alias is None:
        first = next(iter(d.params), None)
        quiet = {k for k in d.params
                 if k == "market" or ((k in _QUIET_PARAMS or k == "span") and k != first)}
        # a feature's own market always shows in its name (even column 0, the
        # default): the set's market applies to the features that name none
        parts = [name] + [_fmt(v) for k, v in params.items()
                          if k not in quiet
                          or (k == "market" and given.get(k) is not None)
                          or (k != "market" and given.get(k, d.params[k]) != d.params[k])]
        alias = "_".join(parts)
    cols = tuple(alias if o == "" else f"{alias}_{o}" for o in d.outputs)
    return FeatureInstance(name, params, cols, frozenset(given))


@dataclass
class FeatureBlock:
    """A computed feature block.

    Attributes
    ----------
    storage : numpy.ndarray, shape (F, T, N)
        One contiguous (T, N) slab per feature.
    columns : tuple of str, length F
        Feature names.
    index : pandas.DatetimeIndex or None
        Timestamps (length T).
    symbols : tuple of str, length N
        Asset names.
    """

    storage: np.ndarray
    columns: tuple[str, ...]
    index: pd.DatetimeIndex | None
    symbols: tuple[str, ...]

    @property
    def values(self) -> np.ndarray:
        """The block as (T, N, F) (a view of :attr:`storage`; no copy)."""
        return self.storage.transpose(1, 2, 0)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, N, F)``."""
        F, T, N = self.storage.shape
        return T, N, F

    def __getitem__(self, column: str) -> np.ndarray:
        """One feature as a (T, N) array.

        Raises
        ------
        KeyError
            If ``column`` is not in :attr:`columns` (the message lists them).
        """
        try:
            return self.storage[self.columns.index(column)]
        except ValueError:
            raise KeyError(f"no feature column {column!r}; columns: {list(self.columns)}") \
                from None

    def to_pandas(self, layout: str = "long") -> pd.DataFrame:
        """Convert to pandas.

        Parameters
        ----------
        layout : {"long", "wide"}
            ``"long"``: rows indexed by (timestamp, symbol), one column per feature
            (rows where every feature is NaN are dropped). ``"wide"``: rows indexed by
            timestamp, columns a (feature, symbol) MultiIndex.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ValueError
            On an unknown layout.
        """
        F, T, N = self.storage.shape
        index = self.index if self.index is not None else pd.RangeIndex(T, name="t")
        if layout == "wide":
            cols = pd.MultiIndex.from_product([self.columns, self.symbols],
                                              names=["feature", "symbol"])
            return pd.DataFrame(self.storage.transpose(1, 0, 2).reshape(T, F * N),
                                index=index, columns=cols)
        if layout == "long":
            mi = pd.MultiIndex.from_product([index, self.symbols], names=["timestamp", "symbol"])
            df = pd.DataFrame(self.values.reshape(T * N, F), index=mi, columns=self.columns)
            return df.dropna(how="all")
        raise ValueError(f"layout must be 'long' or 'wide', got {layout!r}")

    def to_xarray(self):
        """Convert to an ``xarray.DataArray`` with dims ``(time, symbol, feature)``.

        The ``time`` coordinate holds the UTC timestamps as naive ``datetime64[ns]``.
        """
        import xarray as xr

        T = self.storage.shape[1]
        time = (np.asarray(self.index.tz_convert(None)) if self.index is not None
                else np.arange(T))
        return xr.DataArray(self.values, dims=("time", "symbol", "feature"),
                            coords={"time": time, "symbol": list(self.symbols),
                                    "feature": list(self.columns)}, name="features")


class FeatureSet(param.Parameterized):
    """Which catalogue features to compute, with which windows, dtype and backend.

    Examples
    --------
    >>> fs = FeatureSet(features=["rsi", ("rolling_volatility", {"window": 60}),
    ...                           ("macd", {"fast": 8, "slow": 24, "signal": 9})])
    >>> block = fs.compute(bars)            # (T, N, F) with named columns
    >>> block.to_pandas().head()

    Notes
    -----
    Work is chunked over assets (``chunk_assets`` at a time) and each chunk's outputs
    are written straight into the preallocated block, so peak memory stays near the
    output block plus one chunk. Cross-asset features receive the market asset's column
    with every chunk; the mean pairwise correlation is computed once on the full panel
    and written to the columns of the assets that have a bar (NaN elsewhere).

    Correlation and beta are taken to the feature's own ``market`` parameter when it
    gives one (a symbol or a column index; it then appears in the column name, e.g.
    ``("beta", {"market": "NASDAQ"})`` gives ``beta_NASDAQ_60``), else to the set's
    :attr:`market`, else to the first symbol.
    """

    features = param.List(default=[], doc=(
        "Catalogue features: names ('rsi'), (name, params) pairs "
        "(('rsi', {'period': 9})) or mappings {'name': ..., 'params': ..., 'alias': ...}."))
    dtype: Any = param.Selector(default="float64", objects=["float64", "float32"],
                           doc="Floating type of the output block.")
    backend: Any = param.Selector(default="auto", objects=["auto", "cpu", "cupy"],
                             doc="Kernel backend: CuPy when available under 'auto', else numba.")
    chunk_assets = param.Integer(default=256, bounds=(1, None),
                                 doc="Assets computed per chunk (bounds temporary memory).")
    market = param.String(default=None, allow_None=True,
                          doc=("Market symbol for the correlation/beta features that give no "
                               "market of their own (default: the first symbol)."))

    def instances(self) -> list[FeatureInstance]:
        """Validated feature instances, in order.

        Raises
        ------
        ValueError
            On an unknown feature or parameter, or duplicate column names.
        """
        out = [_parse(item, f"features[{k}]") for k, item in enumerate(self.features)]
        seen: dict[str, int] = {}
        for k, inst in enumerate(out):
            for c in inst.columns:
                if c in seen:
                    raise ValueError(f"features[{k}] repeats column {c!r} of "
                                     f"features[{seen[c]}]; give it an alias")
                seen[c] = k
        return out

    @property
    def columns(self) -> tuple[str, ...]:
        """All output columns, in order."""
        return tuple(c for inst in self.instances() for c in inst.columns)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input fields the features need."""
        need: list[str] = []
        for inst in self.instances():
            need += [f for f in inst.definition.inputs if f not in need]
        return tuple(need)

    # -- presets -------------------------------------------------------------
    @classmethod
    def deep_momentum(cls, **kw) -> FeatureSet:
        """Deep-momentum inputs: normalised returns (1..252 days) and Baz MACD signals."""
        feats: list[Any] = [("normalised_return", {"horizon": h}) for h in (1, 21, 63, 126, 252)]
        feats += [("macd_signal", {"short": s, "long": lg}) for s, lg in ((8, 24), (16, 48),
                                                                          (32, 96))]
        return cls(features=feats, **kw)

    @classmethod
    def benchmark(cls, **kw) -> FeatureSet:
        """The benchmark subset: RSI, MACD, Bollinger, EMA, rolling std and two ROCs."""
        return cls(features=["rsi", "macd", "bollinger", "ema", "rolling_std",
                             ("roc", {"period": 10}), ("roc", {"period": 20})], **kw)

    @classmethod
    def full(cls, *, order_book: bool = False, exclude: Sequence[str] = (), **kw) -> FeatureSet:
        """The whole OHLCV catalogue with standard windows (plus L2 features if asked).

        Parameters
        ----------
        order_book : bool, default False
            Include the L2 order-book features (``compute`` then needs ``book=``).
        exclude : sequence of str, optional
            Catalogue names to leave out, e.g. ``["mean_pairwise_correlation"]``, whose
            O(N^2) work per row dominates on panels of thousands of assets.
        **kw
            Other :class:`FeatureSet` parameters (dtype, backend, chunk_assets, market).

        Raises
        ------
        ValueError
            If ``exclude`` names a feature that is not in the catalogue.
        """
        load_catalogue()
        unknown = sorted(set(exclude) - set(CATALOGUE))
        if unknown:
            raise ValueError(f"exclude names unknown features {unknown}")
        feats: list[Any] = []
        for name, d in CATALOGUE.items():
            if (d.group == "order-book" and not order_book) or name in exclude:
                continue
            if name == "rolling_volatility":
                feats += [(name, {"window": w}) for w in (5, 20, 60)]
            elif name == "normalised_return":
                feats += [(name, {"horizon": h}) for h in (1, 21, 63, 126, 252)]
            elif name == "macd_signal":
                feats += [(name, {"short": s, "long": lg})
                          for s, lg in ((8, 24), (16, 48), (32, 96))]
            elif name == "roc":
                feats += [(name, {"period": p}) for p in (10, 20)]
            else:
                feats.append(name)
        return cls(features=feats, **kw)

    # -- compute -------------------------------------------------------------
    def _arrays(self, data: Any, book: Any) -> tuple[dict[str, np.ndarray], Any, tuple]:
        arrays: dict[str, np.ndarray] = {}
        index, symbols = None, None
        if hasattr(data, "FIELDS") and hasattr(data, "field"):  # a Bars panel
            arrays.update({f: np.asarray(data.field(f)) for f in data.FIELDS})
            index, symbols = data.index, tuple(data.symbols)
        elif isinstance(data, Mapping):
            index, symbols = _pandas_axes(data)
            for k, v in data.items():
                a = np.asarray(v)
                if k not in _BOOK_FIELDS:
                    if a.ndim == 1:  # one asset, as the feature functions take it
                        a = a[:, None]
                    elif a.ndim != 2:
                        raise ValueError(f"input {k!r} must be a (T, N) array (or (T,) for one "
                                         f"asset), got shape {a.shape}")
                arrays[k] = a
        elif data is not None:
            raise ValueError(f"data must be a Bars panel or a mapping of field -> (T, N) array, "
                             f"got {type(data).__name__}")
        if book is not None:
            arrays.update({f: np.asarray(getattr(book, f)) for f in _BOOK_FIELDS})
            if index is None:
                index, symbols = book.index, tuple(book.symbols)
        if not arrays:
            raise ValueError("no input data: pass a Bars panel, a mapping of arrays, or a book")
        k0, first = next(iter(arrays.items()))
        if first.ndim < 2:
            raise ValueError(f"input {k0!r} must be a (T, N) array (or (T,) for one asset), "
                             f"got shape {first.shape}")
        T, N = first.shape[:2]
        for k, v in arrays.items():
            if v.shape[:2] != (T, N):
                raise ValueError(f"input {k!r} has shape {v.shape}, expected (T, N) = {(T, N)}")
        if symbols is None:
            symbols = tuple(f"x{j}" for j in range(N))
        elif len(symbols) != N:
            raise ValueError(f"the inputs have {N} columns but {len(symbols)} symbols")
        return arrays, index, symbols

    def _market(self, symbols: Sequence[str]) -> int:
        if self.market is None:
            return 0
        if self.market not in symbols:
            raise ValueError(f"market {self.market!r} is not among the symbols {list(symbols)}")
        return list(symbols).index(self.market)

    def _prepare(self, data: Any, book: Any) -> tuple[list, dict, Any, tuple, list]:
        """Validate the spec and the inputs once for all features and chunks.

        Returns the instances, the input arrays, index, symbols and, per instance, the
        column of its market asset (None for features without one).
        """
        insts = self.instances()
        arrays, index, symbols = self._arrays(data, book)
        for inst in insts:
            missing = [f for f in inst.definition.inputs if f not in arrays]
            if missing:
                raise ValueError(f"feature {inst.name!r} needs input field(s) {missing}, "
                                 f"which the data does not provide")
        mkt = self._market(symbols)
        mkts: list[int | None] = []
        for k, inst in enumerate(insts):
            own = inst.market
            mkts.append(None if "market" not in inst.params else mkt if own is None
                        else _market_index(own, symbols, f"features[{k}] ({inst.name!r}): "))
        from workbench.features._api import _check_nonnegative, _check_positive

        # price fields of features on ratios/logs (> 0), volumes a feature weights by (>= 0)
        for rule, check in (("positive", _check_positive), ("nonnegative", _check_nonnegative)):
            for f in sorted({f for inst in insts for f in getattr(inst.definition, rule)}):
                a = arrays[f]
                if a.dtype.kind in "fiu" and a.ndim == 2:  # others: the features' own error
                    check(a, f, symbols=symbols)
        return insts, arrays, index, symbols, mkts

    def _chunks(self, N: int, chunk: int | None) -> Iterator[slice]:
        step = int(chunk or self.chunk_assets)
        for j0 in range(0, N, step):
            yield slice(j0, min(N, j0 + step))

    def _fused_plan(self, insts) -> tuple[Any, frozenset]:
        """The fused-kernel program for the close-only features it covers, and their indices.

        Features computed by :mod:`workbench.features._cpu_fused` in one pass: those in
        ``_FUSABLE``, on backend ``"cpu"`` (or ``"auto"`` without a GPU). Parameters are
        validated as the per-feature functions validate them (same messages).
        """
        if not any(inst.name in _FUSABLE for inst in insts):
            return None, frozenset()
        from workbench.features import _api

        if self.backend == "cupy" or (self.backend == "auto" and _api.gpu_available()):
            return None, frozenset()
        from workbench.features import _cpu_fused

        specs, idx, f = [], [], 0
        for k, inst in enumerate(insts):
            nout = len(inst.columns)
            if inst.name in _FUSABLE:
                specs.append((inst.name, _fused_params(inst.name, inst.params),
                              list(range(f, f + nout))))
                idx.append(k)
            f += nout
        return _cpu_fused.plan(specs), frozenset(idx)

    def _compute_chunk(self, insts, arrays, cols: slice, mkt: Any, out: np.ndarray,
                       full_cache: dict) -> None:
        """Fill ``out[f, :, 0:len(cols)]`` for the assets in ``cols``.

        A :class:`_Fused` entry of ``insts`` (computed by the fused kernel) leaves its
        slabs alone. ``mkt`` is the market column of every market feature, or a list of
        one column (or None) per entry of ``insts``.
        """
        mkts = list(mkt) if isinstance(mkt, (list, tuple)) else [mkt] * len(insts)
        f = 0
        for inst, m in zip(insts, mkts):
            if isinstance(inst, _Fused):
                f += inst.n_outputs
                continue
            d = inst.definition
            p = dict(inst.params)
            nout = len(inst.columns)
            if d.name == "mean_pairwise_correlation":
                key = ("mpc", tuple(sorted(p.items())))
                if key not in full_cache:
                    v = d.batch(arrays["close"], backend=self.backend, **p)
                    if hasattr(v, "get") and not isinstance(v, np.ndarray):  # cupy -> host
                        v = v.get()
                    full_cache[key] = v
                # market-wide series, written only where the asset has a bar
                res: Any = (np.where(np.isnan(arrays["close"][:, cols]), np.nan,
                                     full_cache[key][:, None]),)
            elif "market" in d.params:
                ins = [np.column_stack([arrays[k][:, cols], arrays[k][:, m]])
                       for k in d.inputs]
                p["market"] = ins[0].shape[1] - 1
                res = d.batch(*ins, backend=self.backend, **p)
                res = tuple(r[:, :-1] for r in (res if isinstance(res, tuple) else (res,)))
            else:
                ins = [np.ascontiguousarray(arrays[k][:, cols]) for k in d.inputs]
                res = d.batch(*ins, backend=self.backend, **p)
                res = res if isinstance(res, tuple) else (res,)
            if len(res) != nout:
                raise RuntimeError(f"feature {d.name!r} returned {len(res)} outputs, "
                                   f"its catalogue entry declares {nout}")
            for k in range(nout):
                r = res[k]
                if hasattr(r, "get") and not isinstance(r, np.ndarray):  # cupy -> host
                    r = r.get()
                out[f + k] = r
            f += nout

    def compute(self, data: Any = None, *, book: Any = None, out: Any = None) -> FeatureBlock:
        """Compute every feature into one block.

        Close-only trend/band/volatility features (SMA, EMA, rolling std, RSI, MACD,
        Bollinger, ROC, momentum, simple/log returns, rolling volatility; any number of
        each) run on the CPU backend in one fused pass over all assets
        (:mod:`workbench.features._cpu_fused`; it keeps only O(window) state per asset, so
        ``chunk_assets`` does not split it) that writes straight into the block, bitwise
        equal to the per-feature functions; the others run feature by feature, chunk by
        chunk.

        Parameters
        ----------
        data : workbench.data.Bars or mapping of str to array_like
            OHLCV panel ((T, N) fields ``open high low close volume``; NaN = no bar). A
            mapping may hold (T, N) arrays, (T,) arrays (one asset, N = 1) or pandas
            DataFrames / Series: DataFrame columns are the symbols and a
            ``DatetimeIndex`` the timestamps (naive values taken as UTC); all pandas
            inputs must share one index and all DataFrames one column list. Other
            mappings get symbols ``x0, x1, ...``.
        book : workbench.data.OrderBook, optional
            L2 snapshots ((T, N, k) ``bid_px ask_px bid_sz ask_sz``) for order-book
            features, on the same timestamps and symbols as ``data``.
        out : FeatureBlock or numpy.ndarray, optional
            Preallocated storage to fill instead of allocating a new (F, T, N) block: a
            :class:`FeatureBlock` from an earlier call (its :attr:`FeatureBlock.storage`
            is reused) or a C-contiguous (F, T, N) array of :attr:`dtype`. Reusing one
            block across calls avoids the page faults of a fresh multi-GB array (on a
            (20000, 500) panel with 11 outputs they cost about as much as the
            computation). Every element is overwritten; the returned block's storage
            *is* this array, so earlier results held in it are replaced.

        Returns
        -------
        FeatureBlock
            Values (T, N, F) in :attr:`dtype`, columns :attr:`columns`.

        Raises
        ------
        ValueError
            If a feature's input field is missing, shapes disagree, DataFrames disagree
            on index or columns, the spec is invalid, a market symbol is unknown, an
            input contains +/-inf, a price field of a feature on price ratios or logs
            (``FeatureDef.positive``) holds a finite value <= 0 or a volume that a
            feature weights by (``FeatureDef.nonnegative``) a negative value (the
            message names the field, row, column and symbol), or ``out`` has the wrong
            type, shape, dtype or layout.
        """
        insts, arrays, index, symbols, mkts = self._prepare(data, book)
        T, N = next(iter(arrays.values())).shape[:2]
        F = sum(len(i.columns) for i in insts)
        dt = np.dtype(self.dtype)
        storage = (np.empty((F, T, N), dtype=dt) if out is None
                   else _out_storage(out, (F, T, N), dt))
        program, fused = self._fused_plan(insts)
        x = None
        if program is not None:
            x = _close64(arrays["close"])
            if out is None and storage.size >= _PREFAULT:
                # fault the fresh block in with both threads on disjoint pages (the
                # kernel's threads split assets, so they would fault the same pages)
                from workbench.features._cpu import _prefault

                _prefault(storage.reshape(-1))
            name = next(("x" if insts[k].name in ("sma", "ema", "rolling_std") else "close")
                        for k in sorted(fused))
        rest = _without(insts, fused)
        cache: dict = {}
        from workbench.features import _cpu_fused

        if x is not None:
            # one call over all assets: the fused kernel keeps only O(window) state per
            # asset (no per-chunk temporaries to bound) and splits assets over threads
            _cpu_fused.run(program, x, storage, name=name)
        if len(fused) < len(insts):
            for cols in self._chunks(N, None):
                self._compute_chunk(rest, arrays, cols, mkts, storage[:, :, cols], cache)
        return FeatureBlock(storage, tuple(c for i in insts for c in i.columns), index,
                            tuple(symbols))

    def write_parquet(self, data: Any, path: str | Path, *, book: Any = None,
                      chunk_assets: int | None = None) -> Path:
        """Compute chunk by chunk over assets and append each chunk to one Parquet file.

        The file has the long layout: columns ``timestamp, symbol`` and one column per
        feature; only (timestamp, symbol) rows where the asset has a bar are written.
        Peak memory is one chunk's block, never the whole (T, N, F) block.

        Parameters
        ----------
        data, book
            As for :meth:`compute`.
        path : str or pathlib.Path
            Destination ``.parquet`` file (overwritten only after success: written to a
            temporary name first, then renamed).
        chunk_assets : int, optional
            Assets per chunk (default :attr:`chunk_assets`).

        Returns
        -------
        pathlib.Path
            The written file.

        Raises
        ------
        ValueError
            As :meth:`compute`.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        insts, arrays, index, symbols, mkts = self._prepare(data, book)
        T, N = next(iter(arrays.values())).shape[:2]
        columns = [c for i in insts for c in i.columns]
        F = len(columns)
        ts = (np.asarray(index) if index is not None else np.arange(T))
        present = np.isfinite(arrays["close"]) if "close" in arrays else np.ones((T, N), bool)
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        ftype = pa.float64() if self.dtype == "float64" else pa.float32()
        schema = pa.schema([("timestamp", pa.array(ts[:1]).type), ("symbol", pa.string())]
                           + [(c, ftype) for c in columns])
        cache: dict = {}
        program, fused = self._fused_plan(insts)
        rest = _without(insts, fused)
        name = "close"
        if program is not None:
            from workbench.features import _cpu_fused

            name = next(("x" if insts[k].name in ("sma", "ema", "rolling_std") else "close")
                        for k in sorted(fused))
        try:
            with pq.ParquetWriter(str(tmp), schema) as writer:
                for cols in self._chunks(N, chunk_assets):
                    n = cols.stop - cols.start
                    block = np.empty((F, T, n), dtype=np.dtype(self.dtype))
                    if program is not None:
                        _cpu_fused.run(program, _close64(arrays["close"][:, cols]), block,
                                       name=name)
                    self._compute_chunk(rest, arrays, cols, mkts, block, cache)
                    rows_t, rows_j = np.nonzero(present[:, cols])
                    order = np.lexsort((rows_t, rows_j))  # symbol-major within the chunk
                    rows_t, rows_j = rows_t[order], rows_j[order]
                    data_cols = {"timestamp": ts[rows_t],
                                 "symbol": np.asarray(symbols[cols], dtype=object)[rows_j]}
                    for f, c in enumerate(columns):
                        data_cols[c] = block[f][rows_t, rows_j]
                    writer.write_table(pa.table(data_cols, schema=schema))
                    del block
            tmp.replace(path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path


def _pandas_axes(data: Mapping) -> tuple[pd.DatetimeIndex | None, tuple[str, ...] | None]:
    """Timestamps and symbols of the pandas inputs of ``data`` (None where none tells).

    DataFrame columns give the symbols (as str; they must be unique and the same, in
    the same order, for every DataFrame); a ``DatetimeIndex`` shared by every pandas
    input gives the timestamps (converted to UTC, naive values taken as UTC).

    Raises
    ------
    ValueError
        If DataFrames disagree on their columns, have duplicate columns, or pandas
        inputs disagree on their index (each message names both inputs).
    """
    index: Any = None
    symbols: tuple[str, ...] | None = None
    ref_i = ref_c = None
    for k, v in data.items():
        if not isinstance(v, (pd.DataFrame, pd.Series)):
            continue
        if ref_i is None:
            ref_i, index = k, v.index
        elif not v.index.equals(index):
            raise ValueError(f"input {k!r} has another index than input {ref_i!r}; all pandas "
                             f"inputs must share one index (same timestamps, same order)")
        if isinstance(v, pd.DataFrame):
            cols = tuple(str(c) for c in v.columns)
            if ref_c is None:
                dup = sorted({c for c in cols if cols.count(c) > 1})
                if dup:
                    raise ValueError(f"input {k!r} has duplicate columns {dup}; each column "
                                     f"is one symbol")
                ref_c, symbols = k, cols
            elif cols != symbols:
                raise ValueError(f"input {k!r} has columns {list(cols)} but input {ref_c!r} "
                                 f"has {list(symbols or ())}; all DataFrames must share one "
                                 f"column list (same symbols, same order)")
    if isinstance(index, pd.DatetimeIndex):
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    else:
        index = None
    return index, symbols


@dataclass(frozen=True)
class _Fused:
    """Placeholder for a feature computed by the fused kernel (``n_outputs`` slabs)."""

    n_outputs: int


def _without(insts: list, fused: frozenset) -> list:
    """``insts`` with the fused features replaced by :class:`_Fused` placeholders."""
    return [_Fused(len(inst.columns)) if k in fused else inst for k, inst in enumerate(insts)]


def _close64(close: Any) -> np.ndarray:
    """``close`` as a C-ordered float64 (T, N) array.

    Numeric check as ``_api._as_panel``; the fused kernel itself reports +/-inf.
    """
    arr = np.asarray(close)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating)
                                     or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"close must be a numeric (T, N) array of real numbers, "
                         f"got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _fused_params(name: str, p: dict) -> dict:
    """Validate ``p`` exactly as the public per-feature function does; return it cleaned."""
    from workbench.features._api import _int, _positive

    if name == "sma":
        return {"window": _int(p["window"], "window", 1)}
    if name == "ema":
        return {"span": _int(p["span"], "span", 1)}
    if name == "rolling_std":
        window = _int(p["window"], "window", 2)
        ddof = _int(p["ddof"], "ddof", 0)
        if ddof >= window:
            raise ValueError(f"ddof must be an int in [0, window={window}), got {ddof}")
        return {"window": window, "ddof": ddof}
    if name == "rsi":
        return {"period": _int(p["period"], "period", 1)}
    if name == "macd":
        fast = _int(p["fast"], "fast", 1)
        slow = _int(p["slow"], "slow", 2)
        signal = _int(p["signal"], "signal", 1)
        if fast >= slow:
            raise ValueError(f"fast must be < slow={slow}, got {fast}")
        return {"fast": fast, "slow": slow, "signal": signal}
    if name == "bollinger":
        return {"window": _int(p["window"], "window", 2), "k": _positive(p["k"], "k")}
    if name in ("roc", "momentum"):
        return {"period": _int(p["period"], "period", 1)}
    if name == "rolling_volatility":
        return {"window": _int(p["window"], "window", 2),
                "periods_per_year": _positive(p["periods_per_year"], "periods_per_year")}
    return {}  # returns, log_returns


def _out_storage(out: Any, shape: tuple[int, int, int], dt: np.dtype) -> np.ndarray:
    """The (F, T, N) array behind ``compute(out=...)``, checked."""
    arr = out.storage if isinstance(out, FeatureBlock) else out
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"out must be a FeatureBlock or a numpy (F, T, N) array, "
                         f"got {type(out).__name__}")
    if arr.shape != shape:
        raise ValueError(f"out must have shape (F, T, N) = {shape}, got {arr.shape}")
    if arr.dtype != dt:
        raise ValueError(f"out must have dtype {dt} (the set's dtype), got {arr.dtype}")
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array")
    return arr
