"""Feeds: ReplayFeed pacing and controls, AlpacaFeed against a loopback Alpaca server."""

from __future__ import annotations

import logging
import math
import threading
import time

import msgpack
import numpy as np
import pandas as pd
import pytest

from tests.data.alpaca_server import AlpacaLoopbackServer, bar_message
from workbench.data import Bars, load_universe
from workbench.data.feeds import AlpacaFeed, FeedError, ReplayFeed, parse_alpaca_bar
from workbench.live._types import Bar, Malformed

NAN = np.nan


def toy_bars(T: int = 6, validate: bool = True) -> Bars:
    """3 symbols x T days; B has no bar on rows 2-3, C starts on row 1."""
    idx = pd.date_range("2020-01-01", periods=T, freq="D", tz="UTC")
    close = np.column_stack([10.0 + np.arange(T), 20.0 + np.arange(T), 30.0 + np.arange(T)]).astype(
        float
    )
    close[2:4, 1] = NAN
    close[0, 2] = NAN
    return Bars(
        idx,
        ("A", "B", "C"),
        close - 0.5,
        close + 1.0,
        close - 1.0,
        close,
        np.where(np.isnan(close), NAN, 100.0),
        validate=validate,
    )


def expected_batches(bars: Bars, symbols=None) -> list[list[Bar]]:
    syms = list(symbols or bars.symbols)
    cols = [bars.symbols.index(s) for s in syms]
    out = []
    for t, ts in enumerate(bars.index.asi8):
        batch = [
            Bar(
                syms[k],
                int(ts),
                *(float(bars[f][t, j]) for f in ("open", "high", "low", "close", "volume")),
            )
            for k, j in enumerate(cols)
            if not math.isnan(bars["close"][t, j])
        ]
        if batch:
            out.append(batch)
    return out


def drain(feed, limit=10_000):
    out = []
    for batch in feed:
        out.append(batch)
        if len(out) >= limit:
            break
    return out


# ===================================================================== ReplayFeed
def test_replay_yields_every_timestamp_in_order_then_stops():
    bars = toy_bars()
    feed = ReplayFeed(bars, speed=float("inf"))
    assert feed.symbols == ("A", "B", "C") and not feed.running
    got = drain(feed)
    assert got == expected_batches(bars)
    # NaN close = no bar: B absent on rows 2-3, C absent on row 0
    assert [b.symbol for b in got[0]] == ["A", "B"]
    assert [b.symbol for b in got[2]] == ["A", "C"]
    ts = [batch[0].ts for batch in got]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert all(isinstance(b.ts, int) for batch in got for b in batch)
    assert feed.stopped and not feed.running
    assert feed.last_ts == int(bars.index[-1].value)
    assert feed.position == bars.T
    with pytest.raises(FeedError, match="stopped"):
        feed.start()


def test_replay_default_is_bundled_daily_universe():
    daily = load_universe("daily")
    feed = ReplayFeed(speed=0)
    assert feed.symbols == daily.symbols
    first = next(iter(feed))
    feed.stop()
    assert first == expected_batches(daily.loc(None, daily.index[0]))[0]
    assert first[0].ts == int(daily.index[0].value)
    # in 1999 only the two indices have bars; the bokeh stocks start in 2000
    assert {b.symbol for b in first} == {"SP500", "NASDAQ"}


def test_replay_does_not_clean_bad_bars():
    bars = toy_bars(validate=False)
    high = bars["high"].copy()
    high[1, 0] = 1.0  # high < low: the engine's validator must see it
    bad = Bars(
        bars.index,
        bars.symbols,
        bars["open"],
        high,
        bars["low"],
        bars["close"],
        bars["volume"],
        validate=False,
    )
    got = drain(ReplayFeed(bad, speed=float("inf")))
    a = next(b for b in got[1] if b.symbol == "A")
    assert a.high == 1.0 and a.low > a.high


