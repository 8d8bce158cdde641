"""The main job: ``workbench report`` end to end with tiny parameters on real bundled data."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import reporting
from workbench.cli import QUICK_PARAMETERS, main

ROOT = Path(__file__).resolve().parent.parent


def _template(path: Path, parameters: str, *cells: str) -> Path:
    """A tiny report template: a ``parameters`` cell, then ``cells``, on python3."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"# parameters\n{parameters}"),
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "report", "--quick", "--output", str(root)],
        capture_output=True, text=True, cwd=ROOT, timeout=900, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return root, runs[0]


@pytest.mark.slow
def test_report_html_has_comparison_table_and_is_offline(quick_run):
    root, run = quick_run
    html = (run / "report.html").read_text()
    table = re.search(r'<table[^>]*id="comparison-table".*?</table>', html, flags=re.S)
    assert table, "comparison table missing from report.html"
    strategies = ("long-only", "TSMOM", "MACD", "Linear", "MLP", "LSTM (sharpe)", "Transformer",
                  "CNN", "Boosted trees", "Ensemble (equal)", "Ensemble (confidence)",
                  "Ensemble (stacking)")
    for strategy in strategies:
        assert strategy in table.group(0)
    costs = re.findall(rf'<th[^>]*rowspan="{len(strategies)}"[^>]*>([^<]+)</th>',
                       table.group(0))
    assert costs == ["0", "5", "10"], costs
    for col in ("annual return", "annual vol", "Sharpe", "Sortino", "max drawdown", "Calmar",
                "% positive", "turnover"):
        assert col in table.group(0)
    assert 'id="risk-table"' in html
    ref = re.search(r'<table[^>]*id="reference-table".*?</table>', html, flags=re.S)
    assert ref and "Lim et al. 2019" in ref.group(0) and "2.910" in ref.group(0)
    assert "published" in ref.group(0) and "not reported" in ref.group(0)
    assert 'id="provenance-table"' in html
    for key in ("git commit", "data hash (sha256)", "parameter seed", "version torch"):
        assert key in html
    assert "Traceback" not in html
    # Self-contained: every image inline, no script or stylesheet fetched from the network.
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) >= 5
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(https?:)?//", html)


def _html_table(html: str, table_id: str):
    """A ``DataFrame.to_html`` table of the report, back as a frame of floats.

    Indexed by its row labels (``(cost, strategy)`` for the comparison table, whose cost
    cells span rows); the header is the first header row.
    """
    import html as htmllib

    import pandas as pd

    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, flags=re.S)
    assert table, f"{table_id} missing from report.html"

    def cells(tr: str) -> list[tuple[str, str]]:
        return [(tag, htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip())
                for tag, c in re.findall(r"<(t[hd])[^>]*>(.*?)</t[hd]>", tr, flags=re.S)]

    head, body = table.group(0).split("</thead>")
    columns = [c for _, c in cells(re.findall(r"<tr.*?</tr>", head, flags=re.S)[0]) if c]
    index, rows, outer = [], [], None
    for tr in re.findall(r"<tr.*?</tr>", body, flags=re.S):
        labels = [c for tag, c in cells(tr) if tag == "th"]
        if len(labels) == 2:  # first row of a cost level (its cell spans the rows)
            outer = labels[0]
        index.append(labels[-1] if outer is None else (outer, labels[-1]))
        rows.append([float(c) for tag, c in cells(tr) if tag == "td"])
    return pd.DataFrame(rows, index=index if outer is None else pd.MultiIndex.from_tuples(
        index), columns=columns)


@pytest.mark.slow
def test_report_tables_name_their_units_and_agree_with_the_results(quick_run):
    """Headers said "annual return", "max drawdown", "turnover" with fractions (0.131) beside
    a "% positive" in percent (56.4) and no unit anywhere; the risk table gave the same
    drawdown as a fraction again."""
    import numpy as np
    import pandas as pd

    _, run = quick_run
    html = (run / "report.html").read_text()
    shown = _html_table(html, "comparison-table")
    assert list(shown.columns) == [
        "annual return (CAGR, %)", "annual vol (%)", "Sharpe (annualised)",
        "Sortino (annualised)", "max drawdown (%)", "Calmar", "% positive days",
        "turnover (x equity / yr)", "mean gross (x equity)"]
    csv = pd.read_csv(run / "comparison.csv")  # machine-readable: fractions
    first = csv.iloc[0]
    row = shown.iloc[0]
    assert row["annual return (CAGR, %)"] == pytest.approx(100 * first["annual return"], abs=0.01)
    assert row["max drawdown (%)"] == pytest.approx(100 * first["max drawdown"], abs=0.01)
    assert row["% positive days"] == pytest.approx(first["% positive"], abs=0.1)
    # Calmar = CAGR / |max drawdown|, on the table as shown
    calmar = shown["annual return (CAGR, %)"] / shown["max drawdown (%)"].abs()
    np.testing.assert_allclose(shown["Calmar"], calmar, atol=0.01 + 0.01 * calmar.abs().max())
    # returns.parquet reproduces the Sharpe column
    rets = pd.read_parquet(run / "returns.parquet")
    r = rets[f"{first['cost (bps)']:g}|{first['strategy']}"]
    assert row["Sharpe (annualised)"] == pytest.approx(
        r.mean() / r.std() * np.sqrt(252), abs=1e-3)
    risk_tbl = _html_table(html, "risk-table")
    assert "max drawdown (%)" in risk_tbl and "max time under water (trading days)" in risk_tbl
    np.testing.assert_allclose(risk_tbl["max drawdown (%)"].to_numpy(),
                               shown.loc["0"]["max drawdown (%)"].to_numpy(), atol=0.01)
    text = re.sub(r"<style.*?</style>|<img[^>]*>", "", html, flags=re.S)
    assert not re.search(r"\bnan\b", text, flags=re.I)  # no NaN cell
    assert "Warning" not in text and "Traceback" not in text  # no stray warning


