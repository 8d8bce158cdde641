"""PostgreSQL journal storage: log order across writers, round trips, heartbeats, snapshots."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import JournalStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from workbench.tuning import StorageError
from workbench.tuning._pgjournal import PostgresJournalBackend, PostgresJournalStorage

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings(
    "ignore::optuna.exceptions.ExperimentalWarning",
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize",
)


@pytest.fixture
def prefix():
    """A table prefix no other test uses, so each test sees only its own journal."""
    return f"j{uuid.uuid4().hex[:12]}"


@pytest.fixture
def opened():
    """Collects backends/storages and closes their connections at the end of the test."""
    items = []
    yield items
    for item in items:
        item.dispose()


@pytest.fixture
def make(postgres_url, prefix, opened):
    """``make(**kwargs)``: a PostgresJournalStorage on this test's journal."""

    def _make(**kwargs):
        kwargs.setdefault("table_prefix", prefix)
        storage = PostgresJournalStorage(postgres_url, **kwargs)
        opened.append(storage)
        return storage

    return _make


def _sql(url: str, query: str, **params):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(query), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def _summary(trials):
    return [(t.number, t._trial_id, t.state.name, t.params, t.value,
             dict(t.intermediate_values)) for t in trials]


def _objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    trial.suggest_int("k", 1, 9)
    for step in range(3):
        trial.report(x * step, step)
    return x * x


# ---------------------------------------------------------------------------- backend
def test_backend_appends_and_reads_records_in_order(postgres_url, prefix, opened):
    backend = PostgresJournalBackend(postgres_url, table_prefix=prefix)
    opened.append(backend)
    assert list(backend.read_logs(0)) == []
    backend.append_logs([{"a": 1}, {"b": [1, 2]}])
    backend.append_logs([{"c": float("nan"), "d": float("inf"), "e": -0.1}])
    backend.append_logs([])
    logs = list(backend.read_logs(0))
    assert logs[:2] == [{"a": 1}, {"b": [1, 2]}]
    assert math.isnan(logs[2]["c"]) and logs[2]["d"] == math.inf and logs[2]["e"] == -0.1
    assert list(backend.read_logs(2))[0]["e"] == -0.1
    assert list(backend.read_logs(3)) == []
    assert _sql(postgres_url, f"SELECT log_number FROM {prefix} ORDER BY 1") == [(0,), (1,),
                                                                                  (2,)]
    with pytest.raises(ValueError, match="log_number_from"):
        backend.read_logs(-1)


def test_backends_share_a_prefix_and_are_isolated_by_another(postgres_url, prefix, opened):
    a = PostgresJournalBackend(postgres_url, table_prefix=prefix)
    b = PostgresJournalBackend("postgres://" + postgres_url.split("://", 1)[1],
                               table_prefix=prefix)
    other = PostgresJournalBackend(postgres_url, table_prefix=prefix + "_x")
    opened.extend([a, b, other])
    assert b.url.startswith("postgresql+psycopg2://")
    a.append_logs([{"n": 0}])
    b.append_logs([{"n": 1}])
    assert list(a.read_logs(0)) == list(b.read_logs(0)) == [{"n": 0}, {"n": 1}]
    assert list(other.read_logs(0)) == []
    tables = {r[0] for r in _sql(postgres_url, "SELECT tablename FROM pg_tables WHERE "
                                               "tablename LIKE :p", p=f"{prefix}%")}
    assert {prefix, f"{prefix}_heartbeat", f"{prefix}_snapshot"} <= tables


def test_read_refuses_a_table_with_a_gap(postgres_url, prefix, opened):
    backend = PostgresJournalBackend(postgres_url, table_prefix=prefix)
    opened.append(backend)
    backend.append_logs([{"n": 0}])
    _sql(postgres_url, f"INSERT INTO {prefix} VALUES (5, '{{}}')")
    with pytest.raises(RuntimeError, match="expected log number 1, found 5"):
        list(backend.read_logs(0))


