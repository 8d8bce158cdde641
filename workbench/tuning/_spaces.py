"""Search spaces: parsing, validation against the model, JSON round trip and defaults."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from workbench._checks import is_real

__all__ = [
    "parse_space",
    "validate_space",
    "space_to_json",
    "space_from_json",
    "default_space",
    "deep_momentum_space",
    "sample_params",
]


def _distributions():
    from optuna import distributions as d

    return d


def _is_int(v: Any) -> bool:
    import numpy as np

    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _range(name: str, low: Any, high: Any, log: bool = False, step: Any = None):
    d = _distributions()
    if not (is_real(low) and is_real(high)):
        raise ValueError(f"search space for {name!r}: bounds must be numbers, got "
                         f"low={low!r}, high={high!r}")
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        raise ValueError(f"search space for {name!r}: bounds must be finite, got "
                         f"low={low!r}, high={high!r}")
    if not low < high:
        raise ValueError(f"search space for {name!r}: low must be < high, got "
                         f"low={low!r}, high={high!r}")
    if log and low <= 0:
        raise ValueError(f"search space for {name!r}: a log range needs low > 0, got "
                         f"low={low!r}")
    if log and step is not None:
        raise ValueError(f"search space for {name!r}: step and log cannot be combined")
    if step is not None and not (is_real(step) and step > 0):
        raise ValueError(f"search space for {name!r}: step must be a positive number, "
                         f"got {step!r}")
    if _is_int(low) and _is_int(high) and (step is None or _is_int(step)):
        return d.IntDistribution(int(low), int(high), log=bool(log),
                                 step=1 if step is None else int(step))
    return d.FloatDistribution(float(low), float(high), log=bool(log),
                               step=None if step is None else float(step))


def _one(name: str, spec: Any):
    d = _distributions()
    if isinstance(spec, d.BaseDistribution):
        return spec
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"low", "high", "log", "step", "choices"}
        if unknown:
            raise ValueError(f"search space for {name!r}: unknown keys {sorted(unknown)}; use "
                             "low/high/log/step or choices")
        if "choices" in spec:
            return _one(name, list(spec["choices"]))
        if "low" not in spec or "high" not in spec:
            raise ValueError(f"search space for {name!r}: a range needs 'low' and 'high', "
                             f"got {dict(spec)!r}")
        return _range(name, spec["low"], spec["high"], bool(spec.get("log", False)),
                      spec.get("step"))
    if isinstance(spec, tuple):
        if len(spec) == 3 and spec[2] == "log":
            return _range(name, spec[0], spec[1], log=True)
        if len(spec) != 2:
            raise ValueError(f"search space for {name!r}: a tuple must be (low, high) or "
                             f"(low, high, 'log'), got {spec!r}")
        return _range(name, spec[0], spec[1])
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"search space for {name!r}: choices must not be empty")
        for c in spec:
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise ValueError(f"search space for {name!r}: choices must be None, bool, int, "
                                 f"float or str, got {c!r} ({type(c).__name__})")
        if len(set(map(repr, spec))) != len(spec):
            raise ValueError(f"search space for {name!r}: duplicate choices in {spec!r}")
        return d.CategoricalDistribution(spec)
    raise ValueError(
        f"search space for {name!r}: expected an optuna distribution, (low, high), "
        f"(low, high, 'log'), a dict with low/high/log/step, or a list of choices; got {spec!r}"
    )


def parse_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a search-space specification into Optuna distributions.

    Parameters
    ----------
    space : mapping of str to spec
        One entry per hyperparameter. A spec is an ``optuna.distributions`` instance,
        ``(low, high)`` (integers give an integer range, otherwise a float range),
        ``(low, high, "log")`` (log-uniform), a dict ``{"low", "high", "log", "step"}``,
        or a list of choices (categorical; None, bool, int, float or str).

    Returns
    -------
    dict of str to optuna.distributions.BaseDistribution
        In the order given.

    Raises
    ------
    ValueError
        If ``space`` is empty or not a mapping, a name is not a non-empty string, or a
        spec is malformed (bounds not finite numbers, ``low >= high``, a log range with
        ``low <= 0``, empty or duplicate choices); the message names the parameter.
    """
    if not isinstance(space, Mapping):
        raise ValueError(f"space must be a mapping of parameter name to range, got "
                         f"{type(space).__name__}")
    if not space:
        raise ValueError("space must name at least one parameter")
    out = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"search space parameter names must be non-empty strings, "
                             f"got {name!r}")
        out[name] = _one(name, spec)
    return out


def _bounds(dist) -> list[Any]:
    d = _distributions()
    if isinstance(dist, d.CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]


