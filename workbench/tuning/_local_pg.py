"""Throwaway PostgreSQL cluster on loopback, for tests, benchmarks and demos.

:class:`LocalPostgres` runs ``initdb`` in a fresh temporary folder, starts a server with
``pg_ctl`` on ``127.0.0.1`` and a free port, creates one database and hands back its
SQLAlchemy URL; :meth:`LocalPostgres.stop` shuts the server down and deletes the folder.
It lets the tuning tests, the tuning benchmark and the notebooks exercise Optuna's
PostgreSQL storage (DESIGN.md section 8) without a PostgreSQL service on the machine.

Never keep data you care about in it: authentication is ``trust`` (no passwords), the
folder is deleted on stop and at interpreter exit, and nothing is backed up. For real
studies, point ``workbench tune`` at a managed PostgreSQL server.

Needs the server binaries (``initdb``, ``pg_ctl``, ``postgres``): Debian's ``postgresql``
package, which ``tools/system-deps.sh`` installs. ``initdb`` refuses to run as root, so
under uid 0 the cluster belongs to the ``postgres`` system user and every server command
runs through ``runuser -u postgres --`` (or ``su postgres``).
"""

from __future__ import annotations

import atexit
import errno
import glob
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LocalPostgres"]

#: Glob patterns of PostgreSQL ``bin`` folders searched when ``initdb``/``pg_ctl`` are not
#: on ``PATH``; the highest version wins. A module-level tuple so tests can monkeypatch it.
SEARCH_DIRS: tuple[str, ...] = ("/usr/lib/postgresql/*/bin",)

