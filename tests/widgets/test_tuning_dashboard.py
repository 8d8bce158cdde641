import optuna
import pytest

from widgets import TuningDashboard
from widgets.tuning_dashboard import _mask_url

optuna.logging.set_verbosity(optuna.logging.WARNING)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

NAMES = ["sharpe", "max_drawdown", "turnover"]


def _objective_1(trial):
    x = trial.suggest_float("x", -2.0, 2.0)
    n = trial.suggest_int("n", 1, 100, log=True)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return -(x - 0.5) ** 2 + 0.01 * n + (kind == "a")


def _objective_3(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_float("y", 0.0, 1.0)
    return x + y, x * y, (1 - x) ** 2


def _single(storage=None, name=None, n=0):
    study = optuna.create_study(direction="maximize", storage=storage, study_name=name,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("workbench_objectives", ["sharpe"])
    if n:
        study.optimize(_objective_1, n_trials=n)
    return study


def _multi(storage=None, name=None, n=0):
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"], storage=storage,
                                study_name=name, sampler=optuna.samplers.RandomSampler(seed=1))
    study.set_user_attr("workbench_objectives", NAMES)
    if n:
        study.optimize(_objective_3, n_trials=n)
    return study


@pytest.mark.parametrize("make", [_single, _multi])
def test_empty_study_renders_with_notes(make):
    dash = TuningDashboard(make())
    layout = dash.panel()
    dash.stop()
    assert layout is not None and dash.trials.empty
    assert "COMPLETE** 0" in dash._header.object
    assert "no completed trials yet" in dash._header.object
    assert "importances" not in dash.figures and "parallel" not in dash.figures
    assert "need at least 2 completed trials" in dash._importance.note.object
    assert not dash._importance.showing_figure and dash._importance.note.visible
    assert set(dash.figures) == {f"history:{n}" for n in dash.objectives}


def test_single_objective_figures_use_the_objective_name():
    dash = TuningDashboard(_single(n=12), importance_every_s=0)
    figs = dash.figures
    assert set(figs) == {"history:sharpe", "importances", "parallel"}
    assert figs["history:sharpe"].layout.yaxis.title.text == "sharpe"
    assert figs["importances"].layout.xaxis.title.text == "importance for sharpe"
    labels = [d["label"] for d in figs["parallel"].data[0].dimensions]
    assert labels[-1] == "sharpe" and "n (log)" in labels and "kind" in labels
    for fig in figs.values():
        assert "Objective Value" not in fig.to_json()
    # no Pareto pane, only a note
    assert dash._pareto_pane is None
    assert "single-objective" in dash._pareto.note.object and dash._pareto.note.visible
    assert not dash._pareto.showing_figure
    # best value in the header is the study's best
    best = dash.study.best_trial
    assert f"trial {best.number})" in dash._header.object
    # history's best-so-far line ends at the best value (maximise)
    assert figs["history:sharpe"].data[1].y[-1] == pytest.approx(best.value)


def test_multi_objective_pareto_and_names(tmp_path):
    study = _multi(storage=f"sqlite:///{tmp_path / 't.db'}", name="multi", n=15)
    dash = TuningDashboard(study, importance_every_s=0)
    figs = dash.figures
    assert {"pareto", "importances", "parallel"} <= set(figs)
    for name in NAMES:
        assert figs[f"history:{name}"].layout.yaxis.title.text == name
    scene = figs["pareto"].layout.scene
    assert [scene.xaxis.title.text, scene.yaxis.title.text, scene.zaxis.title.text] == NAMES
    assert [t.name for t in figs["importances"].data] == NAMES
    labels = [d["label"] for d in figs["parallel"].data[0].dimensions]
    assert labels[-3:] == NAMES
    assert dash._pareto.showing_figure and not dash._pareto.note.visible
    assert dash._pareto_pane.object is figs["pareto"]
    # minimised objective: best-so-far is the running minimum
    assert figs["history:max_drawdown"].data[1].y[-1] == pytest.approx(
        min(t.values[1] for t in study.trials))
    assert "Pareto front **" in dash._header.object


def test_two_objective_pareto_axes():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("workbench_objectives", ["sharpe", "turnover"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)),
                   n_trials=6)
    fig = TuningDashboard(study).figures["pareto"]
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("sharpe", "turnover")


