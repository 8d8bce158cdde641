"""The offline-safe launcher of the Panel apps (``python -m widgets.serve``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from widgets.serve import APPS, CDN_ROOT, serve_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("app", APPS)
def test_every_app_is_served_with_panels_assets_from_this_server(app):
    import panel
    from panel.io.resources import JS_VERSION

    cmd, env = serve_command(app, ["--port", "5999"], environ={"PATH": "/bin"})
    assert cmd[1] == "serve" and Path(cmd[2]) == ROOT / "widgets" / f"{app}.py"
    assert env == {"PATH": "/bin", "PANEL_CDN_ROOT": CDN_ROOT}
    route, folder = cmd[cmd.index("--static-dirs") + 1].split("=", 1)
    # the URL Panel builds from the root is exactly the route served
    assert f"/{route}/" == f"{CDN_ROOT}{JS_VERSION}/dist/"
    assert (Path(folder) / "css" / "markdown.css").is_file()
    assert (Path(folder) / "bundled" / "theme" / "default.css").is_file()
    assert Path(folder) == Path(panel.__file__).parent / "dist"
    assert cmd[-2:] == ["--port", "5999"]


def test_callers_static_dirs_are_kept_in_the_same_option():
    cmd, _ = serve_command("live_app", ["--static-dirs", "img=/tmp", "--port", "1"],
                           environ={})
    assert cmd.count("--static-dirs") == 1
    i = cmd.index("--static-dirs")
    assert cmd[i + 1].startswith("panel-cdn/") and cmd[i + 2] == "img=/tmp"
    assert cmd[i + 3:] == ["--port", "1"]


def test_a_cdn_root_already_set_is_respected():
    cmd, env = serve_command("live_app", environ={"PANEL_CDN_ROOT": "https://mirror/"})
    assert env["PANEL_CDN_ROOT"] == "https://mirror/"
    assert "--static-dirs" not in cmd


def test_unknown_app_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown app 'nope'.*live_app"):
        serve_command("nope")
    with pytest.raises(ValueError, match="unknown app"):
        serve_command(str(tmp_path / "missing.py"))
    proc = subprocess.run([sys.executable, "-m", "widgets.serve", "nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "unknown app 'nope'" in proc.stderr