_BINARIES = ("initdb", "pg_ctl", "postgres")
_INSTALL_HINT = (
    "install Debian's `postgresql` package (`tools/system-deps.sh` does it: "
    "apt-get install --no-install-recommends postgresql)"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
#: Settings the class controls itself; a caller may not override them.
_RESERVED_SETTINGS = frozenset({"port", "listen_addresses", "unix_socket_directories"})
_DEFAULT_SETTINGS = {"max_connections": "200"}
#: Server log phrases (``lc_messages`` is C) that mean the TCP port could not be bound.
_BIND_FAILURES = ("could not bind", "address already in use", "could not create any tcp/ip")
_PORT_ATTEMPTS = 5
_LOG_TAIL_LINES = 30
#: ``sizeof(sockaddr_un.sun_path) - 1`` on Linux: the longest unix socket path.
_MAX_SOCKET_PATH = 107
_INITDB_TIMEOUT_S = 120.0
#: Where ``runuser`` lives when root's PATH lacks the sbin folders.
_RUNUSER_PATHS: tuple[str, ...] = ("/usr/sbin/runuser", "/sbin/runuser")


def _version_key(bin_dir: str) -> tuple[int, ...]:
    """Sort key of ``/usr/lib/postgresql/<version>/bin``: the version's numbers."""
    return tuple(int(x) for x in re.findall(r"\d+", Path(bin_dir).parent.name))


def _has_binaries(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in _BINARIES)


def _find_bin_dir() -> Path:
    """Folder holding ``initdb``, ``pg_ctl`` and ``postgres`` of one installation.

    ``PATH`` first (the folder ``initdb`` really lives in, symlinks resolved, so that
    ``pg_ctl`` finds the matching ``postgres``), then :data:`SEARCH_DIRS`, highest version
    first.

    Raises
    ------
    FileNotFoundError
        When no folder holds all three binaries; the message says how to install them.
    """
    candidates: list[Path] = []
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(os.path.realpath(found)).parent)
    matches = [d for pattern in SEARCH_DIRS for d in glob.glob(pattern)]
    candidates.extend(Path(d) for d in sorted(matches, key=_version_key, reverse=True))
    for folder in candidates:
        if _has_binaries(folder):
            return folder
    raise FileNotFoundError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH nor in "
        f"{', '.join(SEARCH_DIRS) or '(no search folders)'}: {_INSTALL_HINT}."
    )


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_port_free(port: int) -> None:
    """Raise RuntimeError naming ``port`` when the server could not bind 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The server sets SO_REUSEADDR too: a port in TIME_WAIT is usable, a listened one not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"({exc})"
            raise RuntimeError(
                f"LocalPostgres: port {port} on 127.0.0.1 {reason}; pass another port= or "
                "port=None to pick a free one"
            ) from exc


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _privilege_prefix() -> tuple[list[str], tuple[int, int] | None]:
    """Command prefix and (uid, gid) to run server commands as ``postgres`` under root.

    Returns ``([], None)`` when the effective uid is not 0.

    Raises
    ------
    RuntimeError
        Running as root without a ``postgres`` system user, or without runuser and su.
    """
    if os.geteuid() != 0:
        return [], None
    import pwd

    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "LocalPostgres: running as root, and initdb refuses to run as root, but there "
            "is no `postgres` system user to run the cluster as; "
            f"{_INSTALL_HINT} (it creates the user) or run as an unprivileged user"
        ) from None
    ids = (account.pw_uid, account.pw_gid)
    runuser = shutil.which("runuser") or next(
        (p for p in _RUNUSER_PATHS if os.access(p, os.X_OK)), None
    )
    if runuser:
        return [runuser, "-u", "postgres", "--"], ids
    su = shutil.which("su") or ("/bin/su" if os.access("/bin/su", os.X_OK) else None)
    if su:
        # `su USER -s SHELL -c CMD`: the command is one shell string, built in _command.
        return [su, "postgres", "-s", "/bin/sh", "-c"], ids
    raise RuntimeError(
        "LocalPostgres: running as root needs `runuser` or `su` to run the cluster as the "
        "`postgres` user; neither was found"
    )


class LocalPostgres:
    """A throwaway PostgreSQL server on 127.0.0.1 in a temporary folder.

    Meant for tests, benchmarks and demos only: ``trust`` authentication, and the whole
    cluster is deleted on :meth:`stop` (and at interpreter exit). Use as a context manager
    (``__enter__`` starts, ``__exit__`` stops) or call :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    root : str or Path, optional
        Existing folder in which the temporary cluster folder is created (default: the
        system temp folder). Under root the ``postgres`` user must be able to reach it,
        so avoid private folders such as pytest's ``tmp_path``; the path must stay short
        enough for the unix socket (about 80 characters).
    port : int, optional
        TCP port on 127.0.0.1. Default: a free port picked at start, with a new pick (up
        to 5 tries) when another process takes it first.
    user : str, default "workbench"
        Superuser name created by ``initdb`` (letters, digits, underscore).
    dbname : str, default "workbench"
        Database created after start (same characters); ``"postgres"`` creates none.
    settings : Mapping of str to str, optional
        Extra server settings passed as ``-c name=value`` (they may override the default
        ``max_connections=200``; ``port``, ``listen_addresses`` and
        ``unix_socket_directories`` are reserved). The defaults are durable (``fsync`` on);
        pass ``settings={"fsync": "off", "synchronous_commit": "off"}`` for speed, which
        also makes ``initdb`` skip its syncs.
    start_timeout : float, default 30.0
        Seconds to wait for the server to start and accept connections (``pg_ctl -t``).

    Attributes
    ----------
    url : str
        ``postgresql+psycopg2://USER@127.0.0.1:PORT/DBNAME`` while running.
    port : int or None
        The port in use (the requested one before start, None when picked and stopped).
    data_dir, log_path : Path or None
        ``<folder>/data`` and ``<folder>/postgres.log`` while running, else None.
    running : bool
        Whether the server process is alive.

    Raises
    ------
    ValueError, TypeError
        Bad arguments, naming the parameter and value.

    Examples
    --------
    >>> from sqlalchemy import create_engine, text
    >>> with LocalPostgres(settings={"fsync": "off"}) as pg:  # doctest: +SKIP
    ...     engine = create_engine(pg.url)
    ...     with engine.connect() as conn:
    ...         conn.execute(text("SELECT 1")).scalar()
    1
    """

    def __init__(
        self,
        root: str | Path | None = None,
        port: int | None = None,
        user: str = "workbench",
        dbname: str = "workbench",
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"LocalPostgres: root must be a path or None, got {root!r}")
        if port is not None:
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ValueError(
                    f"LocalPostgres: port must be an int in 1..65535 or None, got {port!r}"
                )
        for name, value in (("user", user), ("dbname", dbname)):
            if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
                raise ValueError(
                    f"LocalPostgres: {name} must be 1-63 letters, digits or underscores "
                    f"starting with a letter or underscore, got {value!r}"
                )
        if (
            isinstance(start_timeout, bool)
            or not isinstance(start_timeout, (int, float))
            or not math.isfinite(start_timeout)
            or start_timeout <= 0
        ):
            raise ValueError(
                f"LocalPostgres: start_timeout must be a positive number of seconds, "
                f"got {start_timeout!r}"
            )
        self._root = Path(root) if root is not None else None
        self._requested_port = port
        self._user = user
        self._dbname = dbname
        self._settings = {**_DEFAULT_SETTINGS, **self._check_settings(settings)}
        self._start_timeout = float(start_timeout)
        self._folder: Path | None = None
        self._port: int | None = None
        self._bin_dir: Path | None = None
        self._prefix: list[str] = []
        self._owner_pid: int | None = None

    @staticmethod
    def _check_settings(settings: Mapping[str, Any] | None) -> dict[str, str]:
        if settings is None:
            return {}
        if not isinstance(settings, Mapping):
            raise TypeError(
                f"LocalPostgres: settings must be a mapping of name to value, got "
                f"{type(settings).__name__}"
            )
        checked: dict[str, str] = {}
        for name, value in settings.items():
            if not isinstance(name, str) or not _SETTING_NAME.fullmatch(name):
                raise ValueError(f"LocalPostgres: settings has an invalid name {name!r}")
            if name.lower() in _RESERVED_SETTINGS:
                raise ValueError(
                    f"LocalPostgres: settings[{name!r}] is set by LocalPostgres itself; "
                    "use the port= argument for the port"
                )
            if isinstance(value, bool):
                value = "on" if value else "off"
            if not isinstance(value, (str, int, float)):
                raise TypeError(
                    f"LocalPostgres: settings[{name!r}] must be a str (or number), got "
                    f"{type(value).__name__}"
                )
            text = str(value)
            if any(ch in text for ch in "\0\n\r"):
                raise ValueError(f"LocalPostgres: settings[{name!r}] contains a control char")
            checked[name] = text
        return checked

    # ------------------------------------------------------------------ properties
    @property
    def port(self) -> int | None:
        """TCP port of the server on 127.0.0.1 (None before a picked port is chosen)."""
        return self._port if self._port is not None else self._requested_port

    @property
    def data_dir(self) -> Path | None:
        """The cluster's data folder ``<folder>/data``, or None when not started."""
        return None if self._folder is None else self._folder / "data"

    @property
    def log_path(self) -> Path | None:
        """The server log ``<folder>/postgres.log``, or None when not started."""
        return None if self._folder is None else self._folder / "postgres.log"

    @property
    def url(self) -> str:
        """SQLAlchemy URL ``postgresql+psycopg2://USER@127.0.0.1:PORT/DBNAME``.

        Raises
        ------
        RuntimeError
            When the server has not been started (or was stopped).
        """
        if self._folder is None or self._port is None:
            raise RuntimeError("LocalPostgres.url: the server is not running; call start()")
        return f"postgresql+psycopg2://{self._user}@127.0.0.1:{self._port}/{self._dbname}"

    @property
    def running(self) -> bool:
        """Whether the postmaster process of this cluster is alive."""
        pid = self._postmaster_pid()
        return pid is not None and _pid_alive(pid)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalPostgres(port={self.port!r}, dbname={self._dbname!r}, {state})"

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalPostgres:
        """Create the cluster, start the server and create the database.

        A no-op when already running; after :meth:`stop` it builds a fresh cluster.

        Returns
        -------
        LocalPostgres
            ``self``.

        Raises
        ------
        FileNotFoundError
            The server binaries are missing (message says how to install them).
        RuntimeError
            Root without a ``postgres`` user; the explicit ``port`` is in use; initdb or
            the server failed, or no connection within ``start_timeout``. Whatever was
            started is stopped and the folder removed first; server failures carry the
            last 30 lines of the server log.
        """
        if self.running:
            return self
        self.stop()  # leftovers of a crashed server
        self._bin_dir = _find_bin_dir()
        self._prefix, ids = _privilege_prefix()
        if self._requested_port is not None:
            _ensure_port_free(self._requested_port)
        if self._root is not None and not self._root.is_dir():
            raise FileNotFoundError(f"LocalPostgres: root folder {self._root} does not exist")
        self._folder = Path(tempfile.mkdtemp(prefix="workbench-pg-", dir=self._root))
        try:
            self._prepare_folder(ids)
            self._initdb()
            self._start_server()
            self._owner_pid = os.getpid()
            atexit.register(self._atexit_stop)
            self._create_database()
        except BaseException as exc:
            tail = self._log_tail()
            self.stop()
            if isinstance(exc, (RuntimeError, ValueError)) or not isinstance(exc, Exception):
                raise
            raise RuntimeError(f"LocalPostgres: start failed: {exc!r}{tail}") from exc
        return self

    def stop(self) -> None:
        """Stop the server and delete the cluster folder; safe to call any number of times.

        Tries ``pg_ctl stop -m fast``, then ``-m immediate``, then kills the postmaster
        (pid from ``postmaster.pid``). Also runs at interpreter exit for servers that are
        still up (only in the process that started them, not in forked children).
        """
        folder = self._folder
        if folder is None:
            return
        try:
            pid = self._postmaster_pid()
            if pid is not None and _pid_alive(pid):
                for mode in ("fast", "immediate"):
                    self._run_pg_ctl_stop(mode)
                    if not _pid_alive(pid):
                        break
                else:
                    self._kill(pid)
        finally:
            atexit.unregister(self._atexit_stop)
            shutil.rmtree(folder, ignore_errors=True)
            self._folder = None
            self._port = None
            self._owner_pid = None

    # ------------------------------------------------------------------ internals
    def _atexit_stop(self) -> None:
        if self._owner_pid == os.getpid():
            self.stop()

    def _command(self, args: list[str]) -> list[str]:
        """``args`` run as the ``postgres`` user under root, else unchanged."""
        if not self._prefix:
            return args
        if self._prefix[-1] == "-c":  # su: one shell string
            return [*self._prefix, shlex.join(args)]
        return [*self._prefix, *args]

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"  # English server messages, so bind failures can be recognised
        try:
            return subprocess.run(
                self._command(args),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=self._folder,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            return subprocess.CompletedProcess(args, -1, f"{out}\n(timed out after {timeout}s)")

    def _binary(self, name: str) -> str:
        assert self._bin_dir is not None
        return str(self._bin_dir / name)

    def _prepare_folder(self, ids: tuple[int, int] | None) -> None:
        assert self._folder is not None
        socket_path = self._folder / f".s.PGSQL.{self.port or 65535}"
        if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"LocalPostgres: root {self._root} is too long for a unix socket path "
                f"({socket_path} exceeds {_MAX_SOCKET_PATH} bytes); use a shorter root"
            )
        if ids is not None:
            os.chown(self._folder, *ids)
        os.chmod(self._folder, 0o700)

    def _initdb(self) -> None:
        assert self._folder is not None and self.data_dir is not None
        args = [
            self._binary("initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            f"--username={self._user}",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if self._settings.get("fsync", "on").lower() in ("off", "false", "no", "0"):
            args.append("--no-sync")
        proc = self._run(args, timeout=max(_INITDB_TIMEOUT_S, self._start_timeout))
        if proc.returncode != 0:
            hint = ""
            if self._prefix:
                hint = (
                    f"\n(running as root: the `postgres` user must be able to reach "
                    f"{self._folder}; choose a root= it can traverse, e.g. under /tmp)"
                )
            raise RuntimeError(
                f"LocalPostgres: initdb failed (exit {proc.returncode}):\n"
                f"{proc.stdout.strip()}{hint}"
            )

    def _server_options(self, port: int) -> str:
        assert self._folder is not None
        parts = [
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            f"-k {shlex.quote(str(self._folder))}",
        ]
        parts += [f"-c {shlex.quote(f'{k}={v}')}" for k, v in self._settings.items()]
        return " ".join(parts)

    def _start_server(self) -> None:
        assert self.log_path is not None and self.data_dir is not None
        log_path = self.log_path
        for attempt in range(_PORT_ATTEMPTS):
            port = self._requested_port if self._requested_port is not None else _free_port()
            offset = log_path.stat().st_size if log_path.exists() else 0
            proc = self._run(
                [
                    self._binary("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(log_path),
                    "-w",
                    "-t",
                    str(max(1, math.ceil(self._start_timeout))),
                    "-o",
                    self._server_options(port),
                    "start",
                ],
                timeout=self._start_timeout + 30.0,
            )
            if proc.returncode == 0:
                self._port = port
                return
            self._port = port
            new_log = self._read_log(offset)
            bind_failed = any(p in (new_log + proc.stdout).lower() for p in _BIND_FAILURES)
            if self.running:  # pg_ctl gave up waiting, yet a server is up: not a port clash
                bind_failed = False
            if bind_failed and self._requested_port is not None:
                raise RuntimeError(
                    f"LocalPostgres: port {port} on 127.0.0.1 is already in use (the server "
                    f"could not bind it); pass another port= or port=None{self._log_tail()}"
                )
            if not bind_failed or attempt == _PORT_ATTEMPTS - 1:
                what = "kept failing to bind a free port" if bind_failed else "did not start"
                raise RuntimeError(
                    f"LocalPostgres: the server {what} (pg_ctl exit {proc.returncode}: "
                    f"{proc.stdout.strip()}){self._log_tail()}"
                )

    def _create_database(self) -> None:
        import psycopg2
        from psycopg2 import sql

        deadline = time.monotonic() + self._start_timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1",
                    port=self._port,
                    user=self._user,
                    dbname="postgres",
                    connect_timeout=max(1, math.ceil(remaining)),
                )
                break
            except psycopg2.OperationalError as exc:
                if remaining <= 0 or not self.running:
                    reason = "the server exited" if not self.running else "timed out"
                    raise RuntimeError(
                        f"LocalPostgres: could not connect to 127.0.0.1:{self._port} "
                        f"({reason} after start): {str(exc).strip()}{self._log_tail()}"
                    ) from exc
                time.sleep(0.1)
        try:
            if self._dbname != "postgres":
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._dbname)))
        finally:
            conn.close()

    def _postmaster_pid(self) -> int | None:
        data_dir = self.data_dir
        if data_dir is None:
            return None
        try:
            first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
            return int(first)
        except (OSError, ValueError):
            return None

    def _run_pg_ctl_stop(self, mode: str) -> None:
        if self._bin_dir is None or self.data_dir is None:
            return
        self._run(
            [
                self._binary("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "-t",
                str(max(1, math.ceil(self._start_timeout))),
                "stop",
            ],
            timeout=self._start_timeout + 30.0,
        )

    def _kill(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 10.0
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _read_log(self, offset: int = 0) -> str:
        log_path = self.log_path
        if log_path is None:
            return ""
        try:
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                return fh.read()
        except OSError:
            return ""

    def _log_tail(self) -> str:
        """Last 30 lines of the server log, formatted for an error message ('' if none)."""
        lines = self._read_log().splitlines()[-_LOG_TAIL_LINES:]
        if not lines:
            return ""
        return f"\n--- last {len(lines)} lines of {self.log_path} ---\n" + "\n".join(lines)