def test_replay_pacing_follows_rate():
    bars = toy_bars(T=26)
    feed = ReplayFeed(bars, symbols=["A"], rate=50.0)
    t0 = time.monotonic()
    got = drain(feed)
    elapsed = time.monotonic() - t0
    assert len(got) == 26
    # first batch at once, then 25 intervals of 1/50 s = 0.5 s
    assert 0.45 <= elapsed <= 1.5, elapsed


def test_replay_speed_multiplies_rate():
    feed = ReplayFeed(toy_bars(T=21), symbols=["A"], rate=10.0, speed=4.0)
    t0 = time.monotonic()
    assert len(drain(feed)) == 21
    elapsed = time.monotonic() - t0  # 20 intervals of 1/40 s = 0.5 s
    assert 0.45 <= elapsed <= 1.5, elapsed


def test_replay_speed_change_takes_effect_while_waiting():
    feed = ReplayFeed(toy_bars(T=10), rate=0.25)  # 4 s between batches
    feed.next_batch()
    threading.Timer(0.15, setattr, (feed, "speed", float("inf"))).start()
    t0 = time.monotonic()
    assert feed.next_batch(timeout=10) is not None
    assert time.monotonic() - t0 < 2.0  # did not sit out the 4 s interval
    t0 = time.monotonic()
    rest = drain(feed)
    assert len(rest) == 8 and time.monotonic() - t0 < 2.0
    assert feed.speed == math.inf


def test_replay_speed_slowdown_takes_effect():
    feed = ReplayFeed(toy_bars(T=10), rate=100.0)
    feed.next_batch()
    feed.speed = 0.02  # 2 batches per second
    t0 = time.monotonic()
    feed.next_batch()
    assert time.monotonic() - t0 >= 0.4


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "fast", None])
def test_replay_bad_speed_rejected(bad):
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(toy_bars(), speed=bad)
    feed = ReplayFeed(toy_bars())
    with pytest.raises(ValueError, match="speed"):
        feed.speed = bad


def test_replay_pause_blocks_and_resume_continues():
    feed = ReplayFeed(toy_bars(), speed=float("inf")).start()
    first = feed.next_batch()
    feed.pause()
    assert feed.paused
    t0 = time.monotonic()
    assert feed.next_batch(timeout=0.3) is None  # no batch while paused
    assert time.monotonic() - t0 >= 0.29
    assert feed.position == 1 and feed.running
    threading.Timer(0.2, feed.resume).start()
    t0 = time.monotonic()
    second = feed.next_batch()  # blocks until resumed
    assert time.monotonic() - t0 >= 0.15
    assert not feed.paused
    assert second[0].ts > first[0].ts
    assert second == expected_batches(feed.bars)[1]


def test_replay_pause_blocks_a_consuming_thread():
    feed = ReplayFeed(toy_bars(T=200), rate=100.0)
    got: list = []

    def consume():
        for batch in feed:
            got.append(batch)

    th = threading.Thread(target=consume, daemon=True)
    feed.start()
    th.start()
    time.sleep(0.2)
    assert len(got) > 0
    feed.pause()
    time.sleep(0.15)
    n_paused = len(got)
    time.sleep(0.3)
    assert len(got) == n_paused, "batches were delivered while paused"
    feed.resume()
    time.sleep(0.2)
    assert len(got) > n_paused
    feed.stop()
    th.join(2)
    assert not th.is_alive()


def test_replay_stop_ends_blocked_iteration():
    feed = ReplayFeed(toy_bars(), rate=0.1)  # 10 s between batches
    got: list = []
    th = threading.Thread(target=lambda: got.extend(drain(feed)), daemon=True)
    th.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    feed.stop()
    th.join(2)
    assert not th.is_alive() and time.monotonic() - t0 < 1.0
    assert len(got) == 1  # the first batch comes at once, the second never
    assert not feed.running and feed.next_batch(timeout=0) is None


def test_replay_stop_while_paused_ends_iteration():
    feed = ReplayFeed(toy_bars(), speed=float("inf"))
    feed.pause()
    done = threading.Event()
    th = threading.Thread(target=lambda: (drain(feed), done.set()), daemon=True)
    th.start()
    time.sleep(0.1)
    assert not done.is_set()
    feed.stop()
    assert done.wait(2)