def validate_space(space: Mapping[str, Any], model_factory: Callable[..., Any],
                   fixed: Mapping[str, Any] | None = None) -> None:
    """Check a parsed space against the model: known names, bounds it accepts.

    Builds ``model_factory(**fixed, name=value)`` for each bound (and each categorical
    choice) of every parameter and runs the estimator's own parameter check (the zoo's
    ``_validate_params``, otherwise the one in fit), so a range the model rejects fails
    before any trial. A bound rejected beside the defaults of the other parameters is
    accepted when the model takes it beside some bound of another searched parameter
    (conditional ranges, e.g. MACD ``short`` in (2, 30) and ``long`` in (20, 200) with
    ``short < long``); trials that draw a combination the model rejects are pruned (see
    :class:`workbench.tuning.WalkForwardObjective`).

    Parameters
    ----------
    space : dict of str to optuna distribution
        As returned by :func:`parse_space`.
    model_factory : callable
        A model class or ``factory(**params) -> estimator``.
    fixed : mapping, optional
        Non-tuned constructor arguments passed on every build.

    Raises
    ------
    ValueError
        If a name is also in ``fixed``, the model does not take a parameter of that name
        (the message lists the names it takes), or the model rejects a bound beside every
        bound of the other searched parameters (the message names the parameter, the bound
        and the model's own error).
    """
    fixed = dict(fixed or {})
    overlap = sorted(set(space) & set(fixed))
    if overlap:
        raise ValueError(f"parameters {overlap} are both searched and fixed; pick one")
    valid_names = _param_names(model_factory)
    for name in space:
        if valid_names is not None and name not in valid_names:
            raise ValueError(
                f"search space names {name!r}, which {_label(model_factory)} does not take; "
                f"its parameters are {sorted(valid_names)}"
            )
    for name, dist in space.items():
        others = [o for o in space if o != name]
        partners = [(o, v) for o in others for v in _bounds(space[o])]
        for value in _bounds(dist):
            exc = _rejection(model_factory, fixed, {name: value})
            if exc is None:
                continue
            # a bound valid only beside another searched value (short < long of a MACD
            # pair searched over overlapping ranges) is a conditional range, not an error:
            # the trials that draw an invalid combination are pruned (WalkForwardObjective)
            if any(_rejection(model_factory, fixed, {name: value, o: v}) is None
                   for o, v in partners):
                continue
            also = (f" (nor beside any bound of the other searched parameters {others})"
                    if others else "")
            raise ValueError(f"search space for {name!r}: {_label(model_factory)} rejects "
                             f"the value {value!r}{also}: {exc}") from exc


def _rejection(factory: Callable[..., Any], fixed: Mapping[str, Any],
               params: Mapping[str, Any]) -> Exception | None:
    """The error of building and checking ``factory(**fixed, **params)``, or None."""
    try:
        check_params(factory(**fixed, **params))
    except (TypeError, ValueError) as exc:
        return exc
    return None


def check_params(model: Any) -> Any:
    """Run an estimator's own parameter check (the zoo's ``_validate_params``); returns it.

    The zoo validates in ``fit`` (scikit-learn convention), so a bad combination would
    otherwise surface only once training starts.
    """
    check = getattr(model, "_validate_params", None)
    if callable(check):
        check()
    return model


def _label(factory: Any) -> str:
    return getattr(factory, "__name__", type(factory).__name__)


def _param_names(factory: Any) -> set[str] | None:
    """Constructor parameter names of a class (or an estimator's get_params), else None."""
    import inspect

    if isinstance(factory, type):
        try:
            sig = inspect.signature(factory)  # the constructor's, without self
        except (TypeError, ValueError):
            return None
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return None
        return set(sig.parameters)
    return None


def space_to_json(space: Mapping[str, Any]) -> dict[str, str]:
    """Serialise a parsed space (for the study's stored task), one JSON string per name."""
    d = _distributions()
    return {name: d.distribution_to_json(dist) for name, dist in space.items()}


def space_from_json(payload: Mapping[str, str]) -> dict[str, Any]:
    """Inverse of :func:`space_to_json`.

    Raises
    ------
    ValueError
        If an entry is not a valid Optuna distribution JSON (names the parameter).
    """
    d = _distributions()
    out = {}
    for name, text in payload.items():
        try:
            out[name] = d.json_to_distribution(text)
        except Exception as exc:  # optuna raises ValueError/KeyError/JSONDecodeError
            raise ValueError(f"stored search space for {name!r} is not a valid distribution: "
                             f"{text!r} ({exc})") from exc
    return out


