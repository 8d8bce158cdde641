"""Research report runner: execute a parameterised notebook with papermill, export HTML.

Each run writes a new dated folder ``<output_root>/<YYYYmmdd-HHMMSS>[-k]/`` holding the
executed notebook (``research.ipynb``), a self-contained HTML file (``report.html``:
images embedded, no network scripts) and ``run.json`` (parameters, status, timings,
git commit). ``<output_root>/index.html`` lists every run. Nothing is overwritten, no
prompt is shown, and the exit status tells success, so the runner is cron-safe.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_TEMPLATE",
    "ReportError",
    "default_output_root",
    "git_commit",
    "list_runs",
    "run_report",
    "write_index",
]

_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = _ROOT / "reports" / "templates" / "research.ipynb"
_NBCONVERT_TEMPLATES = _ROOT / "reports" / "nbconvert"


class ReportError(RuntimeError):
    """A report run failed; ``run_dir`` holds whatever was produced (notebook, run.json)."""

    def __init__(self, message: str, run_dir: Path | None = None):
        super().__init__(message)
        self.run_dir = run_dir


def default_output_root() -> Path:
    """``$WORKBENCH_REPORTS_DIR`` if set, else ``<repo>/reports/output``."""
    env = os.environ.get("WORKBENCH_REPORTS_DIR")
    return Path(env) if env else _ROOT / "reports" / "output"


def git_commit(path: Path | None = None) -> str:
    """Current git commit of the repository (``"unknown"`` outside git), ``+dirty`` if modified."""
    cwd = str(path or _ROOT)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10).stdout
        return sha + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _new_run_dir(root: Path, now: _dt.datetime) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        cand = root / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            cand.mkdir()  # atomic: two concurrent runs never share a folder
            return cand
        except FileExistsError:
            continue
    raise ReportError(f"could not create a fresh run folder under {root}")


def export_html(notebook_path: Path, html_path: Path, *, exclude_input: bool = True) -> None:
    """Convert an executed notebook to one self-contained HTML file.

    Images stay embedded as data URIs and the template (``reports/nbconvert/offline``)
    drops require.js, MathJax, Mermaid and widget scripts, so the page loads no URL.

    Parameters
    ----------
    notebook_path : pathlib.Path
        Executed ``.ipynb``.
    html_path : pathlib.Path
        Destination.
    exclude_input : bool, default True
        Hide code cells (the notebook keeps them).
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook_path), as_version=4)
    exporter = HTMLExporter(
        template_name="offline",
        extra_template_basedirs=[str(_NBCONVERT_TEMPLATES)],
        exclude_input=exclude_input,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")


def _ipc_kernel_manager() -> type:
    """Kernel manager class for nbclient on IPC transport (Unix sockets, Jupyter runtime dir).

    The default TCP transport opens loopback ports whose traffic is signed but not encrypted,
    and the kernel logs a warning about it on every report run; the report kernel only ever
    talks to this process, so local sockets are the better fit.
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def run_report(
    parameters: dict[str, Any] | None = None,
    *,
    template: str | Path = DEFAULT_TEMPLATE,
    output_root: str | Path | None = None,
    kernel_name: str = "python3",
    timeout_s: int = 3600,
    progress: bool = False,
) -> Path:
    """Execute the research notebook and write notebook, HTML and run record.

    Parameters
    ----------
    parameters : dict, optional
        Papermill parameters injected after the template's ``parameters`` cell
        (e.g. ``{"epochs": 5, "universe": "daily"}``).
    template : str or pathlib.Path
        Parameterised notebook; defaults to ``reports/templates/research.ipynb``.
    output_root : str or pathlib.Path, optional
        Folder of dated runs; defaults to :func:`default_output_root`.
    kernel_name : str, default "python3"
        Jupyter kernel to execute with (the current environment's by default).
    timeout_s : int, default 3600
        Per-cell execution timeout in seconds.
    progress : bool, default False
        Show papermill's cell progress bar.

    Returns
    -------
    pathlib.Path
        The new run folder.

    Raises
    ------
    FileNotFoundError
        If the template does not exist.
    ValueError
        If a name in ``parameters`` is not one of the template's parameters (when its
        ``parameters`` cell declares any); nothing is run or written then.
    ReportError
        If execution or export fails; the run folder keeps the partial notebook and a
        ``run.json`` with ``"status": "failed"`` and the error, and the index lists it.
    """
    import papermill as pm

    template = Path(template)
    if not template.is_file():
        raise FileNotFoundError(f"report template not found: {template}")
    params = dict(parameters or {})
    declared = pm.inspect_notebook(str(template))  # names in its `parameters` cell
    unknown = sorted(set(params) - set(declared))
    if declared and unknown:  # papermill would only warn and run with the defaults
        raise ValueError(f"unknown report parameter(s) {unknown} for template {template}; "
                         f"it takes {sorted(declared)}")
    root = Path(output_root) if output_root is not None else default_output_root()
    now = _dt.datetime.now(_dt.timezone.utc)
    run_dir = _new_run_dir(root, now)
    record: dict[str, Any] = {
        "run": run_dir.name,
        "created": now.isoformat(timespec="seconds"),
        "template": str(template),
        "parameters": params,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "status": "running",
    }
    (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
    nb_out = run_dir / "research.ipynb"
    t0 = time.perf_counter()
    error: Exception | None = None
    try:
        pm.execute_notebook(
            str(template), str(nb_out), parameters=params, kernel_name=kernel_name,
            cwd=str(run_dir), progress_bar=progress, execution_timeout=timeout_s,
            report_mode=False, kernel_manager_class=_ipc_kernel_manager(),
        )
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised as ReportError
        error = exc
    record["execute_seconds"] = round(time.perf_counter() - t0, 2)
    if nb_out.exists():
        try:
            export_html(nb_out, run_dir / "report.html")
        except Exception as exc:  # noqa: BLE001
            error = error or exc
    record["status"] = "failed" if error else "ok"
    if error:
        record["error"] = f"{type(error).__name__}: {str(error)[-2000:]}"
    record["total_seconds"] = round(time.perf_counter() - t0, 2)
    (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
    write_index(root)
    if error:
        raise ReportError(f"report run failed ({record['error'][:300]}); see {run_dir}",
                          run_dir) from error
    return run_dir


def list_runs(output_root: str | Path | None = None) -> list[dict[str, Any]]:
    """Run records (``run.json``) under ``output_root``, newest first."""
    root = Path(output_root) if output_root is not None else default_output_root()
    runs = []
    for rec_path in sorted(root.glob("*/run.json")):
        try:
            rec = json.loads(rec_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        rec["path"] = str(rec_path.parent)
        rec["has_html"] = (rec_path.parent / "report.html").exists()
        runs.append(rec)
    return sorted(runs, key=_run_order, reverse=True)


def _run_order(record: dict[str, Any]) -> tuple[str, int]:
    """Sort key of a run folder name ``<stamp>[-k]``: the stamp, then ``k`` as a number.

    (As plain strings ``<stamp>-10`` would sort before ``<stamp>-2``.)
    """
    name = str(record.get("run", ""))
    stamp, sep, k = name.rpartition("-")
    if sep and k.isdigit() and "-" in stamp:  # <YYYYmmdd-HHMMSS>-<k>
        return stamp, int(k)
    return name, 0


def write_index(output_root: str | Path | None = None) -> Path:
    """Write ``index.html`` listing every run (date, status, parameters, links).

    Returns
    -------
    pathlib.Path
        Path of the index file.
    """
    root = Path(output_root) if output_root is not None else default_output_root()
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in list_runs(root):
        name = html.escape(r["run"])
        link = f'<a href="{name}/report.html">report</a>' if r["has_html"] else "-"
        given = r.get("parameters") or {}
        params = (html.escape(json.dumps(given, default=str)) if given
                  else "(defaults)")
        commit = str(r.get("git_commit", ""))
        sha, plus, mark = commit.partition("+")  # keep "+dirty": a modified tree
        short = sha[:12] + plus + mark
        rows.append(
            f"<tr><td class='nw'>{name}</td>"
            f"<td class='nw'>{html.escape(str(r.get('created', '')))}</td>"
            f"<td class='{html.escape(str(r.get('status')))}'>{html.escape(str(r.get('status')))}"
            f"</td><td>{r.get('execute_seconds', '')}</td><td>{link}</td>"
            f'<td><a href="{name}/research.ipynb">notebook</a></td>'
            f'<td class="nw"><code title="{html.escape(commit)}">{html.escape(short)}</code></td>'
            f"<td><code>{params}</code></td></tr>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Research report runs</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}"
        ".failed{color:#b00;font-weight:bold}.ok{color:#070}.nw{white-space:nowrap}"
        "</style></head><body>"
        "<h1>Research report runs</h1><table><thead><tr><th>run</th><th>created (UTC)</th>"
        "<th>status</th><th>seconds</th><th>HTML</th><th>notebook</th><th>commit</th>"
        "<th>parameters</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        "</body></html>"
    )
    out = root / "index.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