def test_replay_next_batch_timeout():
    feed = ReplayFeed(toy_bars(), rate=0.5)
    assert feed.next_batch(timeout=0.1) is not None  # first batch immediately
    t0 = time.monotonic()
    assert feed.next_batch(timeout=0.2) is None
    assert 0.15 <= time.monotonic() - t0 < 1.0
    assert feed.running


def test_replay_symbols_subset_in_given_order():
    bars = toy_bars()
    feed = ReplayFeed(bars, symbols=["C", "B"], speed=float("inf"))
    assert feed.symbols == ("C", "B")
    got = drain(feed)
    assert got == expected_batches(bars, ["C", "B"])
    assert all(b.symbol in ("C", "B") for batch in got for b in batch)
    assert [b.symbol for b in got[1]] == ["C", "B"]


def test_replay_symbols_subset_drops_empty_timestamps():
    bars = toy_bars()
    got = drain(ReplayFeed(bars, symbols=["C"], speed=float("inf")))
    assert len(got) == bars.T - 1  # C has no bar on row 0: that timestamp is not replayed
    assert all(len(b) == 1 for b in got)


def test_replay_bad_symbols_rejected():
    with pytest.raises(ValueError, match="unknown symbols \\['ZZZ'\\]"):
        ReplayFeed(toy_bars(), symbols=["A", "ZZZ"])
    with pytest.raises(ValueError, match="single str"):
        ReplayFeed(toy_bars(), symbols="A")
    with pytest.raises(ValueError, match="empty"):
        ReplayFeed(toy_bars(), symbols=[])
    with pytest.raises(ValueError, match="twice"):
        ReplayFeed(toy_bars(), symbols=["A", "A"])
    with pytest.raises(TypeError, match="Bars"):
        ReplayFeed(pd.DataFrame())


def test_replay_start_end_bounds():
    bars = toy_bars()
    got = drain(ReplayFeed(bars, start="2020-01-02", end="2020-01-04", speed=float("inf")))
    assert [pd.Timestamp(b[0].ts, tz="UTC").day for b in got] == [2, 3, 4]
    # a str bound beside a Timestamp (here the live app's kind of start) is fine
    got = drain(ReplayFeed(bars, start=bars.index[1], end="2020-01-04", speed=float("inf")))
    assert [pd.Timestamp(b[0].ts, tz="UTC").day for b in got] == [2, 3, 4]
    with pytest.raises(ValueError, match="no bars to replay"):
        ReplayFeed(bars, start="2021-01-01")
    with pytest.raises(ValueError, match="start is not a timestamp"):
        ReplayFeed(bars, start="not a date")


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_replay_bad_rate_rejected(rate):
    with pytest.raises(ValueError, match="rate"):
        ReplayFeed(toy_bars(), rate=rate)


def test_replay_loop_real_spacing_keeps_timestamps_increasing():
    bars = toy_bars()
    feed = ReplayFeed(bars, loop=True, loop_step=None, speed=float("inf"))
    got = drain(feed, limit=3 * bars.T)
    feed.stop()
    assert len(got) == 3 * bars.T
    ts = [batch[0].ts for batch in got]
    assert all(b > a for a, b in zip(ts, ts[1:]))
    one_day = 86_400 * 10**9
    shift = ts[bars.T] - ts[0]
    assert shift == 5 * one_day + one_day  # span + median spacing
    for k in range(bars.T):  # same bars, shifted timestamps
        first, again = got[k], got[k + bars.T]
        assert [(b.symbol, b.close) for b in first] == [(b.symbol, b.close) for b in again]
        assert all(b.ts == a.ts + shift for a, b in zip(first, again))


def gapped_bars() -> Bars:
    """One symbol on Mon-Fri, then the next Monday (a 3-day gap), then Tuesday."""
    idx = pd.DatetimeIndex(["2020-01-06", "2020-01-07", "2020-01-08", "2020-01-09",
                            "2020-01-10", "2020-01-13", "2020-01-14"], tz="UTC")
    close = np.arange(1.0, 8.0)[:, None]
    return Bars(idx, ("A",), close, close + 1, close - 0.5, close, np.full_like(close, 10.0))


