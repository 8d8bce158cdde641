"""Served live app in headless Chromium: rendered update rate, server-to-browser lag, soak RSS.

Used by ``bench_live.py --browser``. Starts ``panel serve widgets/live_app.py`` on a free
loopback port (MACD baseline model, replay as fast as it goes, a temporary data
directory), opens it in the system Chromium through Playwright and, in the page, watches
the ``wb-push-clock`` text model (the server's wall-clock time of its latest push) on every
animation frame. Each change is one update the browser actually received and drew:

- ``updates_per_s``: changes per second over the measured window;
- lag: browser wall clock at the frame that showed the change minus the server time in it
  (same machine, same clock), p50/p99 in ms;
- RSS of the server process sampled every 5 s; growth after a 30 s warm-up.

The run fails (RuntimeError) when the page stopped receiving updates before the end of the
window or the app's status line no longer says "running" (an engine that stopped would
leave the memory flat and the soak meaningless).
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"

WATCH_JS = """() => {
  const doc = Bokeh.documents[0];
  let model = null;
  for (const m of doc.all_models) {
    if ((m.css_classes || []).includes("wb-push-clock")) { model = m; break; }
  }
  if (!model) return false;
  window.__wb = {seen: [], last: null};
  const tick = () => {
    const txt = model.text;
    if (txt !== window.__wb.last) {
      window.__wb.last = txt;
      const t = parseFloat(String(txt).replace(/<[^>]*>/g, ""));
      if (!isNaN(t)) window.__wb.seen.push([Date.now() / 1000, t]);
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  return true;
}"""

STATUS_JS = """() => {
  for (const m of Bokeh.documents[0].all_models) {
    if ((m.css_classes || []).includes("wb-status")) return String(m.text);
  }
  return "";
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(seconds: float = 300.0, warmup: float = 30.0) -> dict:
    """Serve the app, watch it for ``seconds`` and return the browser figures."""
    import numpy as np
    from playwright.sync_api import sync_playwright

    from widgets.serve import serve_command

    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "WORKBENCH_DATA_DIR": tmp, "WORKBENCH_LIVE_RATE": "1000000",
               "WORKBENCH_LIVE_MODEL": "macd", "OMP_NUM_THREADS": "1"}
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        cmd, env = serve_command("live_app", ["--address", "127.0.0.1", "--port", str(port)],
                                 environ=env)  # what `make app` runs
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("panel serve did not start")
                time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": 1600, "height": 1500})
                page.goto(f"http://127.0.0.1:{port}/live_app")
                page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0",
                                       timeout=60_000)
                page.wait_for_function(WATCH_JS, timeout=60_000)
                t0 = time.monotonic()
                rss = []
                while (elapsed := time.monotonic() - t0) < seconds:
                    rss.append((round(elapsed, 1), round(_rss_mb(proc.pid), 1)))
                    time.sleep(5.0)
                seen = np.array(page.evaluate("() => window.__wb.seen"), dtype=float)
                status = page.evaluate(STATUS_JS)
                browser.close()
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    span = seen[-1, 0] - seen[0, 0] if len(seen) > 1 else float("nan")
    if not span >= 0.9 * seconds or "running" not in status or "stopped" in status:
        raise RuntimeError(f"the app stopped updating: updates over {span:.0f} s of "
                           f"{seconds:.0f} s; status {status[:300]!r}")
    lag_ms = (seen[:, 0] - seen[:, 1]) * 1e3
    after = [r for t, r in rss if t >= warmup]
    return {"updates_per_s": (len(seen) - 1) / span, "lag_p50_ms": float(np.median(lag_ms)),
            "lag_p99_ms": float(np.percentile(lag_ms, 99)),
            "rss_growth_mb": float(max(after) - after[0]) if after else float("nan"),
            "rss_mb": rss, "seconds": seconds,
            "detail": {"updates_seen": int(len(seen)), "window_s": float(span),
                       "status_at_end": re.sub(r"<[^>]*>", "", html.unescape(status))}}
