"""Project-level checks: dependencies in sync, fast and UI-free ``import workbench``."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_environment_yml_lists_every_runtime_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env_text = (ROOT / "environment.yml").read_text().lower()
    listed = {_name(m) for m in re.findall(r"^\s*-\s*([a-z0-9_.\-]+)", env_text, flags=re.M)}
    missing = sorted(_name(d) for d in deps if _name(d) not in listed)
    assert not missing, f"environment.yml lacks runtime dependencies: {missing}"


def test_import_workbench_is_fast_and_ui_free():
    code = (
        "import sys, time; t = time.perf_counter(); import workbench, workbench.data;"
        "dt = time.perf_counter() - t;"
        "bad = [m for m in ('panel', 'bokeh', 'ipywidgets', 'torch', 'vectorbt', 'holoviews')"
        " if m in sys.modules]; print(dt, bad)"
    )
    times = []
    for _ in range(2):  # the first run may pay for cold disk caches
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout.split(maxsplit=1)
        times.append(float(out[0]))
        assert out[1].strip() == "[]", f"import workbench pulled in {out[1]}"
    assert min(times) < 1.0, f"import workbench took {min(times):.2f} s"


@pytest.mark.parametrize("pkg", ["workbench"])
def test_core_never_imports_ui_packages(pkg):
    offenders = []
    for path in (ROOT / pkg).rglob("*.py"):
        text = path.read_text()
        if re.search(r"^\s*(import|from)\s+(panel|bokeh|ipywidgets|holoviews|hvplot)\b", text,
                     flags=re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


#: What each subpackage of ``workbench`` may import (DESIGN section 1, closed under its
#: arrows ``live -> {risk, models, features, data}``, ``backtest -> {risk, features, data}``,
#: ``tuning -> {models, backtest}``, ``models -> features -> data``; risk and data sit at the
#: bottom). ``live -> backtest`` is the one addition: the live engine can run the MACD
#: baseline as its model (backtest imports nothing above it, so no cycle). The private
#: top-level modules (``_checks``, ``_lazy``, ``_storage``) are shared leaves.
_MAY_IMPORT = {
    "data": set(),
    "risk": {"data"},
    "features": {"data"},
    "models": {"features", "data"},
    "backtest": {"risk", "features", "data"},
    "tuning": {"models", "backtest", "risk", "features", "data"},
    "live": {"risk", "models", "features", "data", "backtest"},
}
_LEAVES = {"_checks", "_lazy", "_storage"}


def _workbench_imports(path: Path) -> set[str]:
    """The top-level ``workbench`` modules/packages a file imports (absolute or relative)."""
    import ast

    parts = path.relative_to(ROOT / "workbench").parts
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = ["workbench", *parts[:len(parts) - node.level]]
            names = [".".join(base + ([node.module] if node.module else [a.name]))
                     for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        out.update(n.split(".")[1] for n in names if n.startswith("workbench."))
    return out


def test_no_package_imports_upward():
    bad = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        parts = path.relative_to(ROOT / "workbench").parts
        here = parts[0] if len(parts) > 1 else path.stem
        if here not in _MAY_IMPORT and here not in _LEAVES:
            continue  # cli, reporting: the top, may import anything
        allowed = {here} if here in _LEAVES else _LEAVES | {here} | _MAY_IMPORT[here]
        wrong = _workbench_imports(path) - allowed
        if wrong:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not bad, "imports against DESIGN's dependency direction:\n" + "\n".join(bad)


def test_notebooks_match_their_sources():
    sys.path.insert(0, str(ROOT / "tools"))
    import nbformat
    from nbbuild import build

    pairs = {"research.py": ROOT / "reports" / "templates" / "research.ipynb"}
    for src in (ROOT / "tools" / "notebook_src").glob("0*.py"):
        pairs[src.name] = ROOT / "notebooks" / (src.stem + ".ipynb")
    for src, nb_path in pairs.items():
        expected = build((ROOT / "tools" / "notebook_src" / src).read_text())
        actual = nbformat.read(str(nb_path), as_version=4)
        assert [(c.id, c.source) for c in actual.cells] == [
            (c.id, c.source) for c in expected.cells], (
            f"{nb_path.name} is out of date: python tools/nbbuild.py tools/notebook_src/{src} "
            f"{nb_path.relative_to(ROOT)}"
        )


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "workbench", "widgets", "tests",
                           "benchmarks", "tools"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.slow
def test_mypy_clean():
    proc = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
