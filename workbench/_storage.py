"""Where the project keeps its files, and URL helpers shared by tuning and live.

A leaf module (standard library and a lazy SQLAlchemy import only), so every package may
use it without importing another one upward (DESIGN section 1).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "mask_url", "default_pg_driver"]

_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The project's data directory (created on first use).

    ``$WORKBENCH_DATA_DIR`` if set; else ``<repo>/.workbench`` in a source checkout
    (the folder holding ``pyproject.toml``); else ``~/.workbench``.
    """
    env = os.environ.get("WORKBENCH_DATA_DIR")
    if env:
        path = Path(env)
    elif (_ROOT / "pyproject.toml").exists():
        path = _ROOT / ".workbench"
    else:
        path = Path.home() / ".workbench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log and show)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (journal paths): nothing to hide
        return str(url)


def default_pg_driver(url: str) -> str:
    """Name the installed driver: SQLAlchemy 2.1 means psycopg 3 by a bare postgresql://."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url
