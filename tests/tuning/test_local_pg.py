from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

import workbench.tuning._local_pg as local_pg
from workbench.tuning._local_pg import LocalPostgres

FAST = {"fsync": "off", "synchronous_commit": "off"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_root():
    """Empty folder under the system temp dir that the `postgres` user can traverse.

    pytest's tmp_path is private to root (0700), which the server cannot reach when the
    suite runs as root, so the tests that start servers use this instead.
    """
    root = Path(tempfile.mkdtemp(prefix="wb-pgtest-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _refuses(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


def _scalar(url: str, query: str):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 with a listening socket on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_round_trip_then_stop_removes_everything(pg_root):
    pg = LocalPostgres(root=pg_root)
    assert not pg.running and pg.data_dir is None
    with pg as server:
        assert server is pg and pg.running
        port, folder = pg.port, pg.data_dir.parent
        assert folder.parent == pg_root and pg.log_path == folder / "postgres.log"
        assert pg.url == f"postgresql+psycopg2://workbench@127.0.0.1:{port}/workbench"
        engine = sa.create_engine(pg.url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (k int PRIMARY KEY, v text)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1, 'a'), (2, 'b')"))
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT k, v FROM t ORDER BY k")).all()
            assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "workbench"
            # Durable by default; the unix socket lives in the temporary folder.
            assert conn.execute(sa.text("SHOW fsync")).scalar() == "on"
            assert conn.execute(sa.text("SHOW max_connections")).scalar() == "200"
            sockdir = conn.execute(sa.text("SHOW unix_socket_directories")).scalar()
            assert Path(sockdir) == folder
        engine.dispose()
    assert not pg.running
    assert not folder.exists()
    assert list(pg_root.iterdir()) == []
    assert _refuses(port)
    with pytest.raises(RuntimeError, match="not running"):
        pg.url  # noqa: B018


def test_settings_are_applied():
    with LocalPostgres(settings={**FAST, "max_connections": "50"}, dbname="other") as pg:
        assert pg.url.endswith("/other")
        assert _scalar(pg.url, "SHOW fsync") == "off"
        assert _scalar(pg.url, "SHOW synchronous_commit") == "off"
        assert _scalar(pg.url, "SHOW max_connections") == "50"


def test_two_clusters_at_once_get_different_ports():
    with LocalPostgres(settings=FAST) as a, LocalPostgres(settings=FAST) as b:
        assert a.port != b.port
        assert a.data_dir != b.data_dir
        assert _scalar(a.url, "SHOW port") == str(a.port)
        assert _scalar(b.url, "SHOW port") == str(b.port)


def test_explicit_busy_port_is_a_clear_error(busy_port, pg_root):
    pg = LocalPostgres(root=pg_root, port=busy_port)
    with pytest.raises(RuntimeError, match=f"port {busy_port} .*already in use"):
        pg.start()
    assert not pg.running
    assert list(pg_root.iterdir()) == []


def test_port_taken_after_the_check_is_reported_with_the_log(busy_port, pg_root, monkeypatch):
    # The port gets taken between the up-front check and the server's bind.
    monkeypatch.setattr(local_pg, "_ensure_port_free", lambda port: None)
    pg = LocalPostgres(root=pg_root, port=busy_port, settings=FAST)
    with pytest.raises(RuntimeError, match=f"port {busy_port} .*already in use") as info:
        pg.start()
    assert "could not bind" in str(info.value)  # the server log's tail is included
    assert list(pg_root.iterdir()) == []


def test_picked_port_taken_by_another_process_is_retried(busy_port, monkeypatch):
    picks = iter([busy_port])
    real_free_port = local_pg._free_port
    monkeypatch.setattr(local_pg, "_free_port", lambda: next(picks, None) or real_free_port())
    with LocalPostgres(settings=FAST) as pg:
        assert pg.port != busy_port
        assert _scalar(pg.url, "SELECT 1") == 1


def test_bad_setting_fails_with_the_server_log_and_cleans_up(pg_root):
    pg = LocalPostgres(root=pg_root, settings={**FAST, "shared_buffers": "lots"})
    with pytest.raises(RuntimeError, match="shared_buffers") as info:
        pg.start()
    assert "last" in str(info.value) and "postgres.log" in str(info.value)
    assert not pg.running
    assert list(pg_root.iterdir()) == []


def test_missing_binaries_raise_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(local_pg, "SEARCH_DIRS", (str(tmp_path / "nowhere" / "*" / "bin"),))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(FileNotFoundError, match="postgresql.*system-deps.sh"):
        LocalPostgres(root=root).start()
    assert list(root.iterdir()) == []


def test_search_dirs_prefer_the_highest_version(tmp_path, monkeypatch):
    for version in ("9.6", "15", "10", "16"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        names = ("initdb", "pg_ctl") if version == "16" else local_pg._BINARIES  # 16: partial
        for name in names:
            exe = bindir / name
            exe.write_text("#!/bin/sh\n")
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(local_pg, "SEARCH_DIRS", (str(tmp_path / "*" / "bin"),))
    assert local_pg._find_bin_dir() == tmp_path / "15" / "bin"


@pytest.mark.parametrize("switch", ["runuser", "su"])
def test_root_with_spaces_and_quotes_through_runuser_or_su(switch, monkeypatch):
    if switch == "su":
        if os.geteuid() != 0:
            pytest.skip("su is only used when running as root")
        real_which = shutil.which
        monkeypatch.setattr(local_pg, "_RUNUSER_PATHS", ())
        monkeypatch.setattr(
            local_pg.shutil, "which", lambda name: None if name == "runuser" else real_which(name)
        )
    root = Path(tempfile.mkdtemp(prefix="wb pg 'q' "))
    root.chmod(0o755)
    try:
        with LocalPostgres(root=root, settings={**FAST, "application_name": "a b 'c'"}) as pg:
            if os.geteuid() == 0:
                assert Path(pg._prefix[0]).name == switch
            assert _scalar(pg.url, "SHOW application_name") == "a b 'c'"
            assert Path(_scalar(pg.url, "SHOW unix_socket_directories")) == pg.data_dir.parent
        assert list(root.iterdir()) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_stop_is_idempotent():
    pg = LocalPostgres(settings=FAST)
    pg.stop()  # before start
    pg.start()
    folder = pg.data_dir.parent
    pg.stop()
    pg.stop()
    assert not folder.exists() and not pg.running
    # A stopped instance starts a fresh cluster.
    with pg:
        assert pg.data_dir.parent != folder
        assert _scalar(pg.url, "SELECT 1") == 1


def test_stop_cleans_up_after_a_killed_server():
    pg = LocalPostgres(settings=FAST).start()
    folder, port = pg.data_dir.parent, pg.port
    os.kill(pg._postmaster_pid(), signal.SIGKILL)
    pg.stop()
    assert not folder.exists() and not pg.running
    assert _refuses(port)


def test_atexit_stops_a_server_left_running():
    code = textwrap.dedent(
        """
        from workbench.tuning._local_pg import LocalPostgres
        pg = LocalPostgres(settings={"fsync": "off"}).start()
        print(pg.port, pg.data_dir.parent, flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    port, folder = proc.stdout.split()
    assert not Path(folder).exists()
    assert _refuses(int(port))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"port": 0}, "port must be"),
        ({"port": True}, "port must be"),
        ({"user": "bad-name"}, "user must be"),
        ({"dbname": ""}, "dbname must be"),
        ({"dbname": "x; DROP"}, "dbname must be"),
        ({"start_timeout": 0}, "start_timeout"),
        ({"settings": {"port": "5432"}}, "settings\\['port'\\]"),
        ({"settings": {"bad name": "1"}}, "invalid name"),
        ({"settings": {"work_mem": "1\n"}}, "work_mem"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LocalPostgres(**kwargs)


def test_session_fixture_serves_a_database(postgres_url):
    assert postgres_url.startswith("postgresql+psycopg2://workbench@127.0.0.1:")
    assert _scalar(postgres_url, "SELECT current_database()") == "workbench"