def test_concurrent_appends_get_one_dense_order_and_readers_see_only_prefixes(
        postgres_url, prefix, opened):
    n_writers, n_appends = 3, 40
    backends = [PostgresJournalBackend(postgres_url, table_prefix=prefix)
                for _ in range(n_writers + 1)]
    opened.extend(backends)
    seen: list[list[dict]] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for i in range(n_appends):  # every other append is a pair of records
                batch = [{"w": w, "i": i, "part": p} for p in range(1 + i % 2)]
                backends[w].append_logs(batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        while not done.is_set():
            seen.append(list(backends[-1].read_logs(0)))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(n_writers)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert not errors, errors
    final = list(backends[0].read_logs(0))
    assert len(final) == n_writers * (n_appends + n_appends // 2)
    numbers = [r[0] for r in _sql(postgres_url, f"SELECT log_number FROM {prefix} "
                                                "ORDER BY log_number")]
    assert numbers == list(range(len(final)))
    for w in range(n_writers):
        mine = [(r["i"], r["part"]) for r in final if r["w"] == w]
        assert mine == sorted(mine)  # each writer's records in its own order
        for i in range(1, n_appends, 2):  # a pair is never split by another writer
            k = final.index({"w": w, "i": i, "part": 0})
            assert final[k + 1] == {"w": w, "i": i, "part": 1}
    assert len(seen) > 1
    for snapshot in seen:  # no reader ever saw a gap that filled later
        assert snapshot == final[:len(snapshot)]
    for b in backends:  # every reader replays the same log
        assert list(b.read_logs(0)) == final


def test_records_read_with_an_append_are_kept_per_thread(postgres_url, prefix, opened,
                                                         monkeypatch):
    """An append fetches the caller's next read in its round trip; another thread's
    append that commits earlier but finishes later must not replace those rows."""
    backend = PostgresJournalBackend(postgres_url, table_prefix=prefix)
    opened.append(backend)
    assert list(backend.read_logs(0)) == []
    paused, resume = threading.Event(), threading.Event()
    original = sa.engine.Connection.exec_driver_sql

    def hooked(self, statement, *args, **kwargs):
        result = original(self, statement, *args, **kwargs)
        if threading.current_thread().name == "B" and "INSERT" in statement:
            paused.set()  # B's record is committed; B has not kept its rows yet
            resume.wait(30)
        return result

    monkeypatch.setattr(sa.engine.Connection, "exec_driver_sql", hooked)

    def thread_b():
        assert list(backend.read_logs(0)) == []
        backend.append_logs([{"who": "B"}])

    b = threading.Thread(target=thread_b, name="B")
    b.start()
    assert paused.wait(30)
    backend.append_logs([{"who": "A"}])
    resume.set()
    b.join()
    assert [r["who"] for r in backend.read_logs(0)] == ["B", "A"]


# ---------------------------------------------------------------------------- storage
def test_study_round_trip_across_two_storages(make):
    a, b = make(), make()
    study_a = optuna.create_study(storage=a, study_name="rt", direction="maximize")
    study_a.set_user_attr("owner", "a")
    trial = study_a.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.report(0.5, 1)
    trial.report(float("nan"), 2)
    study_a.tell(trial, 2.5)

    study_b = optuna.load_study(study_name="rt", storage=b)
    assert study_b.user_attrs == {"owner": "a"}
    assert study_b.direction == optuna.study.StudyDirection.MAXIMIZE
    (seen,) = study_b.trials
    assert seen.params == {"x": x} and seen.value == 2.5 and seen.state == TrialState.COMPLETE
    assert seen.intermediate_values[1] == 0.5 and math.isnan(seen.intermediate_values[2])
    t2 = study_b.ask()
    t2.suggest_float("x", 0.0, 1.0)
    study_b.tell(t2, 3.0)
    assert [t.value for t in study_a.trials] == [2.5, 3.0]
    assert study_a.best_value == 3.0
    with pytest.raises(DuplicatedStudyError):
        optuna.create_study(storage=b, study_name="rt")
    with pytest.raises(KeyError):
        optuna.load_study(study_name="missing", storage=a)
    optuna.delete_study(study_name="rt", storage=b)
    assert optuna.get_all_study_names(storage=a) == []


def test_threads_sharing_one_storage_and_two_storages_sharing_one_backend(
        postgres_url, prefix, opened, make):
    storage = make()
    study = optuna.create_study(storage=storage, study_name="mt")
    study.optimize(_objective, n_trials=12, n_jobs=3)
    backend = PostgresJournalBackend(postgres_url, table_prefix=prefix)
    opened.append(backend)
    # two journal storages on one backend, optimising from two threads at once
    s1, s2 = JournalStorage(backend), JournalStorage(backend)
    threads = [threading.Thread(target=optuna.load_study(study_name="mt", storage=s).optimize,
                                args=(_objective,), kwargs={"n_trials": 10}) for s in (s1, s2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(32))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for other in (s1, s2):
        assert _summary(optuna.load_study(study_name="mt", storage=other).trials) == \
            _summary(trials)


_PROCESS_WORKER = textwrap.dedent("""
    import json, sys, time, optuna
    from tests.tuning.test_pgjournal import _objective, _summary
    from workbench.tuning._pgjournal import PostgresJournalStorage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, prefix, n, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    storage = PostgresJournalStorage(url, table_prefix=prefix)
    study = optuna.load_study(study_name="mp", storage=storage)
    study.optimize(_objective, n_trials=n)
    deadline = time.monotonic() + 60
    while len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) < total:
        if time.monotonic() > deadline:
            sys.exit("the other worker did not finish its trials")
        time.sleep(0.05)
    print(json.dumps(_summary(study.get_trials())))
""")


@pytest.mark.slow
def test_two_processes_optimising_one_study_replay_the_same_trials(postgres_url, make):
    storage = make()
    study = optuna.create_study(storage=storage, study_name="mp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    n = 15
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS_WORKER, postgres_url,
                               storage.backend.table_prefix, str(n), str(2 * n)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    mine = json.loads(json.dumps(_summary(study.get_trials())))
    assert [t[0] for t in mine] == list(range(2 * n))
    assert len({t[1] for t in mine}) == 2 * n
    for out, _ in outs:
        assert json.loads(out.strip().splitlines()[-1]) == mine


def test_storage_survives_pickling(make):
    storage = make()
    study = optuna.create_study(storage=storage, study_name="pk")
    study.optimize(_objective, n_trials=2)
    clone = pickle.loads(pickle.dumps(storage))
    try:
        assert isinstance(clone, PostgresJournalStorage)
        clone_study = optuna.load_study(study_name="pk", storage=clone)
        assert _summary(clone_study.trials) == _summary(study.trials)
        clone_study.optimize(_objective, n_trials=1)
        assert len(study.trials) == 3
    finally:
        clone.dispose()


def test_snapshot_saved_every_100_trials_and_loaded_by_a_new_storage(postgres_url, make,
                                                                     monkeypatch):
    storage = make()
    study = optuna.create_study(storage=storage, study_name="snap")
    study.add_trials([optuna.trial.create_trial(
        params={"x": i / 200}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        value=float(i)) for i in range(101)])
    prefix = storage.backend.table_prefix
    (version,) = _sql(postgres_url, f"SELECT optuna_version FROM {prefix}_snapshot")[0]
    assert version == optuna.__version__
    starts: list[int] = []
    original = PostgresJournalBackend.read_logs

    def spy(self, log_number_from):
        starts.append(log_number_from)
        return original(self, log_number_from)

    monkeypatch.setattr(PostgresJournalBackend, "read_logs", spy)
    fresh = make()
    assert starts[0] > 100  # replay began after the snapshot, not at record 0
    assert _summary(optuna.load_study(study_name="snap", storage=fresh).trials) == \
        _summary(study.trials)
    # a snapshot written by another Optuna version is ignored
    _sql(postgres_url, f"UPDATE {prefix}_snapshot SET optuna_version = '0.0.0'")
    assert fresh.backend.load_snapshot() is None
    starts.clear()
    again = make()
    assert starts[0] == 0
    assert _summary(optuna.load_study(study_name="snap", storage=again).trials) == \
        _summary(study.trials)


# ---------------------------------------------------------------------------- heartbeats
def _retry_storage(make, **kwargs):
    kwargs.setdefault("heartbeat_interval", 1)
    kwargs.setdefault("grace_period", 1)
    kwargs.setdefault("heartbeat_stale_trial_callback",
                      RetryHeartbeatStaleTrialCallback(max_retry=2))
    return make(**kwargs)


def test_heartbeat_enabled_only_with_an_interval(make):
    assert not is_heartbeat_enabled(make())
    storage = make(heartbeat_interval=3)
    assert is_heartbeat_enabled(storage)
    assert storage.get_heartbeat_interval() == 3
    assert storage._grace().total_seconds() == 6  # default: 2 * interval
    assert make(heartbeat_interval=3, grace_period=5)._grace().total_seconds() == 5


def test_stopped_heartbeat_fails_the_trial_and_queues_one_retry(make):
    storage = _retry_storage(make)
    study = optuna.create_study(storage=storage, study_name="hb")
    dead = study.ask()
    dead.suggest_float("x", 0.0, 1.0)
    storage.record_heartbeat(dead._trial_id)  # one heartbeat, then the "worker" is gone
    time.sleep(1.6)
    alive = study.ask()  # just started: no heartbeat yet, but younger than the grace period
    alive2 = study.ask()
    storage.record_heartbeat(alive2._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == [dead._trial_id]
    fail_stale_trials(study)
    states = {t.number: t.state for t in study.trials}
    assert states[dead.number] == TrialState.FAIL
    assert states[alive.number] == states[alive2.number] == TrialState.RUNNING
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.params == study.trials[dead.number].params
    assert retry.system_attrs["failed_trial"] == dead.number
    fail_stale_trials(study)  # already failed: nothing more happens
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1
    # the next trial a worker asks for is the retry, with the same parameters
    nxt = study.ask()
    assert nxt.number == retry.number and nxt.params == retry.params


def test_age_is_measured_by_the_server_clock(make, postgres_url):
    storage = _retry_storage(make, grace_period=30)
    study = optuna.create_study(storage=storage, study_name="clock")
    trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == []
    prefix = storage.backend.table_prefix
    _sql(postgres_url, f"UPDATE {prefix}_heartbeat SET heartbeat = now() - interval '31 s' "
                       "WHERE trial_id = :t", t=trial._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]
    storage.record_heartbeat(trial._trial_id)  # a new heartbeat makes it fresh again
    assert storage._get_stale_trial_ids(study._study_id) == []


def test_trial_without_heartbeat_is_stale_only_after_the_grace_period(make):
    storage = _retry_storage(make)
    study = optuna.create_study(storage=storage, study_name="nohb")
    trial = study.ask()
    assert storage._get_stale_trial_ids(study._study_id) == []
    time.sleep(1.3)
    assert storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]


def test_two_workers_failing_the_same_trial_run_the_callback_once(make):
    calls: list[int] = []
    lock = threading.Lock()

    def callback(study, trial):
        with lock:
            calls.append(trial.number)
        RetryHeartbeatStaleTrialCallback()(study, trial)

    workers = [_retry_storage(make, heartbeat_stale_trial_callback=callback) for _ in range(2)]
    study0 = optuna.create_study(storage=workers[0], study_name="race")
    trial = study0.ask()
    workers[0].record_heartbeat(trial._trial_id)
    time.sleep(1.6)
    # both workers find the trial stale before either fails it
    barrier = threading.Barrier(2)
    for w in workers:
        found = w._get_stale_trial_ids

        def both_found(study_id, found=found):
            ids = found(study_id)
            barrier.wait(timeout=30)
            return ids

        w._get_stale_trial_ids = both_found
    studies = [optuna.load_study(study_name="race", storage=w) for w in workers]
    threads = [threading.Thread(target=fail_stale_trials, args=(s,)) for s in studies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [trial.number]
    assert len(study0.get_trials(states=(TrialState.WAITING,))) == 1
    # the journal refuses a second FAIL of a finished trial (what fail_stale_trials skips)
    with pytest.raises(UpdateFinishedTrialError):
        workers[1].set_trial_state_values(trial._trial_id, TrialState.FAIL)


def test_optimize_records_heartbeats_by_the_server(make, postgres_url):
    storage = make(heartbeat_interval=1)
    study = optuna.create_study(storage=storage, study_name="opt")
    prefix = storage.backend.table_prefix
    beats: list[int] = []

    def objective(trial):
        time.sleep(1.3)  # one heartbeat at start, one after an interval
        beats.append(len(_sql(postgres_url, f"SELECT 1 FROM {prefix}_heartbeat "
                                            "WHERE trial_id = :t", t=trial._trial_id)))
        return 0.0

    study.optimize(objective, n_trials=2)
    assert beats == [1, 1]
    rows = _sql(postgres_url, f"SELECT trial_id FROM {prefix}_heartbeat ORDER BY 1")
    assert [r[0] for r in rows] == [t._trial_id for t in study.trials]


_KILLED_WORKER = textwrap.dedent("""
    import sys, time, optuna
    from workbench.tuning._pgjournal import PostgresJournalStorage
    storage = PostgresJournalStorage(sys.argv[1], table_prefix=sys.argv[2],
                                     heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="kill", storage=storage)

    def objective(trial):
        trial.suggest_float("x", 0.0, 1.0)
        print("started", flush=True)
        time.sleep(600)
        return 0.0

    study.optimize(objective, n_trials=1)
""")


@pytest.mark.slow
def test_killed_worker_trial_is_failed_and_retried_by_another(make):
    storage = _retry_storage(make, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="kill")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WORKER,
                             storage.backend.url, storage.backend.table_prefix], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(2.5)  # beating: the trial stays RUNNING past the grace period
        fail_stale_trials(study)
        (running,) = study.trials
        assert running.state == TrialState.RUNNING
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
    time.sleep(2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].params == running.params
    assert study.trials[1].system_attrs["failed_trial"] == 0


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, error, match", [
    ({"heartbeat_interval": 0}, ValueError, "heartbeat_interval must be a positive integer"),
    ({"heartbeat_interval": 1.5}, ValueError, "heartbeat_interval"),
    ({"heartbeat_interval": True}, ValueError, "heartbeat_interval"),
    ({"heartbeat_interval": 1, "grace_period": -1}, ValueError, "grace_period"),
    ({"heartbeat_stale_trial_callback": 3}, TypeError, "heartbeat_stale_trial_callback"),
    ({"table_prefix": "Bad-Name"}, ValueError, "table_prefix"),
    ({"engine_kwargs": {"isolation_level": "SERIALIZABLE"}}, ValueError, "AUTOCOMMIT"),
])
def test_bad_arguments_are_named(postgres_url, kwargs, error, match):
    with pytest.raises(error, match=match):
        PostgresJournalStorage(postgres_url, **kwargs)


@pytest.mark.parametrize("url, match", [
    ("mysql://u:secret@host/db", "unsupported URL"),
    ("postgresql+asyncpg://u:secret@host/db", "unsupported URL"),
    ("not a url", "needs a URL"),
    (None, "needs a URL"),
])
def test_bad_url_is_refused(url, match):
    with pytest.raises(StorageError, match=match) as info:
        PostgresJournalBackend(url)
    assert "secret" not in str(info.value)


def test_unreachable_server_names_the_masked_url():
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StorageError, match=r"cannot open PostgreSQL journal storage") as info:
        PostgresJournalStorage(f"postgresql://u:secret@127.0.0.1:{port}/db")
    assert "secret" not in str(info.value) and "***" in str(info.value)