def test_table_rows_equal_trials_newest_first():
    study = _single(n=5)
    study.enqueue_trial({"x": 0.0, "n": 3, "kind": "b"})  # WAITING
    study.optimize(lambda t: 1 / 0, n_trials=1, catch=(ZeroDivisionError,))  # FAIL (runs queue)
    study.enqueue_trial({"x": 1.0, "n": 3, "kind": "b"})  # WAITING
    dash = TuningDashboard(study)
    table = dash._table.value
    assert list(table["number"]) == sorted((t.number for t in study.trials), reverse=True)
    assert len(table) == len(study.trials) == 7
    assert table.set_index("number").loc[5, "state"] == "FAIL"
    assert "**FAIL** 1" in dash._header.object and "**WAITING** 1" in dash._header.object
    assert "**COMPLETE** 5" in dash._header.object
    assert dash._table.pagination == "remote"


def test_refresh_picks_up_new_trials_and_is_idle_otherwise():
    study = _multi(n=3)
    dash = TuningDashboard(study, importance_every_s=0)
    assert dash.refresh() is False
    imp_before = dash.figures["importances"]
    study.optimize(_objective_3, n_trials=4)
    assert dash.refresh() is True
    assert len(dash.trials) == 7 and dash.trials["number"].iloc[0] == 6
    assert len(dash.figures["history:sharpe"].data[0].x) == 7
    assert dash.figures["importances"] is not imp_before
    assert dash.refresh() is False
    assert dash.refresh(force=True) is True


def test_importances_are_rate_limited():
    study = _single(n=4)
    dash = TuningDashboard(study, importance_every_s=3600)
    first = dash.figures["importances"]
    study.optimize(_objective_1, n_trials=2)
    assert dash.refresh() is True  # history and table update ...
    assert dash.figures["importances"] is first  # ... importances wait
    assert dash.refresh(force=True) and dash.figures["importances"] is not first


def test_importances_note_when_params_do_not_vary():
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 1.0, 1.0) + t.number, n_trials=3)
    dash = TuningDashboard(study)
    assert "importances" not in dash.figures
    assert "no parameter varies" in dash._importance.note.object


def test_load_by_storage_url_and_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _multi(storage=url, name="by-url", n=3)
    _single(storage=url, name="other", n=2)
    dash = TuningDashboard(storage=url, study_name="by-url")
    assert dash.study.study_name == "by-url" and dash.objectives == NAMES
    assert len(dash.trials) == 3
    # a worker elsewhere adds trials: the dashboard's own connection sees them
    optuna.load_study(study_name="by-url", storage=url).optimize(_objective_3, n_trials=2)
    assert dash.refresh() is True and len(dash.trials) == 5


def test_bad_study_name_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    _single(storage=url, name="exists", n=1)
    with pytest.raises(ValueError, match=r"study 'nope' not found in storage .*study\.db.*"
                                         r"studies there: \['exists'\]"):
        TuningDashboard(storage=url, study_name="nope")


