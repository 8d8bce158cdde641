"""Session fixtures shared by several test packages."""

from __future__ import annotations

import pytest

from workbench.tuning._local_pg import LocalPostgres

#: Non-durable settings: the session's server holds nothing worth an fsync (the kill tests
#: kill clients, never the server, so the server's durability is not under test).
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of one LocalPostgres server shared by the session, stopped at its end.

    Fails (does not skip) when the PostgreSQL binaries are missing: CI installs them with
    tools/system-deps.sh, and a skip would hide a missing install step.
    """
    server = LocalPostgres(settings=FAST_SETTINGS)
    missing = None
    try:
        server.start()
    except FileNotFoundError as exc:
        missing = str(exc)
    if missing is not None:
        pytest.fail(f"PostgreSQL is needed by the tuning and live tests: {missing}",
                    pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()
