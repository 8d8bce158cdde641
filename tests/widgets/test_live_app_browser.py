"""The served live app in the system Chromium (Playwright): load, stream, pause, risk limits.

``panel serve widgets/live_app.py`` runs in a subprocess with a throwaway data directory and
the MACD baseline (no training) at a fast replay rate; the page is read through the browser's
Bokeh document (chart sources, tables, indicators) and the DOM. A screenshot goes to
``test-artifacts/live_app.png``. The soak test (``slow``) keeps the page open for 2 minutes
at full replay speed and bounds the server's resident-memory growth.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from widgets.serve import serve_command

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
PANEL = str(Path(sys.executable).parent / "panel")

#: Reads the app's state from the page's Bokeh document: chart sources (by name), table
#: lengths and texts of indicators/panes (by their ``wb-`` CSS class).
STATE_JS = """() => {
  const doc = Bokeh.documents[0];
  const out = {sources: {}, tables: {}, text: {}};
  for (const m of doc.all_models) {
    if (m.name && m.name.startsWith("wb-live-") && m.data && m.data.t !== undefined) {
      const t = m.data.t;
      out.sources[m.name] = {n: t.length, last: t.length ? t[t.length - 1] : null};
    }
    const cls = (m.css_classes || []).find((c) => c.startsWith("wb-"));
    if (!cls) continue;
    if (m.source && m.source.get_length) out.tables[cls] = m.source.get_length();
    else if (typeof m.text === "string") out.text[cls] = m.text;
  }
  return out;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data_dir: Path, *, model: str | None = "macd", rate: str = "20",
           extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(data_dir), "WORKBENCH_LIVE_RATE": rate,
           "OMP_NUM_THREADS": "1"}
    env.pop("WORKBENCH_LIVE_MODEL", None)
    env.pop("WORKBENCH_LIVE_LEDGER", None)
    if model is not None:
        env["WORKBENCH_LIVE_MODEL"] = model
    log = data_dir / f"server-{port}.log"
    with open(log, "wb") as out:
        # sessions of closed pages are destroyed after about a second (default: 15-30 s)
        # what `make app` runs: panel serve with Panel's assets served locally
        cmd, env = serve_command("live_app", ["--address", "127.0.0.1", "--port", str(port),
                                              "--check-unused-sessions", "500",
                                              "--unused-session-lifetime", "500", *extra],
                                 environ=env)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"panel serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}/live_app", log
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"panel serve did not listen within 60 s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("live-app")
    proc, url, log = _serve(data_dir)
    yield url
    _stop(proc)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: tools/system-deps.sh installs Debian's chromium",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


class Page:
    """A page of the app with its console errors collected."""

    def __init__(self, browser, url):
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1600, "height": 1500})
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        # a failed request's URL, so a "Failed to load resource" error says what it was
        self.page.on("requestfailed", lambda r: self.errors.append(
            f"requestfailed: {r.url} ({r.failure})"))
        # nothing may come from anywhere but this server (CI and air-gapped desks have no CDN)
        origin = url.split("/live_app")[0]
        self.page.on("request", lambda r: None if r.url.startswith((origin, "data:", "blob:"))
                     else self.errors.append(f"off-server request: {r.url}"))
        self.page.goto(url)
        self.page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                                    "Bokeh.documents[0].roots().length > 0", timeout=60_000)

    def state(self) -> dict:
        return self.page.evaluate(STATE_JS)

    def wait_until(self, predicate, timeout: float = 30.0, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state()
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {json.dumps(st)[:2000]}")
            time.sleep(0.25)

    def rows(self, table: str) -> list[str]:
        """Texts of the rows a table shows (read in one go: every stream rebuilds them)."""
        for _ in range(20):
            try:
                return self.page.locator(f".{table} .tabulator-tableholder").evaluate(
                    "e => Array.from(e.querySelectorAll('.tabulator-row'))"
                    ".map((r) => r.innerText)")
            except Exception:  # noqa: BLE001 - the holder was re-rendered mid-query
                time.sleep(0.1)
        raise AssertionError(f"could not read the rows of .{table}")

    def close(self):
        self.page.close()


@pytest.fixture
def page(browser, server):
    p = Page(browser, server)
    yield p
    p.close()


def _pushes(st: dict) -> int:
    m = re.search(r"UI pushes ([\d,]+)", st["text"].get("wb-stats", ""))
    return int(m.group(1).replace(",", "")) if m else 0


def _snapshot(st: dict) -> tuple:
    """What must not change while the engine is paused."""
    return (json.dumps(st["sources"], sort_keys=True), json.dumps(st["tables"], sort_keys=True),
            st["text"].get("wb-ind-equity"), st["text"].get("wb-stats"))


def test_page_loads_without_console_errors_and_streams(page):
    assert page.page.title() == "Live trading"
    first = page.wait_until(lambda s: s["sources"].get("wb-live-prices", {}).get("n", 0) > 0
                            and s["tables"].get("wb-verdicts", 0) > 0,
                            what="prices and verdicts")
    later = page.wait_until(
        lambda s: s["sources"]["wb-live-prices"]["last"] > first["sources"]["wb-live-prices"]
        ["last"] and _pushes(s) >= _pushes(first) + 5, what="new bars")
    assert later["sources"]["wb-live-equity"]["last"] == later["sources"]["wb-live-prices"]["last"]
    assert later["tables"]["wb-positions"] == 6 and later["tables"]["wb-fills"] > 0
    assert "Equity" in later["text"]["wb-ind-equity"] and "running" in later["text"]["wb-status"]
    rows = page.rows("wb-verdicts")
    assert rows and all(re.search(r"approved|REJECTED", r) for r in rows)
    assert len(page.rows("wb-positions")) == 6
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / "live_app.png"))
    assert not page.errors, page.errors