def test_missing_sqlite_file_is_not_created(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(ValueError, match="missing.db.*does not exist"):
        TuningDashboard(storage=f"sqlite:///{path}", study_name="s")
    assert not path.exists()


def test_password_is_masked_in_errors():
    url = "postgresql+psycopg2://alice:s3cret@127.0.0.1:1/optuna"
    assert "s3cret" not in _mask_url(url) and "alice:***@" in _mask_url(url)
    with pytest.raises(ValueError) as info:
        TuningDashboard(storage=url, study_name="s")
    assert "s3cret" not in str(info.value)
    assert "alice:***@127.0.0.1" in str(info.value) and "'s'" in str(info.value)


def test_argument_errors():
    with pytest.raises(ValueError, match="give a study"):
        TuningDashboard()
    with pytest.raises(TypeError, match="optuna.study.Study"):
        TuningDashboard("my-study")
    with pytest.raises(ValueError, match="not both"):
        TuningDashboard(_single(), storage="sqlite://")
    with pytest.raises(ValueError, match="refresh_s"):
        TuningDashboard(_single(), refresh_s=0)


def test_panel_registers_periodic_refresh_and_stop_ends_it():
    dash = TuningDashboard(_single(n=2), refresh_s=0.5)
    dash.panel()
    assert dash.running and dash._callbacks[0].period == 500
    assert dash._callbacks[0].callback == dash._tick
    dash.stop()
    assert not dash.running and dash._callbacks == []
    dash.stop()  # idempotent


def test_storage_error_during_refresh_is_shown_not_raised():
    study = _single(n=2)
    dash = TuningDashboard(study)

    def broken(*a, **k):
        raise RuntimeError("connection lost")

    study.get_trials = broken
    assert dash.refresh() is False
    assert "connection lost" in dash.last_error and "refresh failed" in dash._header.object


@pytest.mark.parametrize("direction,important", [("maximize", "x"), ("minimize", "y")])
def test_importances_refer_to_good_values_in_the_study_direction(direction, important):
    # high values need x > 0.7, low values need y > 0.7: the important parameter flips
    study = optuna.create_study(direction=direction,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: 10 * max(t.suggest_float("x", 0, 1) - 0.7, 0)
                   - 10 * max(t.suggest_float("y", 0, 1) - 0.7, 0), n_trials=60)
    bars = TuningDashboard(study).figures["importances"].data[0]
    imp = dict(zip(bars.y, bars.x, strict=True))
    assert imp[important] > 0.8


def test_failed_drawing_is_retried_on_next_refresh(monkeypatch):
    import widgets.tuning_dashboard as mod

    study = _multi(n=2)
    dash = TuningDashboard(study)
    study.optimize(_objective_3, n_trials=2)
    real = mod._pareto_figure
    monkeypatch.setattr(mod, "_pareto_figure", lambda *a, **k: 1 / 0)
    assert dash.refresh() is False and "ZeroDivisionError" in dash.last_error
    monkeypatch.setattr(mod, "_pareto_figure", real)
    assert dash.refresh() is True and dash.last_error is None
    n_front = len(study.best_trials)
    assert dash.figures["pareto"].layout.title.text == f"Pareto front ({n_front} trials)"


def test_periodic_refresh_runs_on_a_running_event_loop():
    # as in JupyterLab: no server session, the kernel's asyncio loop drives the callback
    import asyncio

    study = _single(n=2)
    dash = TuningDashboard(study, refresh_s=0.1)

    async def main():
        dash.panel()
        study.optimize(_objective_1, n_trials=3)
        for _ in range(50):
            await asyncio.sleep(0.05)
            if len(dash.trials) == 5:
                break
        dash.stop()

    asyncio.run(main())
    assert len(dash.trials) == 5 and not dash.running


@pytest.mark.slow
def test_served_demo_study_finishes_after_its_session_ends(tmp_path):
    # The demo's worker threads outlive the page that started them: they must keep
    # running once Bokeh has torn the session (and its script's namespace) down, and two
    # workers must never take the same queued trial.
    import collections
    import os
    import socket
    import subprocess
    import time
    import urllib.request
    from pathlib import Path

    from widgets.serve import serve_command
    from workbench.tuning import resolve_storage

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd, env = serve_command("tuning_dashboard", [
        "--address", "127.0.0.1", "--port", str(port), "--check-unused-sessions", "500",
        "--unused-session-lifetime", "500"], environ={**os.environ, "TMPDIR": str(tmp_path)})
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/tuning_dashboard", timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        journal = next(tmp_path.glob("tuning-demo-*/demo.log"))
        deadline = time.monotonic() + 150
        while True:
            study = optuna.load_study(study_name="demo-momentum",
                                      storage=resolve_storage(str(journal)))
            states = collections.Counter(t.state.name for t in study.trials)
            if sum(states.values()) == 130 and not states["RUNNING"]:
                break
            assert time.monotonic() < deadline, (states, log.read_text()[-3000:])
            time.sleep(2)
    finally:
        proc.terminate()
        proc.wait(10)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert states["COMPLETE"] > 100
