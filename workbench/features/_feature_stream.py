"""FeatureStream: many streaming features over N symbols, one (N, F) row per bar."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from workbench.features import _register_core  # noqa: F401  (registers the first feature set)
from workbench.features._api import _check_nonnegative, _check_positive, _out_dtype
from workbench.features._catalogue import get

__all__ = ["FeatureStream"]

#: Order-book input fields: (N, k) per bar (k price levels), (B, N, k) per block.
_BOOK_FIELDS = ("bid_px", "ask_px", "bid_sz", "ask_sz")

#: Number of most recent :meth:`FeatureStream.update` durations kept.
LATENCY_WINDOW = 10_000

#: Catalogue features whose value is one market-wide series (the same for every symbol).
_MARKET_WIDE = frozenset({"mean_pairwise_correlation"})


class _NoBarMask:
    """Plan step: NaN in the market-wide columns ``cols`` where a symbol has no bar.

    A symbol has a bar where its close is not NaN (as ``workbench.data.Bars.mask``).
    """

    def __init__(self, cols: list[int]):
        self.cols = np.asarray(cols, dtype=np.intp)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        """Set ``out[j, cols]`` to NaN for every symbol j whose close is NaN."""
        gone = np.isnan(x["close"])
        if gone.any():
            out[np.ix_(gone.nonzero()[0], self.cols)] = np.nan


class FeatureStream:
    """Streaming feature engine: O(window) state per symbol, O(1) work per bar.

    Holds one streaming object (:class:`workbench.features.StreamFeature`) per feature,
    each advancing all N symbols in one compiled call; features whose streams hold the
    same state (equal ``_fuse_key()``: e.g. normalised returns of one span, SMA /
    Bollinger / rolling std of one window, correlation and beta of one market) are
    fused into one object and one call, with the same outputs. The output at every bar equals
    the batch functions' row for that bar on the same history (NaN where a symbol has
    no bar, NaN during warm-up).

    Parameters
    ----------
    features : sequence of (str, dict) or object with ``instances()``
        Either catalogue names with parameters, ``[("rsi", {"period": 14}), ("macd", {})]``
        (a bare name means default parameters; missing parameters take the catalogue
        entry's defaults), or an object (e.g. a ``FeatureSet``) whose ``instances()``
        returns objects with attributes ``name`` (catalogue key), ``params`` (dict) and
        ``columns`` (tuple of output column names, one per output).
    symbols : sequence of str
        The N symbols (unique), in the order of every input array's entries. A
        correlation/beta ``market`` given as a symbol name is looked up here; one given
        as an int is a position in this sequence. A feature without a market of its own
        uses the ``market`` attribute of ``features`` (a ``FeatureSet``'s market), else
        its catalogue default (the first symbol).
    dtype : {float64, float32}, optional
        Output dtype (state and arithmetic are always float64).

    Attributes
    ----------
    symbols : tuple of str
        The N symbols.
    columns : tuple of str
        The F output column names, in output order, named as
        :class:`workbench.features.FeatureSet` names them (e.g. ``"rsi_14"``,
        ``"macd_12_26_9_line"``; scale-like parameters left at their defaults are omitted).
    n_features : int
        F, the number of output columns (``len(columns)``).
    fields : tuple of str
        Input fields every bar must provide (union of the features' inputs).
    specs : tuple of (str, dict)
        Catalogue name and full parameters of each feature, in output order (a
        ``market`` resolved to its column index in :attr:`symbols`).

    Raises
    ------
    ValueError
        If ``symbols`` is empty or repeats a symbol, a parameter is unknown or invalid, a
        market symbol is not among ``symbols`` (or a market index is out of range), a
        feature has no streaming class, two features give the same column name, or
        ``dtype`` is not float32/float64.
    KeyError
        If a feature name is not in the catalogue.

    Notes
    -----
    Per update the Python work is proportional to the number of features and input
    fields, never to N, and nothing is allocated: :meth:`update` returns an internal
    buffer. Durations of the last 10,000 :meth:`update` calls are kept
    (:meth:`latency_percentiles`).
    """

    def __init__(self, features: Any, symbols: Sequence[str], *, dtype: Any = np.float64):
        if isinstance(symbols, (str, bytes)):
            raise ValueError(f"symbols must be a sequence of symbol names, got {symbols!r}")
        self.symbols = tuple(symbols)
        if not self.symbols:
            raise ValueError("symbols must be a non-empty sequence, got an empty one")
        first: dict[Any, int] = {}
        for j, sym in enumerate(self.symbols):
            if sym in first:
                raise ValueError(f"symbols must be unique: {sym!r} appears at positions "
                                 f"{first[sym]} and {j}")
            first[sym] = j
        self._dtype = _out_dtype(dtype)
        self.specs, columns, self._defs, own = self._resolve(features)
        from workbench.features._featureset import _market_index

        market = getattr(features, "market", None)  # a FeatureSet's market symbol
        j_set = (None if market is None
                 else _market_index(market, self.symbols, ""))
        defs, specs = [], []
        for k, ((defn, p), (name, _)) in enumerate(zip(self._defs, self.specs)):
            if "market" in p:
                if own[k] is not None:
                    j = _market_index(own[k], self.symbols, f"feature {k} ({name!r}): ")
                elif j_set is not None:
                    j = j_set
                else:
                    j = _market_index(p["market"], self.symbols, f"feature {k} ({name!r}): ")
                p = {**p, "market": j}
            defs.append((defn, p))
            specs.append((name, p))
        self._defs, self.specs = defs, tuple(specs)
        dup = sorted({c for c in columns if columns.count(c) > 1})
        if dup:
            raise ValueError(f"duplicate feature columns {dup}; each feature must appear once")
        self.columns = tuple(columns)
        self.n_features = len(self.columns)
        fields: list[str] = []
        for defn, _ in self._defs:
            fields += [f for f in defn.inputs if f not in fields]
        self.fields = tuple(fields)
        N = len(self.symbols)
        self._shape = (N,)
        # (N,) fields are rows of one matrix: one inf check per bar covers them all; the
        # price fields of features on price ratios or logs come first (one <= 0 check)
        positive = {f for defn, _ in self._defs for f in defn.positive}
        flat = [f for f in self.fields if f not in _BOOK_FIELDS]
        flat = [f for f in flat if f in positive] + [f for f in flat if f not in positive]
        self._npos = sum(f in positive for f in flat)
        nonneg = {f for defn, _ in self._defs for f in defn.nonnegative}
        self._nonneg = tuple(f for f in flat if f in nonneg)
        self._le = np.zeros((self._npos, N), dtype=bool)
        self._mat = np.full((len(flat), N), np.nan)
        self._flat = tuple(flat)
        self._in = {f: (self._mat[flat.index(f)] if f in flat else np.full(N, np.nan))
                    for f in self.fields}
        self._out = np.full((N, self.n_features), np.nan)
        self._res = (self._out if self._dtype == np.float64
                     else np.full((N, self.n_features), np.nan, dtype=self._dtype))
        self._lat = np.zeros(LATENCY_WINDOW)
        self._build()

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _resolve(features: Any) -> tuple[tuple, list[str], list, list]:
        """Specs, columns, (definition, params) pairs and each feature's own market.

        The own market (None: the set's or the default) is ``inst.market`` where the
        instance has it (``FeatureInstance``), else None.
        """
        specs: list[tuple[str, dict[str, Any]]] = []
        columns: list[str] = []
        defs: list[tuple[Any, dict[str, Any]]] = []
        own: list[Any] = []
        if hasattr(features, "instances"):
            for inst in features.instances():
                defn = get(inst.name)
                params = FeatureStream._params(defn, inst.params)
                cols = tuple(inst.columns)
                if len(cols) != len(defn.outputs):
                    raise ValueError(f"feature {inst.name!r} has {len(defn.outputs)} outputs, "
                                     f"got {len(cols)} column names {cols}")
                specs.append((defn.name, params))
                columns += cols
                defs.append((defn, params))
                own.append(getattr(inst, "market", None))
            return tuple(specs), columns, defs, own
        if isinstance(features, (str, bytes)) or not isinstance(features, Iterable):
            raise ValueError("features must be a sequence of (name, params) pairs or an object "
                             f"with an instances() method, got {features!r}")
        features = list(features)
        if not features:
            raise ValueError("features must name at least one feature, got none")
        for item in features:  # FeatureSet accepts mappings too; the stream keeps to pairs
            if not (isinstance(item, str) or (isinstance(item, Sequence) and len(item) == 2
                                              and isinstance(item[0], str))):
                raise ValueError(f"features entries must be (name, params) pairs, got {item!r}")
            if not isinstance(item, str):
                get(item[0])  # unknown names raise the catalogue's KeyError
            else:
                get(item)
        from workbench.features._featureset import FeatureSet

        # One naming scheme for batch and stream: FeatureSet names the columns.
        spec = FeatureSet(features=[i if isinstance(i, str) else (i[0], dict(i[1] or {}))
                                    for i in features])
        return FeatureStream._resolve(spec)

    @staticmethod
    def _params(defn: Any, given: Any) -> dict[str, Any]:
        """``given`` completed with the catalogue defaults, in the catalogue's order."""
        if not isinstance(given, Mapping):
            raise ValueError(f"params of feature {defn.name!r} must be a dict, got {given!r}")
        unknown = sorted(set(given) - set(defn.params))
        if unknown:
            raise ValueError(f"unknown parameters {unknown} for feature {defn.name!r}; "
                             f"its parameters are {list(defn.params)}")
        return {k: given.get(k, v) for k, v in defn.params.items()}

    def _build(self) -> None:
        """(Re)create the streaming objects and their output views into ``_out``."""
        N = len(self.symbols)
        plan: list[Any] = []
        groups: dict[tuple, tuple[int, list]] = {}
        wide: list[int] = []  # columns of market-wide values (one value for all symbols)
        c = 0
        for defn, params in self._defs:
            if defn.stream is None:
                raise ValueError(f"feature {defn.name!r} has no streaming class")
            feat = defn.stream(N, **params)
            k = len(defn.outputs)
            if feat.n_outputs != k:
                raise ValueError(f"stream class of {defn.name!r} has {feat.n_outputs} outputs, "
                                 f"the catalogue entry {k}")
            if defn.name in _MARKET_WIDE:
                wide += range(c, c + k)
            key = feat._fuse_key() if hasattr(feat, "_fuse_key") else None
            if key is None:
                plan.append((feat.update, self._out[:, c : c + k]))
            else:
                # streams sharing state: fused below into one object (first one's slot)
                if key not in groups:
                    groups[key] = (len(plan), [])
                    plan.append(None)
                groups[key][1].append((feat, c))
            c += k
        for key, (i, members) in groups.items():
            if len(members) == 1:
                feat, c = members[0]
                plan[i] = (feat.update, self._out[:, c : c + feat.n_outputs])
            else:  # key[0], the group class, writes its members' columns of the matrix
                plan[i] = (key[0](members).update, self._out)
        self._features = [p[0].__self__ for p in plan]
        if wide:  # last: NaN where the symbol has no bar, as FeatureSet writes them
            plan.append((_NoBarMask(wide).update, self._out))
        self._plan = tuple(plan)
        self._out[:] = np.nan
        self._res[:] = np.nan
        self._lat[:] = 0.0
        self._n_updates = 0

    def reset(self) -> None:
        """Forget all history: state, last output and latency records, as after construction."""
        self._build()

    # ------------------------------------------------------------------ updates

    def _check_bar(self, bar: Mapping[str, Any]) -> None:
        """Validate ``bar`` and copy its fields into the float64 input buffers."""
        for f, buf in self._in.items():
            try:
                a = bar[f]
            except (KeyError, IndexError, TypeError):
                raise ValueError(f"bar is missing input field {f!r} (needed: "
                                 f"{list(self.fields)})") from None
            if type(a) is not np.ndarray:
                a = np.asarray(a)
            if a.shape != buf.shape:
                if (f in _BOOK_FIELDS and a.ndim == 2 and a.shape[0] == self._shape[0]
                        and a.shape[1] >= 1):
                    # order-book levels: (N, k); a new depth k gets a new buffer
                    buf = self._in[f] = np.empty(a.shape)
                else:
                    want = "(N, k), k >= 1," if f in _BOOK_FIELDS else "(N,)"
                    raise ValueError(f"bar field {f!r} must have shape {want} with "
                                     f"N={self._shape[0]} symbols, got {a.shape}")
            if a.dtype.kind not in "fiu":
                raise ValueError(f"bar field {f!r} must be numeric, got dtype {a.dtype}")
            np.copyto(buf, a, casting="unsafe")
        # after the copies: one C call for all (N,) fields, one per order-book field
        if self._flat and np.isinf(self._mat).any():
            bad = self._flat[int(np.isinf(self._mat).any(axis=1).argmax())]
            raise ValueError(f"bar field {bad!r} contains +/-inf; use NaN for a missing bar")
        if self._npos and np.less_equal(self._mat[: self._npos], 0.0, out=self._le).any():
            r, j = divmod(int(self._le.argmax()), self._shape[0])
            raise ValueError(f"bar field {self._flat[r]!r} must hold positive prices (NaN "
                             f"marks a missing bar); it is {float(self._mat[r, j])!r} at "
                             f"column {j} (symbol {self.symbols[j]!r})")
        for f in self._nonneg:
            buf = self._in[f]
            if (buf < 0.0).any():
                j = int((buf < 0.0).argmax())
                raise ValueError(f"bar field {f!r} must be >= 0 (NaN marks a missing bar); it "
                                 f"is {float(buf[j])!r} at column {j} (symbol "
                                 f"{self.symbols[j]!r})")
        for f, buf in self._in.items():
            if f in _BOOK_FIELDS and np.isinf(buf).any():
                raise ValueError(f"bar field {f!r} contains +/-inf; use NaN for a missing bar")

    def update(self, bar: Mapping[str, Any]) -> np.ndarray:
        """Advance every feature by one bar.

        Parameters
        ----------
        bar : mapping of str to array_like
            For each field in :attr:`fields`, the new bar's values, shape (N,) (order-book
            fields ``bid_px ask_px bid_sz ask_sz``: (N, k)), in :attr:`symbols` order; NaN
            where a symbol has no bar (its state is left unchanged and its outputs are
            NaN). Extra fields are ignored.

        Returns
        -------
        numpy.ndarray, shape (N, F)
            This bar's features, columns as :attr:`columns`. The array is an internal
            buffer, overwritten by the next update: copy it to keep it.

        Raises
        ------
        ValueError
            If a needed field is missing, has a shape other than (N,) ((N, k) for book
            fields), is not numeric or contains inf, or a price field of a feature on
            price ratios or logs (``FeatureDef.positive``) holds a value <= 0, or a
            volume a feature weights by (``FeatureDef.nonnegative``, e.g. VWAP,
            Amihud) a value < 0 (the message names the field and symbol). No state
            changes then.
        """
        t0 = time.perf_counter_ns()
        self._check_bar(bar)
        x = self._in
        for step, out in self._plan:
            step(x, out)
        res = self._res
        if res is not self._out:
            np.copyto(res, self._out, casting="unsafe")
        n = self._n_updates
        self._lat[n % LATENCY_WINDOW] = (time.perf_counter_ns() - t0) * 1e-6
        self._n_updates = n + 1
        return res

    def update_many(self, block: Mapping[str, Any]) -> np.ndarray:
        """Advance by B bars at once (replaying history).

        Parameters
        ----------
        block : mapping of str to array_like
            For each field in :attr:`fields`, a (B, N) array of B consecutive bars
            ((B, N, k) for order-book fields).

        Returns
        -------
        numpy.ndarray, shape (B, N, F)
            A fresh array: row ``b`` is what :meth:`update` returns for bar ``b``.

        Raises
        ------
        ValueError
            If a needed field is missing, not 2-D with N columns, the fields disagree on
            B, a value is inf, or a price field as in :meth:`update` holds a value <= 0
            or a weighting volume a value < 0 (the message names the field, row and
            symbol). No state changes then.

        Notes
        -----
        Replayed bars are not recorded in the latency statistics.
        """
        arrs = {}
        B = None
        N = self._shape[0]
        for f in self.fields:
            try:
                a = block[f]
            except (KeyError, IndexError, TypeError):
                raise ValueError(f"block is missing input field {f!r} (needed: "
                                 f"{list(self.fields)})") from None
            a = np.asarray(a)
            nd = 3 if f in _BOOK_FIELDS else 2
            if (a.ndim != nd or a.shape[1] != N or (B is not None and a.shape[0] != B)
                    or (nd == 3 and a.shape[2] < 1)):
                want = f"({'B' if B is None else B}, {N}{', k), k >= 1' if nd == 3 else ')'}"
                raise ValueError(f"block field {f!r} must have shape {want}, got {a.shape}")
            if a.dtype.kind not in "fiu":
                raise ValueError(f"block field {f!r} must be numeric, got dtype {a.dtype}")
            a = np.ascontiguousarray(a, dtype=np.float64)
            if np.isinf(a).any():
                raise ValueError(f"block field {f!r} contains +/-inf; use NaN for a missing bar")
            if f in self._flat[: self._npos]:
                _check_positive(a, f"block field {f!r}", symbols=self.symbols)
            if f in self._nonneg:
                _check_nonnegative(a, f"block field {f!r}", symbols=self.symbols)
            B = a.shape[0]
            arrs[f] = a
        B = 0 if B is None else B
        res = np.empty((B, N, self.n_features), dtype=self._dtype)
        x = self._in
        plan = self._plan
        out = self._out
        for f, a in arrs.items():
            if x[f].shape != a.shape[1:]:
                x[f] = np.empty(a.shape[1:])
        for b in range(B):
            for f, a in arrs.items():
                x[f][...] = a[b]
            for step, o in plan:
                step(x, o)
            res[b] = out
        if self._res is not out and B:
            np.copyto(self._res, out, casting="unsafe")
        return res

    # ------------------------------------------------------------------ latency

    @property
    def latency(self) -> np.ndarray:
        """Durations in ms of the last (up to 10,000) :meth:`update` calls, oldest first."""
        n = self._n_updates
        if n <= LATENCY_WINDOW:
            return self._lat[:n].copy()
        i = n % LATENCY_WINDOW
        return np.concatenate([self._lat[i:], self._lat[:i]])

    def latency_percentiles(self) -> dict[str, float]:
        """Percentiles of the recorded :meth:`update` durations.

        Returns
        -------
        dict
            ``{"p50": ..., "p95": ..., "p99": ...}`` in milliseconds over the last (up to
            10,000) updates; NaN values before the first update.
        """
        lat = self._lat[: min(self._n_updates, LATENCY_WINDOW)]
        if lat.size == 0:
            return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}

    @property
    def state_nbytes(self) -> int:
        """Bytes of numpy state held by the streaming objects (constant over time)."""
        total = 0
        for feat in self._features:
            for v in vars(feat).values():
                if isinstance(v, np.ndarray):
                    total += v.nbytes
                elif isinstance(v, tuple):
                    total += sum(a.nbytes for a in v if isinstance(a, np.ndarray))
        return total

    def __repr__(self) -> str:
        return (f"FeatureStream({len(self.specs)} features, {self.n_features} columns, "
                f"{len(self.symbols)} symbols, {self._n_updates} updates)")
