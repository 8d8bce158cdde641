import pytest

from workbench.cli import main
from workbench.tuning import TSMOMStrategy, create_study, tune

DATA = {"universe": "daily", "start": "2004-01-01", "end": "2010-12-31"}


def test_tune_show_and_list(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    res = tune(TSMOMStrategy, data=DATA, storage=url, study_name="ts", n_trials=3,
               progress=False)
    assert main(["tune", "list", "--storage", url]) == 0
    assert "ts\t3 trials" in capsys.readouterr().out
    assert main(["tune", "show", "--study", "ts", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "params_lookback" in out and "Best:" in out
    assert f"{res.best_values['sharpe']:.6f}"[:6] in out


def test_worker_runs_a_stored_study_to_its_target(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    tune(TSMOMStrategy, data=DATA, storage=url, study_name="ts", n_trials=2, progress=False,
         refit=False)
    assert main(["tune", "worker", "--study", "ts", "--storage", url, "--n-trials", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count(" COMPLETE values=") == 2
    assert "complete 4" in out


def test_worker_errors_are_clear(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    assert main(["tune", "list", "--storage", "oracle://u:pw@h/db"]) == 2
    err = capsys.readouterr().err
    assert "unsupported storage" in err and "pw" not in err
    # a study whose model is not a workbench class is refused unless allowed
    from tests.tuning.fakes import CraftedModel

    tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=DATA, storage=url, study_name="c",
         n_trials=1, refit=False, progress=False, fixed={"epochs": 1})
    assert main(["tune", "worker", "--study", "nope", "--storage", url]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["tune", "worker", "--study", "c", "--storage", url, "--n-trials", "2"]) == 2
    assert "not a workbench model" in capsys.readouterr().err
    assert main(["tune", "worker", "--study", "c", "--storage", url, "--n-trials", "2",
                 "--allow-import", "tests.tuning.fakes"]) == 0


def test_a_worker_whose_trials_keep_failing_exits_1_not_2(tmp_path, capsys):
    """Exit 2 means a usage error; a run whose trials all fail is a failed run (1)."""
    from tests.tuning.fakes import BrokenModel

    url = f"sqlite:///{tmp_path}/s.db"
    create_study(BrokenModel, {"quality": (-1.0, 1.0)}, data=DATA, storage=url,
                 study_name="b", n_trials=3, fixed={"epochs": 1})
    assert main(["tune", "worker", "--study", "b", "--storage", url,
                 "--allow-import", "tests.tuning.fakes"]) == 1
    err = capsys.readouterr().err
    assert "5 trials in a row failed" in err and "loss diverged" in err


@pytest.mark.parametrize("command", [["show", "--study", "ts"], ["list"],
                                     ["worker", "--study", "ts", "--n-trials", "1"]])
@pytest.mark.parametrize("kind", ["sqlite", "journal-url", "journal-path", "default"])
def test_commands_that_need_a_study_never_create_a_missing_storage(tmp_path, monkeypatch, capsys,
                                                           command, kind):
    data = tmp_path / "data"
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data))
    target = {"sqlite": tmp_path / "s.db", "journal-url": tmp_path / "j.log",
              "journal-path": tmp_path / "p.jsonl",
              "default": data / "tuning" / "studies.db"}[kind]
    url = {"sqlite": f"sqlite:///{target}", "journal-url": f"journal://{target}",
           "journal-path": str(target), "default": None}[kind]
    argv = ["tune", *command] + ([] if url is None else ["--storage", url])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and str(target) in err
    assert not target.exists()
    assert not (data / "tuning").exists()  # not even the default's folder
    assert sorted(p.name for p in tmp_path.iterdir()) == (["data"] if data.exists() else [])


def test_read_only_commands_read_a_storage_that_tune_created(tmp_path, capsys):
    """Creating commands still create the file; show/list then read it."""
    log = tmp_path / "j.log"
    create_study(TSMOMStrategy, data=DATA, storage=str(log), study_name="ts", n_trials=2)
    assert log.is_file()
    assert main(["tune", "list", "--storage", str(log)]) == 0
    assert "ts\t0 trials" in capsys.readouterr().out
    assert main(["tune", "show", "--study", "nope", "--storage", str(log)]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