def sample_params(trial, space: Mapping[str, Any]) -> dict[str, Any]:
    """Draw one value per parameter of a parsed space from an Optuna trial.

    Parameters
    ----------
    trial : optuna.trial.Trial
    space : dict of str to optuna distribution

    Returns
    -------
    dict
        Python scalars (ints stay ints).
    """
    d = _distributions()
    out: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, d.IntDistribution):
            out[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step,
                                          log=dist.log)
        elif isinstance(dist, d.FloatDistribution):
            out[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step,
                                            log=dist.log)
        elif isinstance(dist, d.CategoricalDistribution):
            out[name] = trial.suggest_categorical(name, dist.choices)
        else:  # pragma: no cover - optuna's deprecated distributions convert on parse
            raise ValueError(f"unsupported distribution for {name!r}: {dist!r}")
    return out


# -- defaults ---------------------------------------------------------------------------
def _training_space() -> dict[str, Any]:
    d = _distributions()
    return {
        "dropout": d.FloatDistribution(0.1, 0.5),
        "batch_size": d.CategoricalDistribution([64, 128, 256]),
        "lr": d.FloatDistribution(1e-4, 1e-1, log=True),
        "max_grad_norm": d.FloatDistribution(1e-2, 1e2, log=True),
    }


def deep_momentum_space() -> dict[str, Any]:
    """The deep-momentum LSTM search space of Lim, Zohren and Roberts (2019), table 1.

    Returns
    -------
    dict of str to optuna distribution
        ``dropout`` uniform on [0.1, 0.5]; ``hidden_size`` integer, log-uniform on
        [5, 160] (the paper's grid is 5, 10, 20, 40, 80, 160); ``batch_size`` one of
        64, 128, 256; ``lr`` log-uniform on [1e-4, 1e-1]; ``max_grad_norm``
        log-uniform on [1e-2, 1e2].

    Notes
    -----
    Source: Lim, Zohren and Roberts (2019), "Enhancing Time Series Momentum Strategies
    Using Deep Neural Networks", appendix (hyperparameter optimisation).
    """
    d = _distributions()
    space = _training_space()
    space["hidden_size"] = d.IntDistribution(5, 160, log=True)
    return {k: space[k] for k in ("dropout", "hidden_size", "batch_size", "lr",
                                  "max_grad_norm")}


def default_space(model: Any) -> dict[str, Any]:
    """A ready search space for a member of the zoo or a baseline strategy.

    Parameters
    ----------
    model : class or str
        ``DeepMomentumLSTM`` (:func:`deep_momentum_space`), ``LinearModel``,
        ``MLPModel``, ``MomentumTransformer``, ``CNNModel``, ``BoostedTreesModel``,
        ``TSMOMStrategy`` or ``MACDStrategy`` (the class or its name).

    Returns
    -------
    dict of str to optuna distribution
        Torch members share the deep-momentum training ranges (dropout, batch size,
        learning rate, max gradient norm) plus their architecture's sizes; the boosted
        trees search LightGBM's learning rate, leaves, minimum leaf size, row/column
        subsampling, L2 penalty and number of trees; TSMOM its lookback (21 to 252 bars);
        MACD its short and long time scales.

    Raises
    ------
    ValueError
        If no default space exists for ``model`` (the message lists the known models).
    """
    d = _distributions()
    name = model if isinstance(model, str) else getattr(model, "__name__", type(model).__name__)
    train = _training_space()
    spaces: dict[str, Callable[[], dict[str, Any]]] = {
        "DeepMomentumLSTM": deep_momentum_space,
        "LinearModel": lambda: dict(train),
        "MLPModel": lambda: {"hidden_size": d.IntDistribution(5, 160, log=True),
                             "num_layers": d.IntDistribution(1, 3), **train},
        "MomentumTransformer": lambda: {"d_model": d.CategoricalDistribution([8, 16, 32, 64]),
                                        "n_heads": d.CategoricalDistribution([1, 2, 4]),
                                        "n_layers": d.IntDistribution(1, 3), **train},
        "CNNModel": lambda: {"channels": d.CategoricalDistribution([8, 16, 32, 64]),
                             "kernel_size": d.IntDistribution(2, 5),
                             "num_layers": d.IntDistribution(1, 5), **train},
        "BoostedTreesModel": lambda: {
            "learning_rate": d.FloatDistribution(0.01, 0.3, log=True),
            "num_leaves": d.IntDistribution(4, 64, log=True),
            "min_child_samples": d.IntDistribution(10, 300, log=True),
            "subsample": d.FloatDistribution(0.5, 1.0),
            "colsample_bytree": d.FloatDistribution(0.5, 1.0),
            "reg_lambda": d.FloatDistribution(1e-3, 10.0, log=True),
            "n_estimators": d.IntDistribution(50, 500, log=True),
        },
        "TSMOMStrategy": lambda: {"lookback": d.IntDistribution(21, 252)},
        "MACDStrategy": lambda: {"short": d.IntDistribution(2, 16, log=True),
                                 "long": d.IntDistribution(24, 192, log=True)},
    }
    if name not in spaces:
        raise ValueError(f"no default search space for {name!r}; known: {sorted(spaces)}")
    return spaces[name]()
