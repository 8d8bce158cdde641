"""Study storage: the single-machine SQLite/journal default and PostgreSQL for many workers."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from workbench._storage import data_dir, mask_url
from workbench._storage import default_pg_driver as _default_pg_driver

__all__ = ["data_dir", "default_storage_url", "resolve_storage", "mask_url", "StorageError"]

#: Seconds between heartbeats of a running trial (RDB storages).
HEARTBEAT_INTERVAL = 10
#: Seconds without a heartbeat after which a running trial is failed (and retried).
GRACE_PERIOD = 30
#: Retries of a trial whose worker died.
MAX_RETRY = 3


class StorageError(ValueError):
    """A storage URL that cannot be used (unknown scheme, unreachable server, bad path)."""


def default_storage_url(create: bool = True) -> str:
    """SQLite file ``<data_dir>/tuning/studies.db`` as an SQLAlchemy URL.

    Its folder is created unless ``create`` is False.
    """
    folder = data_dir() / "tuning"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'studies.db'}"


def _journal_path(storage: str) -> Path | None:
    if storage.startswith("journal:"):
        rest = storage[len("journal:"):]
        return Path(rest[2:] if rest.startswith("//") else rest)
    if "://" not in storage and Path(storage).suffix in (".log", ".journal", ".jsonl"):
        return Path(storage)
    return None


def resolve_storage(storage: Any = None, *, heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
                    grace_period: int | None = GRACE_PERIOD, max_retry: int = MAX_RETRY,
                    engine_kwargs: dict[str, Any] | None = None, backend: str = "journal",
                    create: bool = True):
    """Turn a storage argument into an Optuna storage with heartbeats and retries.

    Parameters
    ----------
    storage : None, str or optuna.storages.BaseStorage
        None: the SQLite default (:func:`default_storage_url`). A string:
        ``sqlite:///path.db``; ``postgresql://user:pass@host:port/db`` (any
        SQLAlchemy PostgreSQL URL, e.g. ``postgresql+psycopg2://``); a journal file as
        ``journal:///path/study.log`` or a plain path ending in ``.log``, ``.journal`` or
        ``.jsonl``. A storage object is returned unchanged.
    heartbeat_interval : int or None, default 10
        Seconds between heartbeats of running trials (SQLite and PostgreSQL); None
        disables detection of dead workers.
    grace_period : int or None, default 30
        Seconds without a heartbeat after which a running trial is set to FAIL.
    max_retry : int, default 3
        How often a trial failed that way is re-queued with the same parameters
        (``optuna.storages.RetryHeartbeatStaleTrialCallback``).
    engine_kwargs : dict, optional
        Passed to SQLAlchemy's ``create_engine`` (database storages).
    backend : {"journal", "rdb"}, default "journal"
        PostgreSQL only: ``"journal"`` stores the study as Optuna's journal log in a
        PostgreSQL table (:class:`workbench.tuning._pgjournal.PostgresJournalStorage`,
        one INSERT per storage operation, heartbeats on the server clock; ~5 ms of
        storage work per trial against ~30 ms for ``"rdb"``, see
        ``benchmarks/bench_tuning.py``); ``"rdb"`` uses Optuna's ``RDBStorage`` tables
        (for studies already stored that way; Optuna's own dashboard reads those).
    create : bool, default True
        Create a SQLite or journal file that does not exist yet (an empty storage).
        False (read-only use: listing or showing studies) raises :class:`StorageError`
        instead, so nothing is left behind; database servers are not affected.

    Returns
    -------
    optuna.storages.BaseStorage
        ``PostgresJournalStorage`` or ``RDBStorage`` for PostgreSQL, ``RDBStorage`` for
        SQLite, ``JournalStorage`` for a journal file (the file journal has no heartbeat:
        a killed worker's trial stays RUNNING there, so use PostgreSQL for many
        machines).

    Raises
    ------
    StorageError
        On an unknown scheme, a SQLite or journal path that is empty or a folder, whose
        folder does not exist (or, with ``create=False``, whose file does not exist), or
        a database that cannot be reached; the message shows the URL with its password
        masked and the driver's reason.
    """
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if storage is None:
        storage = default_storage_url(create=create)
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str) or not storage.strip():
        raise StorageError(f"storage must be a URL string, a path or an Optuna storage, got "
                           f"{storage!r}")
    storage = storage.strip()
    if backend not in ("journal", "rdb"):
        raise StorageError(f"backend must be 'journal' or 'rdb', got {backend!r}")
    journal = _journal_path(storage)
    if journal is not None:
        if not str(journal).strip() or journal.is_dir():
            raise StorageError(f"journal storage {storage!r} names a folder, not a file: "
                               "give the journal file, e.g. journal:///path/studies.log")
        if not create and not journal.is_file():
            raise StorageError(f"journal storage {storage!r} does not exist (no file "
                               f"{journal})")
        if not journal.parent.is_dir():
            raise StorageError(f"journal storage {storage!r}: folder {journal.parent} does "
                               "not exist")
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(journal)))

    scheme = storage.split("://", 1)[0].lower() if "://" in storage else ""
    dialect = scheme.split("+", 1)[0]
    if dialect not in ("sqlite", "postgresql", "postgres"):
        raise StorageError(
            f"unsupported storage {mask_url(storage)!r}: use sqlite:///path.db, "
            "postgresql://user:password@host:port/db, journal:///path.log or a .log path"
        )
    if dialect == "postgres":  # SQLAlchemy only knows the postgresql:// spelling
        storage = "postgresql" + storage[len("postgres"):]
    if scheme in ("postgresql", "postgres"):
        storage = _default_pg_driver(storage)
    if dialect == "sqlite":
        path = storage.split("///", 1)[1].split("?", 1)[0] if "///" in storage else ""
        if not path and "///" in storage:
            # SQLAlchemy reads sqlite:/// as an in-memory database: a study stored there
            # vanishes with the process, which an empty path (a missing variable) never
            # asked for
            raise StorageError(f"SQLite storage {storage!r} names no file: use "
                               "sqlite:///path/studies.db (or sqlite:///:memory: for a "
                               "throwaway in-memory study)")
        if path and path != ":memory:" and Path(path).is_dir():
            raise StorageError(f"SQLite storage {storage!r} names a folder, not a file: "
                               f"{path}")
        if not create and path and path != ":memory:" and not Path(path).is_file():
            raise StorageError(f"SQLite storage {mask_url(storage)!r} does not exist (no file "
                               f"{path})")
        if path and path != ":memory:" and not Path(path).parent.is_dir():
            raise StorageError(f"SQLite storage {storage!r}: folder {Path(path).parent} does "
                               "not exist")
    kwargs = dict(engine_kwargs or {})
    if dialect.startswith("postgres"):
        # no pool_pre_ping: it costs a round trip per storage call (Optuna makes ~30 per
        # trial); TCP keepalives and recycling keep long-idle worker connections usable
        kwargs.setdefault("pool_recycle", 1800)
        args = kwargs.setdefault("connect_args", {})
        args.setdefault("connect_timeout", 10)
        for key, value in (("keepalives", 1), ("keepalives_idle", 30),
                           ("keepalives_interval", 10), ("keepalives_count", 3)):
            args.setdefault(key, value)
    elif dialect == "sqlite":
        # several processes on one file: wait for the lock instead of failing at once
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 60)
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = (RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                     if heartbeat_interval is not None else None)
            if dialect.startswith("postgres") and backend == "journal":
                from ._pgjournal import PostgresJournalStorage

                return PostgresJournalStorage(storage, heartbeat_interval=heartbeat_interval,
                                              grace_period=grace_period,
                                              heartbeat_stale_trial_callback=retry,
                                              engine_kwargs=kwargs)
            return RDBStorage(storage, engine_kwargs=kwargs,
                              heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                              heartbeat_stale_trial_callback=retry)
    except Exception as exc:  # sqlalchemy OperationalError, driver import errors, ...
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StorageError(f"cannot open storage {mask_url(storage)!r}: "
                           f"{reason[0] if reason else type(exc).__name__}") from exc