def test_pause_stops_updates_and_resume_restarts_them(page):
    button = page.page.locator(".wb-run button")
    page.wait_until(lambda s: _pushes(s) > 0, what="first push")
    assert button.inner_text().strip() == "Pause"
    button.click()
    try:
        deadline = time.monotonic() + 10
        while button.inner_text().strip() != "Resume":
            assert time.monotonic() < deadline, "button did not switch to Resume"
            time.sleep(0.1)
        time.sleep(1.0)  # batches already queued reach the page
        paused = page.state()
        assert "paused" in paused["text"]["wb-status"]
        time.sleep(2.0)
        assert _snapshot(page.state()) == _snapshot(paused)
    finally:
        button.click()
    resumed = page.wait_until(
        lambda s: s["sources"]["wb-live-prices"]["last"] > paused["sources"]["wb-live-prices"]
        ["last"], timeout=15, what="updates after resume")
    assert "running" in resumed["text"]["wb-status"]
    assert not page.errors, page.errors


def test_a_tiny_order_limit_makes_rejections_with_reasons_appear(page):
    box = page.page.locator(".wb-limit-max_order_notional input")
    page.wait_until(lambda s: s["tables"].get("wb-verdicts", 0) > 0, what="verdicts")
    original = box.input_value()
    try:
        box.fill("1")
        box.press("Enter")
        deadline = time.monotonic() + 30
        while True:
            text = "\n".join(page.rows("wb-verdicts"))  # rows shown, newest first
            if "REJECTED" in text and "> max 1" in text:
                break
            assert time.monotonic() < deadline, f"no rejection shown: {text[:1000]}"
            time.sleep(0.25)
        assert re.search(r"order notional \w+ [\d,]+ > max 1\b", text)
        summary = html.unescape(html.unescape(page.state()["text"]["wb-risk-summary"]))
        assert re.search(r"last rejection .*order notional \w+ [\d,]+ > max 1\b", summary)
    finally:
        box.fill(original.replace(",", ""))
        box.press("Enter")
    assert not page.errors, page.errors


#: Per symbol, the visibility of its lines in the browser (price chart, positions chart)
#: and the value of the "Symbols shown" picker.
LINES_JS = """() => {
  const out = {lines: {}, choice: null};
  for (const m of Bokeh.documents[0].all_models) {
    const hit = /^wb-live-(prices|weights)-line-(.+)$/.exec(m.name || "");
    if (hit) (out.lines[hit[2]] = out.lines[hit[2]] || {})[hit[1]] = m.visible;
    if ((m.css_classes || []).includes("wb-symbols")) out.choice = [...m.value];
  }
  return out;
}"""

#: Page coordinates of the centre of a legend entry (the chart's canvas offset plus the
#: legend's box; the entries share its height evenly).
LEGEND_ENTRY_JS = """([name, k]) => {
  const legend = [...Bokeh.documents[0].all_models].find((m) => m.name === name);
  const seen = new Set();
  const find = (v) => {
    if (!v || seen.has(v)) return null;
    seen.add(v);
    if (v.model === legend) return v;
    for (const c of (v.children ? [...v.children()] : [])) {
      const r = find(c);
      if (r) return r;
    }
    return null;
  };
  for (const root of Object.values(Bokeh.index)) {
    const view = find(root);
    if (!view) continue;
    const rect = view.parent.canvas_view.events_el.getBoundingClientRect();
    const b = view.bbox, pad = legend.padding, n = legend.items.length;
    const h = (b.height - 2 * pad) / n;
    return {x: rect.left + b.left + pad + 30, y: rect.top + b.top + pad + (k + 0.5) * h};
  }
  return null;
}"""


def _lines(page: Page) -> dict:
    return page.page.evaluate(LINES_JS)


