"""Three workers on one PostgreSQL study; one is killed with SIGKILL in the middle of a trial."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tuning.fakes import CraftedModel
from workbench.tuning import create_study, load_study, trials_table

ROOT = Path(__file__).resolve().parents[2]
N_TRIALS = 9
DATA = {"universe": "daily", "start": "2004-01-01", "end": "2010-12-31"}


def _worker(url: str, study: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "workbench.cli", "tune", "worker", "--study", study,
           "--storage", url, "--n-trials", str(N_TRIALS), "--allow-import", "tests.tuning.fakes",
           "--heartbeat", "1", "--grace", "3"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def _completed_lines(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"trial (\d+) COMPLETE", text)]


@pytest.mark.slow
def test_killed_worker_trial_is_retried_and_the_study_ends_with_exactly_n(postgres_url,
                                                                           tmp_path):
    create_study(CraftedModel, {"quality": (-1.0, 1.0)}, data=DATA, n_trials=N_TRIALS,
                 storage=postgres_url, study_name="kill", n_folds=1, pruner="none",
                 fixed={"epochs": 4, "sleep_s": 0.4})
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    procs = [_worker(postgres_url, "kill", log) for log in logs]
    victim = procs[0]
    study = load_study("kill", postgres_url, heartbeat_interval=None)
    killed_number = None
    deadline = time.monotonic() + 120
    try:
        # wait until the victim has finished one trial and is in the middle of another
        while killed_number is None and time.monotonic() < deadline:
            for t in study.get_trials(deepcopy=False):
                if (t.state.name == "RUNNING" and t.user_attrs.get("worker", "").endswith(
                        f":{victim.pid}") and _completed_lines(logs[0].read_text())
                        and len(t.intermediate_values) == 0):
                    killed_number = t.number
                    break
            else:
                time.sleep(0.05)
        assert killed_number is not None, "the victim never started a second trial"
        time.sleep(0.6)  # into the trial (an epoch takes 0.4 s)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        for p in procs[1:]:
            assert p.wait(timeout=180) == 0, logs[procs.index(p)].read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert victim.returncode == -signal.SIGKILL
    table = trials_table(load_study("kill", postgres_url, heartbeat_interval=None))
    complete = table[table.state == "COMPLETE"]
    assert len(complete) == N_TRIALS, table[["number", "state", "retry_of"]]
    killed = table[table.number == killed_number].iloc[0]
    assert killed.state == "FAIL"
    retries = table[table.retry_of == killed_number]
    assert len(retries) == 1, table[["number", "state", "retry_of"]]
    retry = retries.iloc[0]
    assert retry.state == "COMPLETE"
    assert retry.params_quality == killed.params_quality  # same parameters re-run
    assert not retry.worker.endswith(f":{victim.pid}")
    # every trial a worker reported complete is in the study once, nothing else is complete
    reported = [n for log in logs for n in _completed_lines(log.read_text())]
    assert sorted(reported) == sorted(set(reported)), "a trial was completed twice"
    assert set(reported) == set(complete.number)
    assert complete.number.is_unique
    # each completed trial came from exactly one worker, and the survivors shared the work
    assert set(complete.worker.str.rsplit(":", n=1).str[1].astype(int)) <= {
        p.pid for p in procs}
    assert table[table.state == "RUNNING"].empty
