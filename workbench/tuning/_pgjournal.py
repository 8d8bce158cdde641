"""Optuna journal storage kept in a PostgreSQL table, with heartbeats for dead workers.

Optuna's ``RDBStorage`` maps every study operation onto several ORM queries (about 70
SQL statements and 19 commits for one trial with 3 parameters and 10 reports), most of
the time spent in SQLAlchemy's ORM on the client. Optuna's ``JournalStorage`` instead
appends one record per operation to a log and replays the log into memory; with a file
backend that costs a few milliseconds per trial but offers no dead-worker detection and
needs a shared file system. This module stores the journal in PostgreSQL:

* :class:`PostgresJournalBackend` (Optuna's ``BaseJournalBackend`` and
  ``BaseJournalSnapshot``): one row per log record in ``<prefix>`` (``log_number BIGINT
  PRIMARY KEY, body TEXT``), appended in one round trip; records are numbered densely
  0, 1, 2, ... under a transaction-level advisory lock, so the numbers commit in order and
  a reader only ever sees a gap-free prefix of the log that never changes afterwards.
  Replay snapshots go to ``<prefix>_snapshot`` (one row).
* :class:`PostgresJournalStorage` (Optuna's ``JournalStorage`` and ``BaseHeartbeat``):
  heartbeats of running trials go to ``<prefix>_heartbeat`` with the *server's* clock, so
  :func:`optuna.storages.fail_stale_trials` (called by ``Study.optimize`` before each
  trial) fails the trials of workers that died, and a callback such as
  ``optuna.storages.RetryHeartbeatStaleTrialCallback`` queues their retries.

The journal records are Optuna's own (``JournalStorage`` writes them), so the table is a
plain Optuna journal: ``JournalStorage(PostgresJournalBackend(url))`` without heartbeats
reads and writes the same studies. SQL is issued through SQLAlchemy Core on psycopg2
(``postgresql+psycopg2://``), one statement string per operation in autocommit mode.
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import BaseJournalBackend
from optuna.storages.journal._base import BaseJournalSnapshot
from optuna.trial import FrozenTrial, TrialState

from ._storage import StorageError, mask_url

__all__ = ["PostgresJournalBackend", "PostgresJournalStorage", "DEFAULT_TABLE_PREFIX"]

#: Name of the journal table; the heartbeat and snapshot tables add ``_heartbeat`` and
#: ``_snapshot``.
DEFAULT_TABLE_PREFIX = "optuna_journal"

_PREFIX_RE = re.compile(r"[a-z_][a-z0-9_]{0,47}")
#: First key of the two-key advisory locks taken by this module ("OJ"); the second key is
#: a hash of the table prefix, so journals with different prefixes do not wait on each
#: other.
_LOCK_CLASS = 0x4F4A
#: Rows fetched per query when replaying a long journal (bounds client memory).
_READ_BATCH = 20_000
_PG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2", "postgres+psycopg2")


def _psycopg2_url(url: Any) -> str:
    """``url`` as a ``postgresql+psycopg2://`` SQLAlchemy URL.

    The backend needs psycopg2: it sends several statements in one query string, which
    psycopg 3 refuses when parameters are bound on the server. A bare ``postgresql://``
    or ``postgres://`` is therefore always given the psycopg2 driver.

    Raises
    ------
    StorageError
        When ``url`` is not a string naming PostgreSQL with the psycopg2 driver (or none).
    """
    if not isinstance(url, str) or "://" not in url:
        raise StorageError(f"PostgreSQL journal storage needs a URL such as "
                           f"postgresql://user:password@host:port/db, got {url!r}")
    url = url.strip()
    scheme, rest = url.split("://", 1)
    if scheme.lower() not in _PG_SCHEMES:
        raise StorageError(
            f"PostgreSQL journal storage: unsupported URL {mask_url(url)!r}: use "
            "postgresql://user:password@host:port/db (driver psycopg2; "
            f"scheme {scheme!r} is not one of {', '.join(_PG_SCHEMES)})")
    return "postgresql+psycopg2://" + rest


def _engine_defaults(engine_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``engine_kwargs`` completed with the defaults of the PostgreSQL RDB storage.

    Recycled connections and TCP keepalives keep a long-idle worker's pool usable without
    a ``pool_pre_ping`` round trip per call; ``isolation_level`` is forced to
    ``AUTOCOMMIT`` (each statement string is its own transaction).
    """
    if engine_kwargs is not None and not isinstance(engine_kwargs, dict):
        raise TypeError(f"engine_kwargs must be a dict or None, got {engine_kwargs!r}")
    kwargs = dict(engine_kwargs or {})
    level = kwargs.pop("isolation_level", "AUTOCOMMIT")
    if str(level).upper() != "AUTOCOMMIT":
        raise ValueError(f"engine_kwargs: isolation_level must be AUTOCOMMIT (the journal "
                         f"groups its statements itself), got {level!r}")
    kwargs["isolation_level"] = "AUTOCOMMIT"
    kwargs.setdefault("pool_recycle", 1800)
    args = dict(kwargs.get("connect_args") or {})
    args.setdefault("connect_timeout", 10)
    for key, value in (("keepalives", 1), ("keepalives_idle", 30),
                       ("keepalives_interval", 10), ("keepalives_count", 3)):
        args.setdefault(key, value)
    kwargs["connect_args"] = args
    return kwargs