@pytest.mark.parametrize("loop_step", [1.0, 0.25])
def test_replay_loop_compresses_later_cycles(loop_step):
    bars = gapped_bars()
    T = bars.T
    feed = ReplayFeed(bars, loop=True, speed=float("inf"), loop_step=loop_step)
    assert feed.loop_step == loop_step
    got = drain(feed, limit=3 * T)
    feed.stop()
    ts = np.array([batch[0].ts for batch in got], dtype=np.int64)
    assert (np.diff(ts) > 0).all()
    assert list(ts[:T]) == list(bars.index.asi8)  # the first cycle keeps the real stamps
    step = round(loop_step * 1e9)
    assert ts[T] == ts[T - 1] + step  # the next cycle starts one compressed step later
    # every gap scaled by step / one day: 1 day -> step, the weekend's 3 days -> 3 steps
    want = np.array([1, 1, 1, 1, 3, 1]) * step
    assert list(np.diff(ts[T:2 * T])) == list(want)
    assert list(np.diff(ts[2 * T:])) == list(want)
    assert ts[2 * T] - ts[T] == 9 * step  # cycle span: the 8 steps of gaps + one step
    assert [b[0].close for b in got] == list(bars["close"][:, 0]) * 3


def test_replay_loop_runs_long_without_leaving_the_timestamp_range():
    # two bars a century apart: with real spacing each cycle costs 200 years
    idx = pd.DatetimeIndex(["1950-01-01", "2050-01-01"], tz="UTC")
    close = np.array([[1.0], [2.0]])
    bars = Bars(idx, ("A",), close, close, close, close, np.ones_like(close))
    real = ReplayFeed(bars, loop=True, loop_step=None, speed=float("inf"))
    got = drain(real)
    assert [pd.Timestamp(b[0].ts).year for b in got] == [1950, 2050, 2150, 2250]
    assert real.stopped and isinstance(real.error, FeedError)
    assert "loop_step" in str(real.error) and "2262" in str(real.error)
    compressed = ReplayFeed(bars, loop=True, speed=float("inf"))  # default loop_step=1.0
    got = drain(compressed, limit=5_000)
    compressed.stop()
    assert len(got) == 5_000 and compressed.error is None
    # the century gap became 1 s, a cycle 2 s; item 4,999 is row 1 of cycle 2,499
    last = pd.Timestamp(got[-1][0].ts, tz="UTC")
    assert last == pd.Timestamp("2050-01-01", tz="UTC") + pd.Timedelta(seconds=1 + 2 * 2_498 + 1)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1s", True])
def test_replay_bad_loop_step_rejected(bad):
    with pytest.raises(ValueError, match="loop_step"):
        ReplayFeed(toy_bars(), loop=True, loop_step=bad)


def test_replay_skip_until_with_warmup_is_unpaced():
    bars = toy_bars(T=8)
    cut = int(bars.index[4].value)
    feed = ReplayFeed(bars, rate=1.0).skip_until(cut)  # paced: 1 s per batch
    t0 = time.monotonic()
    warm = [feed.next_batch() for _ in range(5)]
    assert time.monotonic() - t0 < 0.8  # the 5 warm-up batches came without pacing
    assert [b[0].ts for b in warm] == [int(x) for x in bars.index.asi8[:5]]
    after = feed.next_batch()
    assert after[0].ts == int(bars.index[5].value)
    t0 = time.monotonic()
    feed.next_batch()
    assert time.monotonic() - t0 >= 0.9  # pacing is back after the warm-up
    feed.stop()


def test_replay_skip_until_without_warmup_skips():
    bars = toy_bars(T=8)
    cut = int(bars.index[4].value)
    got = drain(ReplayFeed(bars, speed=float("inf")).skip_until(cut, warmup=False))
    assert [b[0].ts for b in got] == [int(x) for x in bars.index.asi8[5:]]
    with pytest.raises(TypeError, match="ts_ns"):
        ReplayFeed(bars).skip_until(pd.Timestamp("2020-01-03", tz="UTC"))


