import optuna
import pytest
from optuna import distributions as d

from workbench.models import CNNModel, DeepMomentumLSTM, MomentumTransformer
from workbench.tuning import deep_momentum_space, default_space, parse_space, validate_space
from workbench.tuning._spaces import sample_params, space_from_json, space_to_json
from workbench.tuning._strategies import MACDStrategy, TSMOMStrategy


def test_shorthand_forms_parse_to_distributions():
    s = parse_space({"a": (1, 5), "b": (0.1, 0.5), "c": (1e-4, 1e-1, "log"),
                     "e": {"low": 2, "high": 10, "step": 2}, "f": [64, 128],
                     "g": d.FloatDistribution(0.0, 1.0)})
    assert s["a"] == d.IntDistribution(1, 5)
    assert s["b"] == d.FloatDistribution(0.1, 0.5)
    assert s["c"] == d.FloatDistribution(1e-4, 1e-1, log=True)
    assert s["e"] == d.IntDistribution(2, 10, step=2)
    assert s["f"] == d.CategoricalDistribution([64, 128])
    assert list(s) == ["a", "b", "c", "e", "f", "g"]


@pytest.mark.parametrize("space, match", [
    ({}, "at least one"),
    ([("a", (1, 2))], "mapping"),
    ({"lr": (0.1, 0.01)}, "'lr'.*low must be < high"),
    ({"lr": (0.0, 0.1, "log")}, "'lr'.*log range needs low > 0"),
    ({"lr": (float("nan"), 0.1)}, "'lr'.*finite"),
    ({"x": []}, "'x'.*must not be empty"),
    ({"x": [1, 1]}, "'x'.*duplicate"),
    ({"x": [object()]}, "'x'.*choices must be"),
    ({"x": (1, 2, 3)}, "'x'.*tuple"),
    ({"x": {"low": 1}}, "'x'.*needs 'low' and 'high'"),
    ({"x": {"low": 1, "high": 2, "lg": True}}, "'x'.*unknown keys"),
    ({"x": "0.1-0.5"}, "'x'.*expected an optuna distribution"),
    ({"": (1, 2)}, "non-empty strings"),
])
def test_bad_spaces_name_the_problem(space, match):
    with pytest.raises(ValueError, match=match):
        parse_space(space)


def test_validate_space_rejects_unknown_names_and_bad_bounds():
    with pytest.raises(ValueError, match=r"'hiden_size'.*DeepMomentumLSTM does not take.*"
                                         r"hidden_size"):
        validate_space(parse_space({"hiden_size": (5, 160)}), DeepMomentumLSTM)
    with pytest.raises(ValueError, match=r"'dropout'.*rejects the value 1.5"):
        validate_space(parse_space({"dropout": (0.1, 1.5)}), DeepMomentumLSTM)
    with pytest.raises(ValueError, match=r"both searched and fixed"):
        validate_space(parse_space({"dropout": (0.1, 0.5)}), DeepMomentumLSTM,
                       fixed={"dropout": 0.2})
    with pytest.raises(ValueError, match=r"'lookback'.*rejects the value 0"):
        validate_space(parse_space({"lookback": (0, 10)}), TSMOMStrategy)


def test_deep_momentum_space_matches_the_literature_ranges():
    s = deep_momentum_space()
    assert s["dropout"] == d.FloatDistribution(0.1, 0.5)
    assert (s["hidden_size"].low, s["hidden_size"].high) == (5, 160)
    assert s["batch_size"].choices == (64, 128, 256)
    assert (s["lr"].low, s["lr"].high, s["lr"].log) == (1e-4, 1e-1, True)
    assert (s["max_grad_norm"].low, s["max_grad_norm"].high) == (1e-2, 1e2)
    validate_space(s, DeepMomentumLSTM)


@pytest.mark.parametrize("model", ["LinearModel", "MLPModel", MomentumTransformer, CNNModel,
                                   "BoostedTreesModel", TSMOMStrategy, MACDStrategy])
def test_every_default_space_is_accepted_by_its_model(model):
    import workbench.models as m

    cls = getattr(m, model) if isinstance(model, str) else model
    validate_space(default_space(model), cls)


def test_default_space_unknown_model():
    with pytest.raises(ValueError, match="no default search space for 'Foo'"):
        default_space("Foo")


def test_json_round_trip_and_sampling():
    s = default_space("MomentumTransformer")
    assert space_from_json(space_to_json(s)) == s
    with pytest.raises(ValueError, match="'x'.*not a valid distribution"):
        space_from_json({"x": "{nope"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    params = sample_params(trial, s)
    assert set(params) == set(s)
    for name, v in params.items():
        assert s[name]._contains(s[name].to_internal_repr(v))
    assert isinstance(params["n_layers"], int)