def _wait_lines(page: Page, shown: list[str], timeout: float = 30.0) -> dict:
    """Wait until the picker holds ``shown`` and exactly those symbols' lines are visible
    in both charts (the server hides the others: the picker alone touches no line)."""
    deadline = time.monotonic() + timeout
    while True:
        st = _lines(page)
        visible = {s for s, v in st["lines"].items() if v.get("prices") and v.get("weights")}
        hidden = {s for s, v in st["lines"].items()
                  if v.get("prices") is False and v.get("weights") is False}
        if (st["choice"] == shown and visible == set(shown)
                and visible | hidden == set(st["lines"])):
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {shown} shown, got {json.dumps(st)}")
        time.sleep(0.1)


def _click(locator, done, timeout_s: float = 30.0) -> None:
    """Click ``locator`` like a user, then wait until ``done()`` shows the effect.

    ``no_wait_after``: Playwright's wait for "scheduled navigations" after a click on the
    picker's buttons (which navigate nowhere) hung for 30 s on a loaded machine, in CI and
    here, although the click had gone through.
    """
    locator.click(no_wait_after=True, timeout=30_000)
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"the click on {locator} had no effect in {timeout_s} s")
        time.sleep(0.1)


def test_symbol_picker_shows_only_the_chosen_symbols(page):
    """Remove chips with their x buttons, add one back from the dropdown, hide one from a
    legend: the lines follow in both charts; the engine, the book and the tables do not
    change (the picker only chooses the lines drawn)."""
    first = page.wait_until(lambda s: s["sources"].get("wb-live-prices", {}).get("n", 0) > 0,
                            what="prices")
    symbols = _lines(page)["choice"]
    assert len(symbols) == 6 and sorted(_lines(page)["lines"]) == sorted(symbols)
    picker = page.page.locator(".wb-symbols")
    try:
        for s in symbols[1:4]:
            _click(picker.locator(f"button[aria-label=\"Remove item: '{s}'\"]"),
                   lambda s=s: s not in _lines(page)["choice"])
        kept = [symbols[0], *symbols[4:]]
        _wait_lines(page, kept)
        ARTIFACTS.mkdir(exist_ok=True)
        page.page.screenshot(path=str(ARTIFACTS / "live_app_symbols.png"))

        options = picker.locator(".choices__list--dropdown .choices__item--choice")
        _click(picker.locator("input.choices__input--cloned"),  # opens the dropdown
               lambda: options.count() > 0 and options.first.is_visible())
        assert sorted(options.all_inner_texts()) == sorted(symbols[1:4])
        _click(options.filter(has_text=symbols[2]),
               lambda: symbols[2] in _lines(page)["choice"])
        page.page.keyboard.press("Escape")
        kept = [*kept, symbols[2]]
        _wait_lines(page, kept)

        # a click on a legend entry hides the line in the browser; the server hides the
        # symbol's other line too and takes its chip away
        point = page.page.evaluate(LEGEND_ENTRY_JS, ["wb-live-prices-legend",
                                                     symbols.index(symbols[0])])
        page.page.mouse.click(point["x"], point["y"])
        kept = kept[1:]
        _wait_lines(page, kept)
        assert picker.locator(".choices__list--multiple .choices__item").all_inner_texts() \
            and symbols[0] not in picker.locator(".choices__list--multiple").inner_text()

        # only the charts react: the engine streams on and the tables keep every symbol
        later = page.wait_until(
            lambda s: s["sources"]["wb-live-prices"]["last"]
            > first["sources"]["wb-live-prices"]["last"], what="new bars")
        assert "running" in later["text"]["wb-status"]
        assert later["tables"]["wb-positions"] == 6
        assert {r.split()[0] for r in page.rows("wb-positions")} == set(symbols)
    finally:  # the module's server is shared: show every symbol again
        page.page.evaluate("""(all) => {
          const m = [...Bokeh.documents[0].all_models].find(
            (x) => (x.css_classes || []).includes("wb-symbols"));
          m.value = all;
        }""", symbols)
    _wait_lines(page, symbols)
    assert not page.errors, page.errors


def _views(st: dict) -> int:
    return int(re.search(r"(\d+) view\(s\)", st["text"]["wb-status"]).group(1))


def test_sessions_share_one_engine_and_clean_up_on_close(browser, server, page):
    # the pages of earlier tests are closed: their sessions go within a second or two
    page.wait_until(lambda s: "view(s)" in s["text"].get("wb-status", "") and _views(s) == 1,
                    what="this page as the only view")
    second = Page(browser, server)
    try:
        page.wait_until(lambda s: _views(s) == 2, what="a second view")
        st2 = second.wait_until(lambda s: _pushes(s) > 0, what="the second page streaming")
        assert _views(st2) == 2  # one producer, two subscribed sessions
    finally:
        second.close()
    page.wait_until(lambda s: _views(s) == 1, what="the closed session to unsubscribe")
    assert not page.errors and not second.errors, page.errors + second.errors