def test_replay_skip_until_into_a_later_loop_cycle():
    bars = toy_bars()
    probe = ReplayFeed(bars, loop=True, speed=float("inf"))
    ts = [b[0].ts for b in drain(probe, limit=bars.T + 3)]
    probe.stop()
    resumed = ReplayFeed(bars, loop=True, speed=float("inf")).skip_until(ts[-2], warmup=False)
    assert next(iter(resumed))[0].ts == ts[-1]
    resumed.stop()


def test_replay_context_manager_and_repr():
    with ReplayFeed(toy_bars(), speed=float("inf")) as feed:
        assert feed.running
        assert "ReplayFeed(" in repr(feed) and "'A'" in repr(feed)
    assert feed.stopped


# ===================================================================== parse_alpaca_bar
def test_parse_alpaca_bar_msgpack_timestamp_and_rfc3339():
    ns = int(pd.Timestamp("2024-03-01T15:30:00.123456789Z").value)
    m = bar_message("AAPL", "x", 1.0, 2.0, 0.5, 1.5, 1000)
    m["t"] = msgpack.Timestamp.from_unix_nano(ns)
    assert parse_alpaca_bar(m) == Bar("AAPL", ns, 1.0, 2.0, 0.5, 1.5, 1000.0)
    m["t"] = "2024-03-01T15:30:00.123456789Z"
    assert parse_alpaca_bar(m).ts == ns
    m["t"] = "2024-03-01T17:30:00.123456789+02:00"  # offsets are converted to UTC
    assert parse_alpaca_bar(m).ts == ns


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"c": None}, "field 'c' is not a number"),
        ({"o": "1.5"}, "field 'o' is not a number"),
        ({"v": True}, "field 'v' is not a number"),
        ({"t": "2024-03-01T15:30:00"}, "not RFC-3339 with a UTC offset"),
        ({"t": "now"}, "not RFC-3339"),
        ({"t": "2024-13-01T15:30:00Z"}, "unparseable timestamp"),
        ({"t": 1709307000}, "must be an RFC-3339 string or msgpack Timestamp"),
        ({"S": ""}, "field 'S' is not a symbol"),
        ({"T": "q"}, "not a bar message"),
    ],
)
def test_parse_alpaca_bar_malformed(change, reason):
    m = {**bar_message("AAPL", "2024-03-01T15:30:00Z", 1.0, 2.0, 0.5, 1.5, 10), **change}
    out = parse_alpaca_bar(m)
    assert isinstance(out, Malformed)
    assert reason in out.reason
    assert '"S"' in out.raw


def test_parse_alpaca_bar_missing_fields_all_named():
    out = parse_alpaca_bar({"T": "b", "S": "AAPL", "o": 1.0, "x": "y" * 2000})
    assert isinstance(out, Malformed)
    for f in ("h", "l", "c", "v", "t"):
        assert f"missing field '{f}'" in out.reason
    assert len(out.raw) == 500
    assert isinstance(parse_alpaca_bar(["not", "a", "dict"]), Malformed)


def test_parse_alpaca_bar_keeps_bad_values_for_the_validator():
    m = bar_message("AAPL", "2024-03-01T15:30:00Z", 1.0, 0.5, 2.0, float("nan"), -5)
    out = parse_alpaca_bar(m)  # high < low, NaN close, negative volume: still a Bar
    assert isinstance(out, Bar) and out.high == 0.5 and math.isnan(out.close)


# ===================================================================== AlpacaFeed
KEY, SECRET = "PKFAKEKEY0123456789", "SECRETfake9876543210zyx"
T0 = "2024-01-02T14:30:00Z"
T1 = "2024-01-02T14:31:00.250000001Z"


def ns(t: str) -> int:
    return int(pd.Timestamp(t).value)


