import pytest

import workbench.data
from workbench.live import demo_ensemble
from workbench.live._demo import _default_folder
from workbench.models import read_card


@pytest.fixture
def trainings(monkeypatch, tmp_path):
    """Train on two years only (seconds, not a minute); record each training."""
    real = workbench.data.load_universe
    calls = []

    def load(*args, **kw):
        calls.append(kw.get("end"))
        return real(*args, **{**kw, "start": "2007-01-01"})

    monkeypatch.setattr(workbench.data, "load_universe", load)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path))
    return calls


def _epochs(ens):
    return {m.epochs for m in ens.members.values()}


def test_cache_honours_the_epochs(trainings, tmp_path):
    assert _epochs(demo_ensemble(epochs=1)) == {1} and len(trainings) == 1
    assert _epochs(demo_ensemble(epochs=2)) == {2} and len(trainings) == 2  # not the cached 1
    assert _epochs(demo_ensemble(epochs=1)) == {1}  # each setting keeps its own folder
    assert _epochs(demo_ensemble(epochs=2)) == {2} and len(trainings) == 2
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == [
        "live-demo-2008-12-31-epochs1", "live-demo-2008-12-31-epochs2"]
    card = read_card(models / "live-demo-2008-12-31-epochs2")
    assert card["live_demo"] == {"train_end": "2008-12-31", "epochs": 2}
    # the default settings keep the documented folder
    assert _default_folder("2008-12-31", 3) == "live-demo-2008-12-31"


def test_explicit_path_is_retrained_when_the_settings_differ(trainings, tmp_path):
    path = tmp_path / "mine"
    demo_ensemble(path, epochs=1)
    assert _epochs(demo_ensemble(path, epochs=2)) == {2} and len(trainings) == 2
    assert read_card(path)["live_demo"]["epochs"] == 2
    assert _epochs(demo_ensemble(path, epochs=2)) == {2} and len(trainings) == 2
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        demo_ensemble(path, epochs=0)