@pytest.mark.parametrize("launcher", ["panel serve", "python -m widgets.serve"])
def test_serving_beyond_loopback_without_auth_refuses_to_start(tmp_path, launcher):
    port = _free_port()
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path)}
    env.pop("PANEL_BASIC_AUTH", None)
    env.pop("PANEL_OAUTH_PROVIDER", None)
    args = ["--address", "0.0.0.0", "--port", str(port)]
    if launcher == "panel serve":
        cmd = [PANEL, "serve", "widgets/live_app.py", *args]
    else:
        cmd = [sys.executable, "-m", "widgets.serve", "live_app", *args]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    assert "refusing to serve the live trading app with --address 0.0.0.0" in proc.stderr
    assert "--basic-auth" in proc.stderr
    assert elapsed < 15, f"took {elapsed:.1f} s"
    assert "Bokeh app running" not in proc.stdout + proc.stderr  # it never listened


def test_without_the_startup_hook_the_first_request_stops_the_server(tmp_path):
    # `bokeh serve` does not load Panel's entry points, so the app itself refuses when the
    # first session runs it
    port = _free_port()
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path), "WORKBENCH_LIVE_MODEL": "macd"}
    env.pop("PANEL_BASIC_AUTH", None)
    env.pop("PANEL_OAUTH_PROVIDER", None)
    bokeh = str(Path(sys.executable).parent / "bokeh")
    proc = subprocess.Popen([bokeh, "serve", "widgets/live_app.py", "--address", "0.0.0.0",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "bokeh serve did not listen"
            time.sleep(0.2)
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/live_app", timeout=30)
        out = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 2
    assert "refusing to serve the live trading app with --address 0.0.0.0" in out


@pytest.mark.slow
def test_demo_ensemble_app(browser, tmp_path):
    proc, url, log = _serve(tmp_path, model=None, rate="10")
    try:
        p = Page(browser, url)  # the first session trains the demo ensemble (~10-30 s)
        st = p.wait_until(lambda s: "lstm" in s["text"].get("wb-health", "")
                          and s["tables"].get("wb-fills", 0) > 0, timeout=120,
                          what="the ensemble trading")
        for member in ("linear", "mlp", "cnn", "lstm"):
            assert member in st["text"]["wb-health"]
        assert "excluded" not in st["text"]["wb-health"]
        time.sleep(5)
        ARTIFACTS.mkdir(exist_ok=True)
        p.page.screenshot(path=str(ARTIFACTS / "live_app_demo.png"))
        assert not p.errors, p.errors
        p.close()
    finally:
        _stop(proc)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.mark.slow
def test_soak_two_minutes_at_full_replay_speed(browser, tmp_path):
    duration, warmup, every = 120.0, 30.0, 5.0
    proc, url, log = _serve(tmp_path, rate="1000000")  # pacing off: as fast as it goes
    try:
        p = Page(browser, url)
        t0 = time.monotonic()
        samples = []  # (elapsed s, RSS MB, UI pushes, engine batches)

        def sample(elapsed: float) -> None:
            st = p.state()
            status = st["text"]["wb-status"]
            batches = int(re.search(r"([\d,]+) batches", status).group(1).replace(",", ""))
            samples.append((round(elapsed, 1), round(_rss_mb(proc.pid), 1), _pushes(st),
                            batches))

        while (elapsed := time.monotonic() - t0) < duration:
            sample(elapsed)
            time.sleep(every)
        sample(time.monotonic() - t0)
        base = next(rss for t, rss, *_ in samples if t >= warmup)
        growth = max(rss for t, rss, *_ in samples if t >= warmup) - base
        status = p.state()["text"]["wb-status"]
        mid, end = samples[len(samples) // 2], samples[-1]
        record = {"duration_s": duration, "warmup_s": warmup, "rss_after_warmup_mb": base,
                  "rss_growth_mb": round(growth, 1), "batches": end[3], "ui_pushes": end[2],
                  "status": status, "samples": samples}
        print("soak:", json.dumps(record))
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "live_soak.json").write_text(json.dumps(record, indent=1))
        assert end[3] > 5_000, record  # it really ran at full speed
        # ... to the end: the engine still running (a replay that ran out of timestamps or
        # a crash would stop it and leave the memory flat) and the page still updating
        assert "running" in status and "stopped" not in status and "feed:" not in status, record
        assert end[3] - mid[3] > 2_000, record
        assert end[2] - mid[2] > 100, record
        assert growth < 50, record
        assert not p.errors, p.errors
        p.close()
    finally:
        _stop(proc)