@pytest.fixture
def alpaca_env(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


def serve(messages, **kw):
    return AlpacaLoopbackServer(messages, key=KEY, secret=SECRET, **kw)


def take(feed, n, timeout=10.0):
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        b = feed.next_batch(timeout=max(0.0, deadline - time.monotonic()))
        if b is not None:
            out.append(b)
        elif feed.stopped:
            break
    return out


def assert_no_secrets(text: str) -> None:
    for s in (KEY, SECRET):
        assert s not in text
        assert " ".join(f"{b:02x}" for b in s.encode()) not in text
        assert s.encode().hex() not in text


MESSAGES = [
    bar_message("AAPL", T0, 185.0, 185.5, 184.9, 185.2, 12_000),
    bar_message("MSFT", T0, 370.0, 371.0, 369.5, 370.4, 8_000),
    bar_message("AAPL", T1, 185.2, 185.9, 185.1, 185.8, 9_500),
    bar_message("MSFT", T1, 370.4, 370.9, 370.1, 370.2, 7_000),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("native", [True, False], ids=["msgpack-ts", "rfc3339-str"])
def test_alpaca_bars_arrive_batched_by_timestamp(alpaca_env, native):
    with serve(MESSAGES, per_frame=3, native_timestamps=native) as srv:
        with AlpacaFeed(["AAPL", "MSFT"], url=srv.url) as feed:
            got = take(feed, 2)
            assert feed.connected and feed.error is None
        assert srv.encodings == ["msgpack"]
        assert srv.subscriptions["bars"] == ["AAPL", "MSFT"]
    assert got == [
        [
            Bar("AAPL", ns(T0), 185.0, 185.5, 184.9, 185.2, 12_000.0),
            Bar("MSFT", ns(T0), 370.0, 371.0, 369.5, 370.4, 8_000.0),
        ],
        [
            Bar("AAPL", ns(T1), 185.2, 185.9, 185.1, 185.8, 9_500.0),
            Bar("MSFT", ns(T1), 370.4, 370.9, 370.1, 370.2, 7_000.0),
        ],
    ]
    assert got[1][0].ts % 10**9 == 250_000_001  # nanoseconds survive
    assert feed.last_ts == ns(T1) and feed.stopped


@pytest.mark.timeout(60)
def test_alpaca_a_timestamps_bars_arriving_apart_stay_one_batch(alpaca_env):
    # Alpaca pushes a minute's bars one message per symbol, spread over up to about a
    # second: a straggler must join its timestamp's batch (a batch of its own is rejected
    # by the live engine as 'late'), while a complete batch is handed out at once
    with serve(MESSAGES[:1]) as srv, AlpacaFeed(["AAPL", "MSFT"], url=srv.url) as feed:
        assert feed.next_batch(timeout=0.4) is None  # MSFT's bar for T0 has not come yet
        srv.send(MESSAGES[1:2])
        got = take(feed, 1, timeout=5)
        srv.send(MESSAGES[2:])
        t0 = time.monotonic()
        got += take(feed, 1, timeout=5)
        complete_after = time.monotonic() - t0
    assert [[(b.symbol, b.ts) for b in batch] for batch in got] == [
        [("AAPL", ns(T0)), ("MSFT", ns(T0))], [("AAPL", ns(T1)), ("MSFT", ns(T1))]]
    assert complete_after < 0.9  # not held for flush_after_s (1 s): every symbol had a bar
    # a symbol with no bar in the minute: the batch goes out after flush_after_s of silence
    with serve(MESSAGES[:1]) as srv, AlpacaFeed(["AAPL", "MSFT"], url=srv.url,
                                                flush_after_s=0.2) as feed:
        got = take(feed, 1, timeout=5)
    assert [(b.symbol, b.ts) for b in got[0]] == [("AAPL", ns(T0))]


@pytest.mark.timeout(60)
def test_alpaca_malformed_messages_become_malformed(alpaca_env):
    bad_close = {**bar_message("AAPL", T0, 1.0, 2.0, 0.5, 1.5, 10)}
    del bad_close["c"]
    msgs = [
        bad_close,
        {**bar_message("MSFT", T0, 1.0, 2.0, 0.5, 1.5, 10), "o": "abc"},
        bar_message("AAPL", T1, 1.0, 2.0, 0.5, 1.5, 10),
        {**bar_message("MSFT", T1, 1.0, 2.0, 0.5, 1.5, 10), "t": "yesterday"},
    ]
    with serve(msgs, per_frame=2) as srv, AlpacaFeed(["AAPL", "MSFT"], url=srv.url) as feed:
        # a Malformed joins the batch being assembled, so 1 or 2 batches hold the 4 messages
        got, deadline = [], time.monotonic() + 10
        while sum(map(len, got)) < 4 and time.monotonic() < deadline:
            if (b := feed.next_batch(timeout=0.2)) is not None:
                got.append(b)
    flat = [x for b in got for x in b]
    assert len(flat) == 4
    bad = [x for x in flat if isinstance(x, Malformed)]
    good = [x for x in flat if isinstance(x, Bar)]
    assert good == [Bar("AAPL", ns(T1), 1.0, 2.0, 0.5, 1.5, 10.0)]
    reasons = " | ".join(m.reason for m in bad)
    assert "missing field 'c'" in reasons
    assert "field 'o' is not a number: 'abc'" in reasons
    assert "'yesterday'" in reasons
    assert any('"MSFT"' in m.raw for m in bad)


@pytest.mark.timeout(60)
def test_alpaca_wrong_key_surfaces_error_and_ends_iteration(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with AlpacaLoopbackServer(MESSAGES, key="another-key", secret=SECRET) as srv:
        feed = AlpacaFeed(["AAPL"], url=srv.url)
        t0 = time.monotonic()
        got = drain(feed)  # ends on the fatal auth error
        assert time.monotonic() - t0 < 10
        assert got == []
        assert srv.auth_failures == 1 and srv.connections == 1  # no reconnect storm
    assert isinstance(feed.error, FeedError)
    assert "auth failed" in str(feed.error)
    assert feed.stopped and not feed.connected
    assert any("auth failed" in r.getMessage() for r in caplog.records)
    assert_no_secrets(caplog.text + repr(feed) + str(feed.error))


@pytest.mark.timeout(60)
def test_alpaca_keys_never_in_repr_or_logs(alpaca_env, caplog):
    caplog.set_level(logging.DEBUG)
    with serve(MESSAGES) as srv:
        feed = AlpacaFeed(["AAPL", "MSFT"], url=srv.url)
        assert_no_secrets(repr(feed))
        with feed:
            assert len(take(feed, 2)) == 2
            assert_no_secrets(repr(feed))
            assert "APCA_API_KEY_ID" in repr(feed)  # the variable's name, not its value
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "AlpacaFeed connected" in text  # logging did happen
    assert_no_secrets(text)
    assert_no_secrets(str(srv.received))


def test_alpaca_missing_keys_clear_error(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    feed = AlpacaFeed(["AAPL"], url="ws://127.0.0.1:9/v2/iex")
    with pytest.raises(FeedError, match="not set: APCA_API_SECRET_KEY") as info:
        feed.start()
    assert "APCA_API_KEY_ID" in str(info.value)
    assert_no_secrets(str(info.value))
    assert not feed.running and not feed.stopped  # can start once the keys are set
    with pytest.raises(FeedError, match="MY_ID, MY_SECRET"):
        AlpacaFeed(["AAPL"], key_env=("MY_ID", "MY_SECRET")).start()


@pytest.mark.timeout(60)
def test_alpaca_pause_queues_and_resume_delivers(alpaca_env):
    with serve(MESSAGES[:2]) as srv, AlpacaFeed(["AAPL", "MSFT"], url=srv.url) as feed:
        assert len(take(feed, 1)) == 1
        feed.pause()
        srv.send(MESSAGES[2:])
        assert feed.next_batch(timeout=0.4) is None  # blocked while paused
        feed.resume()
        got = take(feed, 1, timeout=5)
    assert [b.ts for b in got[0]] == [ns(T1), ns(T1)]


@pytest.mark.timeout(60)
def test_alpaca_stop_ends_blocked_iteration(alpaca_env):
    with serve(MESSAGES[:1]) as srv:
        feed = AlpacaFeed(["AAPL"], url=srv.url)
        got: list = []

        def consume() -> None:
            for batch in feed:
                got.append(batch)

        th = threading.Thread(target=consume, daemon=True)
        th.start()
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got, "the first batch never arrived"
        t0 = time.monotonic()
        feed.stop()
        th.join(5)
        assert not th.is_alive() and time.monotonic() - t0 < 3
        assert len(got) == 1 and feed.stopped and feed.error is None


@pytest.mark.timeout(60)
def test_alpaca_disconnect_is_surfaced_and_recovers(alpaca_env):
    with serve(MESSAGES[:2]) as srv, AlpacaFeed(["AAPL", "MSFT"], url=srv.url) as feed:
        assert len(take(feed, 1)) == 1
        srv.disconnect()
        deadline = time.monotonic() + 5
        while feed.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "connection lost" in str(feed.error)
        assert feed.running  # not fatal: alpaca-py reconnects
        deadline = time.monotonic() + 15
        while not (feed.connected and srv.connections >= 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed.connected and srv.connections == 2
        assert srv.wait_subscribed(5)
        time.sleep(0.2)  # let the re-subscription land before sending
        srv.send(MESSAGES[2:])
        got = take(feed, 1, timeout=5)
    assert [b.ts for b in got[0]] == [ns(T1), ns(T1)]


@pytest.mark.timeout(60)
def test_alpaca_server_errors_surface(alpaca_env):
    limit = {"T": "error", "code": 405, "msg": "symbol limit exceeded"}
    with serve([limit, MESSAGES[0]]) as srv, AlpacaFeed(["AAPL"], url=srv.url) as feed:
        got = take(feed, 1)
        assert "405" in str(feed.error) and "symbol limit exceeded" in str(feed.error)
        assert feed.running and len(got) == 1  # transient: the feed goes on
        srv.send([{"T": "error", "code": 409, "msg": "insufficient subscription"}])
        assert drain(feed) == []  # fatal: iteration ends
        assert "insufficient subscription" in str(feed.error) and feed.stopped


def test_alpaca_constructor_validation():
    with pytest.raises(ValueError, match="single str"):
        AlpacaFeed("AAPL")
    with pytest.raises(ValueError, match="empty"):
        AlpacaFeed([])
    with pytest.raises(ValueError, match="twice"):
        AlpacaFeed(["AAPL", "AAPL"])
    with pytest.raises(ValueError, match="feed must be 'iex' or 'sip'"):
        AlpacaFeed(["AAPL"], feed="crypto")
    with pytest.raises(ValueError, match="key_env"):
        AlpacaFeed(["AAPL"], key_env=("ONLY_ONE",))
    with pytest.raises(ValueError, match="flush_after_s"):
        AlpacaFeed(["AAPL"], flush_after_s=0)
    feed = AlpacaFeed(["AAPL"], url="wss://user:pw@example.invalid/v2/iex")
    assert "pw" not in repr(feed) and "***@example.invalid" in repr(feed)
    with pytest.raises(ValueError, match="real time"):
        feed.speed = 2.0
    assert feed.speed == 1.0 and not feed.speed_adjustable


# ===================================================================== the loopback server
@pytest.mark.timeout(30)
def test_loopback_server_speaks_json_to_json_clients():
    from websockets.sync.client import connect

    with AlpacaLoopbackServer([bar_message("AAPL", T0, 1, 2, 0.5, 1.5, 10)]) as srv:
        with connect(srv.url) as ws:
            assert isinstance(first := ws.recv(), str)
            assert first == '[{"T": "success", "msg": "connected"}]'
            ws.send('{"action": "auth", "key": "test-key", "secret": "test-secret"}')
            assert "authenticated" in ws.recv()
            ws.send('{"action": "subscribe", "bars": ["AAPL"]}')
            assert '"bars": ["AAPL"]' in ws.recv()
            assert '"t": "2024-01-02T14:30:00Z"' in ws.recv()
        with connect(srv.url) as ws:
            ws.recv()
            ws.send('{"action": "auth", "key": "nope", "secret": "test-secret"}')
            assert ws.recv() == '[{"T": "error", "code": 402, "msg": "auth failed"}]'
        assert srv.encodings == ["json", "json"] and srv.auth_failures == 1