@pytest.mark.slow
def test_report_run_record_index_and_results(quick_run):
    root, run = quick_run
    rec = json.loads((run / "run.json").read_text())
    assert rec["status"] == "ok"
    assert rec["parameters"]["epochs"] == QUICK_PARAMETERS["epochs"]
    assert (run / "research.ipynb").exists()
    assert (run / "returns.parquet").exists() and (run / "comparison.csv").exists()
    index = (root / "index.html").read_text()
    assert f'href="{run.name}/report.html"' in index


def test_failed_run_is_recorded_and_nothing_is_overwritten(tmp_path):
    bad = _template(tmp_path / "bad.ipynb", "x = 1", "raise RuntimeError('boom at x=%d' % x)")
    out = tmp_path / "out"
    assert main(["report", "--template", str(bad), "--output", str(out), "-p", "x=7"]) == 1
    assert main(["report", "--template", str(bad), "--output", str(out), "-p", "x=8"]) == 1
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 2  # a second run in the same second gets its own folder
    recs = [json.loads((r / "run.json").read_text()) for r in runs]
    assert [r["status"] for r in recs] == ["failed", "failed"]
    assert "boom at x=7" in recs[0]["error"] and "boom at x=8" in recs[1]["error"]
    assert (out / "index.html").read_text().count("failed</td>") == 2


def test_missing_template_and_bad_parameter():
    assert main(["report", "--template", "/nonexistent.ipynb"]) == 2
    with pytest.raises(SystemExit):
        main(["report", "-p", "no-equals-sign"])


def test_version_flag(capsys):
    from workbench import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"workbench {__version__}"


def test_new_run_dirs_are_unique(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    a = reporting._new_run_dir(tmp_path, now)
    b = reporting._new_run_dir(tmp_path, now)
    assert a.name == "20260102-030405" and b.name == "20260102-030405-1"


def test_unknown_parameter_is_refused_before_anything_runs(tmp_path, capsys):
    """A typo (-p epoch=5) used to run the full report with the defaults, recorded as ok."""
    tpl = _template(tmp_path / "t.ipynb", "epochs = 30", "print(epochs)")
    out = tmp_path / "out"
    assert main(["report", "--template", str(tpl), "--output", str(out), "-p", "epoch=5"]) == 2
    err = capsys.readouterr().err
    assert "unknown report parameter(s) ['epoch']" in err and "it takes ['epochs']" in err
    assert not out.exists()  # no run folder, no index
    with pytest.raises(ValueError, match=r"\['epoch'\]"):
        reporting.run_report({"epoch": 5}, template=tpl, output_root=out)
    # the default template declares every quick parameter
    import papermill as pm

    assert set(QUICK_PARAMETERS) <= set(pm.inspect_notebook(str(reporting.DEFAULT_TEMPLATE)))


def test_runs_of_one_second_are_listed_newest_first(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    for _ in range(12):
        d = reporting._new_run_dir(tmp_path, now)
        (d / "run.json").write_text(json.dumps({"run": d.name, "status": "ok"}))
    later = reporting._new_run_dir(tmp_path, now + dt.timedelta(seconds=1))
    (later / "run.json").write_text(json.dumps({"run": later.name, "status": "ok"}))
    names = [r["run"] for r in reporting.list_runs(tmp_path)]
    # before: ...-2 was listed before ...-11 and ...-10 (string order)
    assert names == ["20260102-030406", *[f"20260102-030405-{k}" for k in range(11, 0, -1)],
                     "20260102-030405"]


def test_report_kernel_talks_over_local_sockets_not_tcp(tmp_path):
    """The report kernel uses IPC transport (no loopback TCP ports, no plain-text warning)."""
    import nbformat

    tpl = _template(tmp_path / "t.ipynb", "x = 1",
                    "from ipykernel.kernelapp import IPKernelApp\n"
                    "print('transport', IPKernelApp.instance().transport)")
    run = reporting.run_report({}, template=tpl, output_root=tmp_path / "out")
    done = nbformat.read(str(run / "research.ipynb"), as_version=4)
    assert done.cells[1].outputs[0]["text"].strip() == "transport ipc"


def test_index_keeps_the_dirty_mark_and_names_default_parameters(tmp_path):
    """The commit cell cut the value to 19 characters: a run from a modified tree
    (``<sha>+dirty``) was listed like a clean one. An empty parameter set read ``{}``."""
    for name, commit, params in (("20260102-030405", "a" * 40 + "+dirty", {}),
                                 ("20260102-030406", "b" * 40, {"epochs": 2})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(
            {"run": name, "status": "ok", "git_commit": commit, "parameters": params}))
    index = reporting.write_index(tmp_path).read_text()
    assert f'title="{"a" * 40}+dirty"' in index and f"{'a' * 12}+dirty</code>" in index
    assert f">{'b' * 12}</code>" in index and f">{'b' * 13}" not in index
    assert "defaults" in index and "{}" not in index
    assert "white-space:nowrap" in index