def _reason(exc: BaseException) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class PostgresJournalBackend(BaseJournalBackend, BaseJournalSnapshot):
    """Optuna journal log (and replay snapshot) in PostgreSQL tables.

    Tables, created when missing (under an advisory lock, so concurrent first starts do
    not collide):

    * ``<table_prefix>(log_number BIGINT PRIMARY KEY, body TEXT NOT NULL)``: one row per
      journal record, ``body`` is the record's JSON (``json.dumps``, so NaN and infinities
      survive, which PostgreSQL's JSON types would reject).
    * ``<table_prefix>_snapshot``: at most one row, Optuna's pickled replay state with the
      Optuna version that wrote it (a snapshot of another version is ignored).
    * ``<table_prefix>_heartbeat(trial_id BIGINT PRIMARY KEY, heartbeat TIMESTAMPTZ)``:
      used by :class:`PostgresJournalStorage`.

    Ordering: :meth:`append_logs` takes ``pg_advisory_xact_lock`` and numbers the new rows
    ``max(log_number) + 1, ...`` in the same transaction, so log numbers are dense,
    assigned and committed in one total order across all processes, and every reader sees
    a prefix ``0 .. k`` of the final log (no gap that later fills). ``log_number`` ``i``
    is the ``i``-th record (0-based), matching Optuna's ``read_logs(log_number_from)``.

    Parameters
    ----------
    url : str
        SQLAlchemy URL ``postgresql://user:password@host:port/db`` (also ``postgres://``
        or ``postgresql+psycopg2://``); the psycopg2 driver is always used.
    table_prefix : str, default "optuna_journal"
        Name of the journal table and prefix of the others: lower-case letters, digits and
        underscores, at most 48 characters. Several journals can share a database under
        different prefixes.
    engine_kwargs : dict, optional
        Passed to ``sqlalchemy.create_engine``. Defaults added: ``pool_recycle=1800``,
        ``connect_args`` ``connect_timeout=10`` and TCP keepalives (as the workbench's
        PostgreSQL ``RDBStorage``); ``isolation_level`` must be (and is set to)
        ``"AUTOCOMMIT"``.

    Raises
    ------
    StorageError
        A URL that is not PostgreSQL, or a server that cannot be reached or refuses to
        create the tables (the message masks the password and gives the driver's reason).
    ValueError, TypeError
        A bad ``table_prefix`` or ``engine_kwargs``.

    Notes
    -----
    Snapshots are Python pickles, as in Optuna's Redis backend: anyone who can write the
    snapshot table can run code in the processes that load it. Give the database's write
    access only to trusted workers.
    """

    def __init__(self, url: str, *, table_prefix: str = DEFAULT_TABLE_PREFIX,
                 engine_kwargs: dict[str, Any] | None = None) -> None:
        if not isinstance(table_prefix, str) or not _PREFIX_RE.fullmatch(table_prefix):
            raise ValueError(f"table_prefix must be 1-48 lower-case letters, digits or "
                             f"underscores starting with a letter or underscore, got "
                             f"{table_prefix!r}")
        self._url = _psycopg2_url(url)
        self._table_prefix = table_prefix
        self._engine_kwargs = _engine_defaults(engine_kwargs)
        self._build_sql()
        self._engine = self._create_engine()
        self._local = threading.local()
        try:
            self._create_tables()
        except Exception as exc:  # OperationalError, ProgrammingError, driver errors
            self._engine.dispose()
            raise StorageError(f"cannot open PostgreSQL journal storage "
                               f"{mask_url(self._url)!r}: {_reason(exc)}") from exc

    # ------------------------------------------------------------------ set-up
    def _build_sql(self) -> None:
        log, snap, beat = (self._table_prefix, f"{self._table_prefix}_snapshot",
                           f"{self._table_prefix}_heartbeat")
        self._lock_key = zlib.crc32(self._table_prefix.encode()) - 2**31  # int4 range
        lock = f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, {self._lock_key})"
        self._sql_create = (
            f"{lock}; "
            f"CREATE TABLE IF NOT EXISTS {log} (log_number BIGINT PRIMARY KEY, "
            "body TEXT NOT NULL); "
            f"CREATE TABLE IF NOT EXISTS {snap} (id SMALLINT PRIMARY KEY CHECK (id = 0), "
            "optuna_version TEXT NOT NULL, snapshot BYTEA NOT NULL, "
            "saved TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()); "
            f"CREATE TABLE IF NOT EXISTS {beat} (trial_id BIGINT PRIMARY KEY, "
            "heartbeat TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())")
        self._sql_exists = "SELECT to_regclass(%(a)s), to_regclass(%(b)s), to_regclass(%(c)s)"
        # One query string = one implicit transaction (autocommit connection): the lock is
        # held until the INSERT commits, and the INSERT's snapshot (taken after the lock)
        # sees every earlier append, so max + 1 is the next free number.
        self._sql_append = (
            f"{lock}; "
            f"INSERT INTO {log} (log_number, body) SELECT m.base + u.ord - 1, u.body "
            f"FROM (SELECT COALESCE(MAX(log_number) + 1, 0) AS base FROM {log}) AS m, "
            "unnest(%(bodies)s::text[]) WITH ORDINALITY AS u(body, ord)")
        self._sql_read = (f"SELECT log_number, body FROM {log} WHERE log_number >= %(n)s "
                          f"ORDER BY log_number LIMIT {_READ_BATCH}")
        # the same, after the INSERT: the records the caller will ask for next, read in the
        # append's round trip (the last statement's rows are the query's result)
        self._sql_append_read = f"{self._sql_append}; {self._sql_read}"
        self._sql_save = (
            f"INSERT INTO {snap} (id, optuna_version, snapshot) VALUES "
            "(0, %(v)s, %(s)s) ON CONFLICT (id) DO UPDATE SET optuna_version = "
            "EXCLUDED.optuna_version, snapshot = EXCLUDED.snapshot, saved = now()")
        self._sql_load = f"SELECT optuna_version, snapshot FROM {snap} WHERE id = 0"
        self._sql_beat = (f"INSERT INTO {beat} (trial_id, heartbeat) VALUES (%(t)s, now()) "
                          "ON CONFLICT (trial_id) DO UPDATE SET heartbeat = now()")
        self._sql_beats = (f"SELECT now(), t.id, h.heartbeat FROM unnest(%(ids)s::bigint[]) "
                           f"AS t(id) LEFT JOIN {beat} AS h ON h.trial_id = t.id")
        self._tables = (log, snap, beat)

    def _create_engine(self):
        import sqlalchemy

        try:
            return sqlalchemy.create_engine(self._url, **self._engine_kwargs)
        except Exception as exc:  # ArgumentError, missing driver, bad kwargs
            raise StorageError(f"cannot open PostgreSQL journal storage "
                               f"{mask_url(self._url)!r}: {_reason(exc)}") from exc

    def _create_tables(self) -> None:
        with self._engine.connect() as conn:
            found = conn.exec_driver_sql(self._sql_exists, dict(zip("abc", self._tables)))
            if all(name is not None for name in found.one()):
                return
            conn.exec_driver_sql(self._sql_create)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_engine"], state["_local"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._engine = self._create_engine()
        self._local = threading.local()

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """The SQLAlchemy URL in use (``postgresql+psycopg2://``, password included)."""
        return self._url

    @property
    def table_prefix(self) -> str:
        """Name of the journal table (and prefix of the snapshot and heartbeat tables)."""
        return self._table_prefix

    @property
    def engine(self):
        """The ``sqlalchemy.engine.Engine`` (autocommit) shared by all calls."""
        return self._engine

    def dispose(self) -> None:
        """Close the pooled connections (the backend reconnects on its next call)."""
        self._engine.dispose()

    # ------------------------------------------------------------------ journal API
    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Journal records numbered ``log_number_from`` and later, oldest first.

        Parameters
        ----------
        log_number_from : int
            0-based number of the first record wanted (0 reads the whole log).

        Returns
        -------
        iterator of dict
            The decoded records, fetched in batches of 20,000 rows. They are a gap-free
            run of committed records; records committed while iterating may or may not
            be included. When this thread's last :meth:`append_logs` already fetched the
            records from ``log_number_from`` on (it does so in its own round trip, after
            its INSERT, because Optuna reads right after each append), those are returned
            without a query.

        Raises
        ------
        ValueError
            If ``log_number_from`` is negative or not an integer.
        """
        if isinstance(log_number_from, bool) or not isinstance(log_number_from, int) \
                or log_number_from < 0:
            raise ValueError(f"log_number_from must be an integer >= 0, got "
                             f"{log_number_from!r}")
        local = self._local
        cached, local.prefetched = getattr(local, "prefetched", None), None
        if cached is not None and cached[0] == log_number_from:
            rows = cached[1]
        else:
            rows = self._read_batch(log_number_from)
        local.next_read = log_number_from + len(rows)
        return self._iter_logs(log_number_from, rows)

    def _read_batch(self, start: int) -> list[tuple[int, str]]:
        with self._engine.connect() as conn:
            return conn.exec_driver_sql(self._sql_read, {"n": start}).all()

    def _iter_logs(self, start: int, rows: list[tuple[int, str]]) -> Iterator[dict[str, Any]]:
        expected = start
        while rows:
            for number, body in rows:
                if number != expected:  # never happens with this class's appends
                    raise RuntimeError(f"journal table {self._table_prefix!r}: expected log "
                                       f"number {expected}, found {number}; the table was "
                                       "written by something else")
                expected += 1
                yield json.loads(body)
            if len(rows) < _READ_BATCH:
                return
            rows = self._read_batch(expected)
            self._local.next_read = expected + len(rows)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append journal records atomically, after every record appended before.

        Parameters
        ----------
        logs : list of dict
            JSON-serialisable records (NaN and infinities allowed); all or none of them
            are stored, with consecutive log numbers.

        Raises
        ------
        TypeError
            If a record is not JSON-serialisable.
        sqlalchemy.exc.DBAPIError
            On a database error; nothing was appended unless the connection broke during
            the commit (then the records may be there, as with any database).
        """
        if not logs:
            return
        bodies = [json.dumps(log) for log in logs]
        local = self._local
        start = getattr(local, "next_read", None)
        local.prefetched = None
        with self._engine.connect() as conn:
            if start is None:
                conn.exec_driver_sql(self._sql_append, {"bodies": bodies})
            else:
                # Optuna's JournalStorage reads right after each append from where this
                # thread's last read ended: fetch those records in the same round trip.
                # They are read after the INSERT in its transaction, so they include the
                # new records. Kept per thread: another thread's append may commit in
                # between and must not hand this thread rows that miss its own records.
                rows = conn.exec_driver_sql(self._sql_append_read,
                                            {"bodies": bodies, "n": start}).all()
                local.prefetched = (start, rows)

    # ------------------------------------------------------------------ snapshots
    def save_snapshot(self, snapshot: bytes) -> None:
        """Store Optuna's pickled replay state, replacing the previous one.

        Parameters
        ----------
        snapshot : bytes
            ``pickle.dumps`` of Optuna's ``JournalStorageReplayResult``.
        """
        with self._engine.connect() as conn:
            conn.exec_driver_sql(self._sql_save, {"v": optuna.__version__,
                                                  "s": bytes(snapshot)})

    def load_snapshot(self) -> bytes | None:
        """The stored replay state, or None when there is none or another Optuna wrote it.

        Returns
        -------
        bytes or None
        """
        with self._engine.connect() as conn:
            row = conn.exec_driver_sql(self._sql_load).first()
        if row is None or row[0] != optuna.__version__:
            return None
        return bytes(row[1])

    # ------------------------------------------------------------------ heartbeats
    def record_heartbeat(self, trial_id: int) -> None:
        """Set the heartbeat of ``trial_id`` to the server's ``now()`` (upsert)."""
        with self._engine.connect() as conn:
            conn.exec_driver_sql(self._sql_beat, {"t": int(trial_id)})

    def heartbeats(self, trial_ids: list[int]) -> tuple[datetime, dict[int, datetime]]:
        """The server's clock and the last heartbeat of each of ``trial_ids`` that has one.

        Parameters
        ----------
        trial_ids : list of int

        Returns
        -------
        now : datetime
            The server's ``now()`` (timezone-aware).
        beats : dict of int to datetime
            Last heartbeat (timezone-aware) per trial id; ids without a heartbeat are
            missing.
        """
        with self._engine.connect() as conn:
            if not trial_ids:
                return conn.exec_driver_sql("SELECT now()").scalar_one(), {}
            rows = conn.exec_driver_sql(self._sql_beats,
                                        {"ids": [int(t) for t in trial_ids]}).all()
        return rows[0][0], {int(t): beat for _, t, beat in rows if beat is not None}


