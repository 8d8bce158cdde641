"""Gradient-boosted trees member: LightGBM on the features at t, position = 2 P(up) - 1.

The one non-torch member of the zoo. It maps the F features of one (time, asset) pair
(no sequence context) to the probability that the next return is positive and trades
``2p - 1``; the number of trees is chosen on the validation Sharpe ratio, like the
epochs of the torch members. torch is imported only when the Sharpe is scored (fit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

from workbench.models._params import (
    EstimatorParams,
    record_training_window,
    restore_training_window,
    training_window_meta,
)

__all__ = ["BoostedTreesModel"]

#: ``callback(model, record) -> bool | None``; a truthy return stops training.
EvalCallback = Callable[[Any, dict], Any]

#: Trees added between two validation evaluations.
EVAL_EVERY = 10


class BoostedTreesModel(EstimatorParams):
    """Gradient-boosted decision trees trading the sign of the next return.

    A LightGBM binary classifier (Ke et al. 2017, "LightGBM: A Highly Efficient Gradient
    Boosting Decision Tree") of ``1[r_{t+1} > 0]`` on the features at t of each (time,
    asset) pair; the position is ``X_t = 2 p_t - 1`` in [-1, 1] (vol scaling
    ``sigma_tgt / sigma_t`` is applied by the backtest and the Sharpe score, as for the
    torch members). This is the tree benchmark of the deep-momentum literature (e.g. the
    boosted-trees baselines of Lim, Zohren & Roberts 2019 and Wood et al. 2021).

    Training pairs are those of ``dataset.valid_mask()`` in the training rows whose target
    is realised inside the window (so not the last training row's). With
    ``weight_by_return`` each pair is weighted by ``|r_{t+1}| / sigma_t`` (normalised to
    mean 1) so that large moves count more. Trees are added ``EVAL_EVERY`` (10) at a time;
    after each step the validation Sharpe of the positions of the trees so far is scored
    (:func:`~workbench.models.score_positions`, net of ``cost_bps``) and training stops
    after ``patience`` trees without improvement; the best number of trees is kept.
    Deterministic for a given ``seed`` and ``n_jobs`` (LightGBM ``deterministic=True``).

    Parameters
    ----------
    n_estimators : int, default 300
        Maximum number of trees.
    learning_rate : float, default 0.05
        Shrinkage per tree (> 0).
    num_leaves : int, default 15
        Leaves per tree (>= 2).
    min_child_samples : int, default 50
        Minimum pairs per leaf (>= 1).
    subsample : float, default 0.8
        Fraction of pairs bagged for each tree, in (0, 1].
    colsample_bytree : float, default 0.8
        Fraction of features drawn for each tree, in (0, 1].
    reg_lambda : float, default 1.0
        L2 regularisation of leaf values (>= 0).
    patience : int, default 30
        Early stopping: trees without a better validation Sharpe (>= 1).
    weight_by_return : bool, default True
        Weight pairs by ``|r_{t+1}| / sigma_t``.
    target_vol : float, default 0.15
        Annualised vol target of the validation Sharpe.
    cost_bps : float, default 0.0
        Turnover cost (bps of vol-scaled turnover) in the validation Sharpe.
    n_jobs : int, default 2
        LightGBM threads.
    seed : int, default 0
        Seed of bagging and feature sampling.
    progress : bool, default True
        Show a tqdm bar over trees.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        Fitted booster holding the ``best_epoch_`` trees kept.
    history_ : list of dict
        Per evaluation: ``epoch`` (trees so far), ``train_loss`` (weighted training log
        loss), ``valid_sharpe`` (annualised, NaN without validation rows), ``seconds``.
    best_epoch_ : int
        Number of trees kept.
    best_valid_sharpe_ : float
        Validation Sharpe with ``best_epoch_`` trees.
    n_features_in_ : int
        Number of input features F.
    feature_names_in_ : tuple of str
        Feature names seen in ``fit``.
    training_window_ : tuple of int
        Rows ``(train_start, train_stop, valid_start, valid_stop)`` (-1 without valid).
    training_dates_ : tuple of str
        ISO 8601 timestamps of the first and last training row.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        patience: int = 30,
        weight_by_return: bool = True,
        target_vol: float = 0.15,
        cost_bps: float = 0.0,
        n_jobs: int = 2,
        seed: int = 0,
        progress: bool = True,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.patience = patience
        self.weight_by_return = weight_by_return
        self.target_vol = target_vol
        self.cost_bps = cost_bps
        self.n_jobs = n_jobs
        self.seed = seed
        self.progress = progress

    @property
    def context_length(self) -> int:
        """Steps of history one prediction reads: 1 (the features at t)."""
        return 1

    def _validate_params(self) -> None:
        from workbench.models._sequence import _is_int, _is_num, check_param

        def num(name: str, ok: Callable[[float], bool], expected: str) -> None:
            v = getattr(self, name)
            check_param(name, v, _is_num(v) and bool(np.isfinite(v)) and ok(float(v)),
                        expected)

        check_param("n_estimators", self.n_estimators, _is_int(self.n_estimators, 1),
                    "an int >= 1")
        num("learning_rate", lambda v: v > 0, "a number > 0")
        check_param("num_leaves", self.num_leaves, _is_int(self.num_leaves, 2), "an int >= 2")
        check_param("min_child_samples", self.min_child_samples,
                    _is_int(self.min_child_samples, 1), "an int >= 1")
        num("subsample", lambda v: 0 < v <= 1, "in (0, 1]")
        num("colsample_bytree", lambda v: 0 < v <= 1, "in (0, 1]")
        num("reg_lambda", lambda v: v >= 0, "a number >= 0")
        check_param("patience", self.patience, _is_int(self.patience, 1), "an int >= 1")
        check_param("weight_by_return", self.weight_by_return,
                    isinstance(self.weight_by_return, (bool, np.bool_)), "a bool")
        num("target_vol", lambda v: v > 0, "a number > 0")
        num("cost_bps", lambda v: v >= 0, "a number >= 0")
        check_param("n_jobs", self.n_jobs, _is_int(self.n_jobs, 1), "an int >= 1")
        check_param("seed", self.seed, _is_int(self.seed, 0), "an int >= 0")

    def _lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_data_in_leaf": int(self.min_child_samples),
            "bagging_fraction": float(self.subsample),
            "bagging_freq": 1 if float(self.subsample) < 1.0 else 0,
            "feature_fraction": float(self.colsample_bytree),
            "lambda_l2": float(self.reg_lambda),
            "num_threads": int(self.n_jobs),
            "seed": int(self.seed),
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    # -- fit / predict -----------------------------------------------------------
    def fit(self, dataset, train: slice, valid: slice | None = None, *,
            callbacks: Sequence[EvalCallback] = ()) -> BoostedTreesModel:
        """Grow trees on rows ``train``; choose their number on rows ``valid``.

        Parameters
        ----------
        dataset : workbench.models.MomentumDataset
            Features (T, N, F), next returns and ex-ante vol (T, N).
        train : slice
            Training rows ``[start, stop)``, read as ``x[train]`` (open and negative
            bounds allowed); pairs whose target ``r_{t+1}`` is realised at or after
            ``stop`` (the last row's) are left out.
        valid : slice, optional
            Validation rows for early stopping on the Sharpe ratio (only targets
            realised inside the block are scored); when omitted or empty
            (``slice(s, s)``) all ``n_estimators`` trees are kept.
        callbacks : sequence of callable, optional
            ``callback(model, record)`` after every evaluation (every 10 trees), ``record``
            the history entry; a truthy return stops training (the best trees so far are
            kept). Exceptions propagate.

        Returns
        -------
        BoostedTreesModel
            ``self``, fitted.

        Raises
        ------
        ValueError
            On an invalid hyperparameter (named in the message), ``train``/``valid`` not
            a slice with step 1, a non-empty ``valid`` that selects no row of the
            dataset, or fewer than two training pairs.
        """
        from tqdm.auto import tqdm

        from workbench.models._sequence import row_bounds, score_positions, valid_rows

        self._validate_params()
        feats, nxt, sig = dataset.features, dataset.next_returns, dataset.sigma
        T, N, F = feats.shape
        start, stop = row_bounds(train, T, "train")
        valid = valid_rows(valid, T)
        # targets realised at or after ``stop`` (the last bar's r_{t+1}) lie past the window
        ok = dataset.valid_mask(before=stop)
        tr_ok = np.zeros((T, N), dtype=bool)
        tr_ok[start:stop] = ok[start:stop]
        if int(tr_ok.sum()) < 2:
            raise ValueError(
                f"training window rows {train.start}:{train.stop} hold fewer than 2 valid "
                "(asset, time) pairs; widen the window or check the features' warm-up"
            )
        X = feats[tr_ok]
        y = (nxt[tr_ok] > 0).astype(np.float64)
        w = None
        if self.weight_by_return:
            w = np.abs(nxt[tr_ok]) / sig[tr_ok]
            w = w / w.mean() if w.mean() > 0 else np.ones_like(w)
        self.n_features_in_ = F
        self.feature_names_in_ = tuple(dataset.feature_names)
        record_training_window(self, dataset.index, slice(start, stop), valid)
        params = self._lgb_params()
        train_set = lgb.Dataset(X, label=y, weight=w, params=params,
                                feature_name=[f"f{k}" for k in range(F)])
        booster = lgb.Booster(params=params, train_set=train_set)

        if valid is not None:
            v_rows = np.arange(T)[valid]
            v_in = np.zeros((T, N), dtype=bool)
            v_in[v_rows] = np.isfinite(feats[v_rows]).all(axis=-1)
            Xv = feats[v_in]
            raw = np.zeros(len(Xv))
        self.history_: list[dict[str, float]] = []
        best_k, best_score, done = 0, -np.inf, 0
        bar = tqdm(total=int(self.n_estimators), desc=f"{type(self).__name__} trees",
                   disable=not self.progress, leave=False)
        t0 = time.perf_counter()
        try:
            while done < self.n_estimators:
                step = min(EVAL_EVERY, int(self.n_estimators) - done)
                finished = False
                for _ in range(step):
                    finished = booster.update()
                    if finished:  # no split improves the loss any more
                        break
                k = booster.current_iteration()
                bar.update(k - done)
                score = float("nan")
                if valid is not None and k > done and len(Xv):
                    raw += booster.predict(Xv, start_iteration=done, num_iteration=k - done,
                                           raw_score=True)
                if valid is not None:
                    pos = np.zeros((T, N))
                    pos[v_in] = np.tanh(raw / 2.0)  # 2 sigmoid(raw) - 1
                    score = score_positions(pos, dataset, valid, target_vol=self.target_vol,
                                            cost_bps=self.cost_bps, within=True)
                done = k
                rec = {"epoch": k, "train_loss": float(booster.eval_train()[0][2]),
                       "valid_sharpe": score, "seconds": time.perf_counter() - t0}
                t0 = time.perf_counter()
                self.history_.append(rec)
                bar.set_postfix(loss=f"{rec['train_loss']:.4f}", val_sharpe=f"{score:.3f}")
                stop = finished
                if valid is not None:
                    if np.isfinite(score) and score > best_score:
                        best_k, best_score = k, score
                    stop = stop or (best_k > 0 and k - best_k >= self.patience) or (
                        best_k == 0 and k >= self.patience)
                for cb in callbacks:
                    stop = bool(cb(self, rec)) or stop
                if stop:
                    break
        finally:
            bar.close()
        if best_k == 0:  # no validation (or never a finite score): keep every tree
            best_k = booster.current_iteration()
            best_score = self.history_[-1]["valid_sharpe"] if self.history_ else float("nan")
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best_k))
        self.best_epoch_ = int(best_k)
        self.best_valid_sharpe_ = float(best_score)
        return self

    def _check_fitted(self, x: Any, shape: str) -> np.ndarray:
        if not hasattr(self, "booster_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit() first")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 3 or x.shape[-1] != self.n_features_in_:
            name = "features" if shape == "T, N" else "x"
            raise ValueError(f"{name} must have shape ({shape}, {self.n_features_in_}), "
                             f"got {x.shape}")
        return x

    def _positions(self, X: np.ndarray) -> np.ndarray:
        """``2 p - 1`` for rows ``X`` (n, F) of finite features."""
        if len(X) == 0:
            return np.zeros(0)
        p = self.booster_.predict(X, num_threads=int(self.n_jobs))
        return 2.0 * np.asarray(p, dtype=np.float64) - 1.0

    def predict(self, features: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """Positions for every row (or the rows in ``rows``) of a feature block.

        Parameters
        ----------
        features : numpy.ndarray, shape (T, N, F)
            Inputs in the order of ``feature_names_in_``.
        rows : slice, optional
            Only these rows are computed (others are 0).

        Returns
        -------
        numpy.ndarray, shape (T, N)
            ``2 P(r_{t+1} > 0) - 1`` in [-1, 1]; 0 (flat) where any feature is not finite.

        Raises
        ------
        ValueError
            If the model is not fitted or ``features`` has the wrong shape.
        """
        features = self._check_fitted(features, "T, N")
        T, N, _ = features.shape
        sel = np.zeros(T, dtype=bool)
        sel[rows if rows is not None else slice(0, T)] = True
        m = np.isfinite(features).all(axis=-1) & sel[:, None]
        out = np.zeros((T, N))
        out[m] = self._positions(features[m])
        return out

    def predict_sequences(self, x: np.ndarray) -> np.ndarray:
        """Position at the last step of each sequence: ``(B, L, F)`` -> ``(B,)``.

        Only ``x[:, -1]`` is read (the trees see no sequence context); 0 (flat) where a
        last-step feature is not finite, as in :meth:`predict`.

        Raises
        ------
        ValueError
            If the model is not fitted or ``x`` is not (B, L, n_features_in_).
        """
        x = self._check_fitted(x, "B, L")
        last = x[:, -1]
        m = np.isfinite(last).all(axis=-1)
        out = np.zeros(len(last))
        out[m] = self._positions(last[m])
        return out

    # -- registry state (workbench.models.save_model / load_model) ---------------
    def _registry_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fitted state for the registry: ``({}, meta)``, no tensors.

        ``meta`` holds the fitted scalars and ``"booster"``, the kept trees in LightGBM's
        own text format (never a pickle). Raises ``ValueError`` when not fitted.
        """
        if not hasattr(self, "booster_"):
            raise ValueError(f"{type(self).__name__} is not fitted; nothing to save")
        meta = {
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": list(self.feature_names_in_),
            "best_epoch_": int(self.best_epoch_),
            "best_valid_sharpe_": float(self.best_valid_sharpe_),
            "history_": [dict(h) for h in self.history_],
            **training_window_meta(self),
            "booster": self.booster_.model_to_string(num_iteration=self.best_epoch_),
        }
        return {}, meta

    @classmethod
    def _registry_restore(cls, params: dict[str, Any], tensors: dict[str, Any],
                          meta: dict[str, Any]) -> BoostedTreesModel:
        """Rebuild a fitted model from :meth:`_registry_state` output (no unpickling).

        Raises ``ValueError`` if tensors are given or the booster text does not parse or
        does not take ``n_features_in_`` features.
        """
        if tensors:
            raise ValueError(f"{cls.__name__} stores no tensors, got {sorted(tensors)}")
        model = cls(**params)
        model._validate_params()
        n = int(meta["n_features_in_"])
        try:
            booster = lgb.Booster(model_str=meta["booster"])
        except lgb.basic.LightGBMError as exc:
            raise ValueError(f"saved booster text does not parse: {exc}") from exc
        if booster.num_feature() != n:
            raise ValueError(f"saved booster takes {booster.num_feature()} features, "
                             f"n_features_in_ says {n}")
        model.booster_ = booster
        model.n_features_in_ = n
        model.feature_names_in_ = tuple(meta["feature_names_in_"])
        model.best_epoch_ = int(meta["best_epoch_"])
        model.best_valid_sharpe_ = float(meta["best_valid_sharpe_"])
        model.history_ = [dict(h) for h in meta.get("history_", [])]
        restore_training_window(model, meta)
        return model