def _check_seconds(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer (seconds) or None, got {value!r}")
    return value


class PostgresJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna ``JournalStorage`` on PostgreSQL with heartbeats of running trials.

    Each storage operation appends one record to the journal table (one round trip) and
    replays the records other processes appended since the last call (one indexed range
    query), so a trial costs a handful of round trips instead of ``RDBStorage``'s ~70 ORM
    statements. With ``heartbeat_interval`` set, ``Study.optimize`` records a heartbeat of
    the running trial every ``heartbeat_interval`` seconds (``<prefix>_heartbeat``, stamped
    with the server's ``now()``), and :func:`optuna.storages.fail_stale_trials` (run by
    ``Study.optimize`` before each trial) sets RUNNING trials whose heartbeat is older than
    ``grace_period`` by the server's clock to FAIL and calls
    ``heartbeat_stale_trial_callback`` on each, exactly once per trial across all workers:
    the journal applies only the first FAIL record of a trial, and a worker whose record
    lost the race gets ``UpdateFinishedTrialError``, which ``fail_stale_trials`` skips.

    Parameters
    ----------
    url : str
        ``postgresql://user:password@host:port/db`` (see :class:`PostgresJournalBackend`).
    heartbeat_interval : int, optional
        Seconds between heartbeats; None (default) disables dead-worker detection.
    grace_period : int, optional
        Seconds without a heartbeat after which a RUNNING trial is stale; default
        ``2 * heartbeat_interval``. A RUNNING trial with no heartbeat at all (its worker
        died between creating it and the first heartbeat, or it was started with
        ``study.ask()`` outside ``optimize``) is stale once its ``datetime_start`` (the
        creating worker's clock) is older than the grace period by the server's clock.
    heartbeat_stale_trial_callback : callable, optional
        ``callback(study, frozen_trial)`` run after failing a stale trial, e.g.
        ``optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)``.
    table_prefix : str, default "optuna_journal"
        Journal table name (see :class:`PostgresJournalBackend`).
    engine_kwargs : dict, optional
        Passed to SQLAlchemy's ``create_engine`` (see :class:`PostgresJournalBackend`).

    Raises
    ------
    ValueError
        ``heartbeat_interval`` or ``grace_period`` not a positive integer or None (as in
        ``RDBStorage``, a grace period or callback without an interval is accepted and
        unused).
    TypeError
        A ``heartbeat_stale_trial_callback`` that is not callable.
    StorageError
        See :class:`PostgresJournalBackend`.

    Notes
    -----
    Method after Optuna's ``RDBStorage`` heartbeats (``optuna/storages/_rdb/storage.py``)
    and ``JournalStorage`` with its Redis backend. The replay keeps every trial of every
    study in the journal in memory in each process (as any ``JournalStorage``); a new
    process replays the log from the last snapshot (saved every 100 trials).

    Examples
    --------
    >>> import optuna
    >>> from optuna.storages import RetryHeartbeatStaleTrialCallback
    >>> storage = PostgresJournalStorage(  # doctest: +SKIP
    ...     "postgresql://user:pw@db:5432/optuna", heartbeat_interval=10, grace_period=30,
    ...     heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))
    >>> study = optuna.create_study(storage=storage, study_name="s")  # doctest: +SKIP
    """

    def __init__(self, url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None,
                 heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None]
                 | None = None, table_prefix: str = DEFAULT_TABLE_PREFIX,
                 engine_kwargs: dict[str, Any] | None = None) -> None:
        self.heartbeat_interval = _check_seconds("heartbeat_interval", heartbeat_interval)
        self.grace_period = _check_seconds("grace_period", grace_period)
        if heartbeat_stale_trial_callback is not None and not callable(
                heartbeat_stale_trial_callback):
            raise TypeError(f"heartbeat_stale_trial_callback must be callable or None, got "
                            f"{heartbeat_stale_trial_callback!r}")
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback
        backend = PostgresJournalBackend(url, table_prefix=table_prefix,
                                         engine_kwargs=engine_kwargs)
        try:
            super().__init__(backend)
        except Exception:
            backend.dispose()
            raise

    @property
    def backend(self) -> PostgresJournalBackend:
        """The :class:`PostgresJournalBackend` holding the journal."""
        return self._backend  # type: ignore[return-value]

    def dispose(self) -> None:
        """Close the backend's pooled connections (they reopen on the next call)."""
        self.backend.dispose()

    # ------------------------------------------------------------------ BaseHeartbeat
    def record_heartbeat(self, trial_id: int) -> None:
        """Stamp ``trial_id``'s heartbeat with the server's clock (one upsert)."""
        self.backend.record_heartbeat(trial_id)

    def _grace(self) -> timedelta:
        assert self.heartbeat_interval is not None
        seconds = self.grace_period if self.grace_period is not None else \
            2 * self.heartbeat_interval
        return timedelta(seconds=seconds)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """RUNNING trials of ``study_id`` whose heartbeat is older than the grace period.

        Ages are measured by the server's clock: ``now() - heartbeat``; for a trial without
        a heartbeat, ``now() - datetime_start``. No query is made when the study has no
        RUNNING trial.
        """
        grace = self._grace()
        with self._thread_lock:
            self._sync_with_backend()
            running = [(t._trial_id, t.datetime_start) for t in
                       self._replay_result.get_all_trials(study_id, (TrialState.RUNNING,))]
        if not running:
            return []
        now, beats = self.backend.heartbeats([tid for tid, _ in running])
        stale = []
        for trial_id, started in running:
            last = beats.get(trial_id)
            if last is None and started is not None:
                # the replay holds naive local times: make them aware before comparing
                last = started.astimezone(timezone.utc)
            if last is not None and now - last > grace:
                stale.append(trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        """Seconds between heartbeats, or None when dead-worker detection is off."""
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        """The callback run on each trial failed for a stale heartbeat, or None."""
        return self.heartbeat_stale_trial_callback
