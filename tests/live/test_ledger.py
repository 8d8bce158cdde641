"""Ledger: transactional bookkeeping on SQLite and PostgreSQL, and kill -9 / restart."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from workbench.live._broker import PaperBroker
from workbench.live._ledger import Ledger, LedgerError, position_after, resolve_url
from workbench.live._types import Bar, Fill, Order

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000 * 10**9
STEP = 60 * 10**9  # one-minute bars, ns
N_BARS = 2000
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
CASH = 1_000_000.0


# ---------------------------------------------------------------------------- helpers
def fill(order_id: str, ts: int, symbol: str, qty: float, price: float, fee: float = 0.0,
         fill_id: str | None = None) -> Fill:
    return Fill(fill_id or f"{order_id}/fill", order_id, ts, symbol, qty, price, fee)


def state(led: Ledger) -> tuple:
    """Everything a commit can change, for before/after comparisons."""
    return (led.cursor(), led.cash(), led.positions(), led.avg_prices(), led.open_orders(),
            led.orders(None).to_dict("records"), led.fills(None).to_dict("records"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def make_ledger(request, tmp_path):
    """Factory of Ledgers on one database per test (a fresh account on PostgreSQL)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    account = f"t-{uuid.uuid4().hex[:12]}"
    made: list[Ledger] = []

    def make(**kwargs) -> Ledger:
        kwargs.setdefault("account", account)
        led = Ledger(url, **kwargs)
        made.append(led)
        return led

    yield make
    for led in made:
        led.close()


# ---------------------------------------------------------------------------- contract
def test_new_ledger_is_empty(make_ledger):
    led = make_ledger(initial_cash=5_000.0)
    assert led.cursor() is None
    assert led.cash() == 5_000.0 and led.initial_cash == 5_000.0
    assert led.positions() == {} and led.open_orders() == []
    assert list(led.orders().columns) == ["order_id", "seq", "ts", "time", "symbol", "qty",
                                          "ref_price", "status", "reasons"]
    assert list(led.fills().columns) == ["fill_id", "order_id", "seq", "ts", "time", "symbol",
                                         "qty", "price", "fee"]
    assert len(led.orders()) == 0 and len(led.fills()) == 0
    assert led.equity({}) == 5_000.0


def test_round_trip_survives_reopen(make_ledger):
    led = make_ledger(initial_cash=10_000.0)
    buy = Order("1-AAA", 1, "AAA", 10.0, 100.0)
    sell = Order("1-BBB", 1, "BBB", -5.0, 50.0)
    big = Order("1-CCC", 1, "CCC", 1e6, 10.0)
    led.commit_bar(1, new_orders=[buy, sell], rejected=[(big, ["max order notional",
                                                               "max gross exposure"])])
    assert led.open_orders() == [buy, sell]
    led.commit_bar(2, fills=[fill("1-AAA", 2, "AAA", 10.0, 100.5, 0.25)])
    led.close()

    again = make_ledger(initial_cash=1.0)  # an existing account keeps its stored cash
    assert again.initial_cash == 10_000.0
    assert again.cursor() == 2
    assert again.cash() == 10_000.0 - (10.0 * 100.5 + 0.25)
    assert again.cash() == pytest.approx(8_994.75, abs=1e-9)
    assert again.positions() == {"AAA": 10.0}
    assert again.avg_prices() == {"AAA": 100.5}
    assert again.open_orders() == [sell]
    orders = again.orders()
    assert list(orders["order_id"]) == ["1-CCC", "1-BBB", "1-AAA"]  # newest first
    assert list(orders["status"]) == ["rejected", "open", "filled"]
    assert orders["reasons"].iloc[0] == "max order notional; max gross exposure"
    assert orders["reasons"].iloc[1] == ""
    assert str(orders["time"].dt.tz) == "UTC"
    fills = again.fills()
    assert fills.loc[0, ["fill_id", "order_id", "ts", "symbol", "qty", "price", "fee"]].tolist() \
        == ["1-AAA/fill", "1-AAA", 2, "AAA", 10.0, 100.5, 0.25]
    assert again.equity({"AAA": 101.0}) == again.cash() + 10.0 * 101.0


def test_orders_and_fills_newest_first_with_limit(make_ledger):
    led = make_ledger()
    for i in range(1, 6):
        led.commit_bar(i, new_orders=[Order(f"{i}-X", i, "X", 1.0, 10.0)],
                       fills=[fill(f"{i - 1}-X", i, "X", 1.0, 10.0)] if i > 1 else [])
    assert list(led.orders(limit=2)["order_id"]) == ["5-X", "4-X"]
    assert list(led.fills(limit=3)["fill_id"]) == ["4-X/fill", "3-X/fill", "2-X/fill"]
    assert list(led.fills(limit=None)["seq"]) == [4, 3, 2, 1]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            led.orders(limit=bad)


def test_average_price_bookkeeping(make_ledger):
    led = make_ledger(initial_cash=0.0)
    steps = [  # (qty, price) -> expected (position, avg price)
        (10.0, 100.0, 10.0, 100.0),   # open long
        (10.0, 110.0, 20.0, 105.0),   # add: size-weighted average
        (-5.0, 200.0, 15.0, 105.0),   # reduce: average kept
        (-20.0, 90.0, -5.0, 90.0),    # flip through zero: fill price
        (-5.0, 80.0, -10.0, 85.0),    # add short
        (10.0, 70.0, 0.0, None),      # flat: no position reported
    ]
    for i, (qty, price, pos, avg) in enumerate(steps, start=1):
        led.commit_bar(i, fills=[fill(f"{i}-Z", i, "Z", qty, price)])
        if avg is None:
            assert led.positions() == {} and led.avg_prices() == {}
        else:
            assert led.positions() == {"Z": pos}
            assert led.avg_prices() == {"Z": pytest.approx(avg, rel=1e-15)}
    # cash is the running sum of -(qty * price + fee), in fill order
    expected = 0.0
    for qty, price, _, _ in steps:
        expected = expected - (qty * price + 0.0)
    assert led.cash() == expected


def test_position_after_dust_and_zero_fill():
    assert position_after(0.1 + 0.2, 5.0, -0.3, 6.0) == (0.0, 0.0)  # 5.5e-17 is dust
    assert position_after(3.0, 7.0, 0.0, 99.0) == (3.0, 7.0)
    assert position_after(-3.0, 7.0, 0.0, 99.0) == (-3.0, 7.0)
    assert position_after(1e-6, 5.0, 1e-6, 7.0) == (2e-6, 6.0)  # small is not dust


def test_duplicate_fill_is_applied_once(make_ledger):
    led = make_ledger(initial_cash=1_000.0)
    led.commit_bar(1, new_orders=[Order("1-A", 1, "A", 2.0, 10.0)])
    f = fill("1-A", 2, "A", 2.0, 10.0, 0.5)
    led.commit_bar(2, fills=[f])
    after_first = state(led)
    led.commit_bar(2, fills=[f])  # the same bar replayed (restart)
    led.commit_bar(3, fills=[f, f])  # and once more, twice in one batch
    assert led.cash() == 1_000.0 - 20.5
    assert led.positions() == {"A": 2.0}
    assert len(led.fills(None)) == 1
    assert state(led)[1:] == after_first[1:] and led.cursor() == 3


def test_duplicate_fill_within_one_batch(make_ledger):
    led = make_ledger(initial_cash=100.0)
    f = fill("1-A", 2, "A", 1.0, 10.0)
    led.commit_bar(2, fills=[f, f, fill("1-B", 2, "B", 1.0, 5.0)])
    assert led.cash() == 100.0 - 10.0 - 5.0
    assert list(led.fills(None)["fill_id"]) == ["1-B/fill", "1-A/fill"]


def test_order_ids_are_idempotent(make_ledger):
    led = make_ledger()
    o = Order("1-A", 1, "A", 2.0, 10.0)
    led.commit_bar(1, new_orders=[o, o])
    led.commit_bar(1, new_orders=[Order("1-A", 1, "A", 99.0, 1.0)],
                   rejected=[(o, ["late"])])
    assert led.open_orders() == [o]
    assert len(led.orders(None)) == 1


def test_cursor_is_monotonic_and_bad_commit_writes_nothing(make_ledger):
    led = make_ledger(initial_cash=100.0)
    led.commit_bar(10, new_orders=[Order("10-A", 10, "A", 1.0, 5.0)])
    before = state(led)
    with pytest.raises(ValueError, match=r"ts=5 is before the ledger cursor 10"):
        led.commit_bar(5, fills=[fill("10-A", 11, "A", 1.0, 5.0)],
                       new_orders=[Order("5-B", 5, "B", 1.0, 5.0)])
    assert state(led) == before
    led.commit_bar(10)  # the same bar again is allowed
    led.commit_bar(11)
    assert led.cursor() == 11


@pytest.mark.parametrize("step", ["_set_cursor", "_apply_fills"])
def test_commit_is_atomic(make_ledger, monkeypatch, step):
    led = make_ledger(initial_cash=1_000.0)
    led.commit_bar(1, new_orders=[Order("1-A", 1, "A", 3.0, 10.0)])
    led.commit_bar(2, fills=[fill("1-A", 2, "A", 3.0, 10.0, 0.1)])
    before = state(led)
    original = getattr(Ledger, step)

    def crash(self, *args, **kwargs):
        original(self, *args, **kwargs)  # its writes happen, then the "process dies"
        raise RuntimeError("simulated crash mid-commit")

    monkeypatch.setattr(Ledger, step, crash)
    new = [Order("3-B", 3, "B", -4.0, 20.0)]
    fills = [fill("2-A", 3, "A", -1.0, 11.0, 0.1), fill("2-C", 3, "C", 7.0, 3.0, 0.1)]
    with pytest.raises(RuntimeError, match="simulated crash"):
        led.commit_bar(3, fills=fills, new_orders=new, rejected=[(Order("3-D", 3, "D", 1.0,
                                                                        1.0), ["why"])])
    assert state(led) == before
    assert state(make_ledger()) == before  # another connection sees the same
    monkeypatch.setattr(Ledger, step, original)
    led.commit_bar(3, fills=fills, new_orders=new)  # nothing was half-stored: applies fully
    assert led.positions() == {"A": 2.0, "C": 7.0}
    assert led.cash() == 1_000.0 - 30.1 - (-11.0 + 0.1) - (21.0 + 0.1)


@pytest.mark.parametrize("field, value", [("qty", math.nan), ("price", math.inf),
                                          ("fee", math.nan), ("price", -math.inf),
                                          ("price", 0.0), ("fee", -0.01)])
def test_bad_fill_values_name_field_and_id(make_ledger, field, value):
    led = make_ledger()
    led.commit_bar(1)
    before = state(led)
    good = fill("1-A", 2, "A", 1.0, 10.0)
    bad = fill("1-B", 2, "B", 1.0, 10.0, fill_id="bad-one")
    bad = dataclasses.replace(bad, **{field: value})
    with pytest.raises(ValueError, match=rf"fill 'bad-one'.*{field}"):
        led.commit_bar(2, fills=[good, bad])
    assert state(led) == before


def test_bad_commit_arguments(make_ledger):
    led = make_ledger()
    with pytest.raises(ValueError, match="ts must be an int"):
        led.commit_bar(1.5)
    with pytest.raises(TypeError, match="Fill"):
        led.commit_bar(1, fills=[("x",)])
    with pytest.raises(ValueError, match="new_orders order '1-A'.*qty"):
        led.commit_bar(1, new_orders=[Order("1-A", 1, "A", math.nan, 1.0)])
    with pytest.raises(ValueError, match="reasons"):
        led.commit_bar(1, rejected=[(Order("1-A", 1, "A", 1.0, 1.0), [1, 2])])
    with pytest.raises(ValueError, match="pairs"):
        led.commit_bar(1, rejected=[Order("1-A", 1, "A", 1.0, 1.0)])
    assert led.cursor() is None
    led.commit_bar(1, rejected=[(Order("1-A", 1, "A", 1.0, 1.0), "one reason")])
    assert led.orders()["reasons"].tolist() == ["one reason"]


def test_equity_and_errors(make_ledger):
    led = make_ledger(initial_cash=1_000.0)
    led.commit_bar(1, fills=[fill("0-A", 1, "A", 2.0, 10.0), fill("0-B", 1, "B", -3.0, 20.0)])
    assert led.equity({"A": 11.0, "B": 19.0, "Z": 1.0}) == 1_040.0 + 22.0 - 57.0
    with pytest.raises(ValueError, match="no price for held symbol 'B'"):
        led.equity({"A": 11.0})
    with pytest.raises(ValueError, match=r"prices\['A'\]"):
        led.equity({"A": math.nan, "B": 1.0})


def test_reset_and_accounts_are_isolated(make_ledger):
    one = make_ledger(initial_cash=100.0)
    two = make_ledger(initial_cash=200.0, account=f"other-{uuid.uuid4().hex[:8]}")
    same = Order("1-A", 1, "A", 1.0, 10.0)  # same id in both accounts
    for led in (one, two):
        led.commit_bar(1, new_orders=[same])
        led.commit_bar(2, fills=[fill("1-A", 2, "A", 1.0, 10.0)])
    assert (one.cash(), two.cash()) == (90.0, 190.0)
    assert len(one.fills(None)) == len(two.fills(None)) == 1
    one.reset()
    assert (one.cursor(), one.cash(), one.positions(), len(one.orders(None))) == (None, 100.0,
                                                                                  {}, 0)
    assert (two.cursor(), two.cash(), two.positions()) == (2, 190.0, {"A": 1.0})
    one.commit_bar(3, fills=[fill("1-A", 3, "A", 1.0, 10.0)])  # fill id free again
    assert one.cash() == 90.0


def test_constructor_validation():
    for cash in (math.nan, -1.0, "1"):
        with pytest.raises(ValueError, match="initial_cash"):
            Ledger("sqlite:///:memory:", initial_cash=cash)
    for account in ("", "  ", None):
        with pytest.raises(ValueError, match="account"):
            Ledger("sqlite:///:memory:", account=account)


# ---------------------------------------------------------------------------- URLs, SQLite
def test_bad_urls_are_clear_and_masked(tmp_path):
    with pytest.raises(LedgerError, match=r"unsupported database 'mysql://u:\*\*\*@h/db'") as e:
        Ledger("mysql://u:secret@h/db")
    assert "secret" not in str(e.value)
    with pytest.raises(LedgerError, match="not a database URL") as e:
        Ledger("u:secret@host/db")
    assert "secret" not in str(e.value)
    with pytest.raises(LedgerError, match="cannot parse") as e:
        Ledger("postgresql://u:secret@h:notaport/db")
    assert "secret" not in str(e.value)
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger(f"sqlite:///{tmp_path / 'missing' / 'l.db'}")
    with pytest.raises(LedgerError, match="url must be"):
        Ledger(42)


@pytest.mark.slow
def test_unreachable_postgres_masks_password():
    with pytest.raises(LedgerError, match=r"cannot open 'postgresql\+psycopg2://u:\*\*\*@"
                                          r"127.0.0.1:1/db'") as e:
        Ledger("postgres://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(e.value) and "secret" not in repr(e.value.__cause__)


def test_bare_postgresql_url_names_the_installed_driver():
    url = resolve_url("postgresql://u:p@h:5432/db")
    if importlib.util.find_spec("psycopg") is None:
        assert url == "postgresql+psycopg2://u:p@h:5432/db"
    assert resolve_url("postgres://u@h/db").startswith("postgresql")
    assert resolve_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


def test_paths_and_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    with Ledger() as led:
        assert led.url == f"sqlite:///{tmp_path / 'data' / 'live' / 'ledger.db'}"
        led.commit_bar(1)
    assert (tmp_path / "data" / "live" / "ledger.db").is_file()
    with Ledger(tmp_path / "p.db") as led:
        assert led.dialect == "sqlite" and led.cursor() is None
    with Ledger(str(tmp_path / "s.sqlite")) as led:
        assert led.url.endswith("s.sqlite")


@pytest.mark.parametrize("durable, level", [(False, 1), (True, 2)])  # NORMAL, FULL
def test_sqlite_runs_wal_with_the_chosen_durability(tmp_path, durable, level):
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}", durable=durable) as led, \
            led._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def _sizes(path):
    wal = Path(f"{path}-wal")
    return path.stat().st_size, (wal.stat().st_size if wal.exists() else 0)


def test_wal_is_checkpointed_in_the_background_not_in_commits(tmp_path):
    path = tmp_path / "l.db"
    with Ledger(f"sqlite:///{path}", checkpoint_interval=3600.0) as led:  # no timed run
        with led._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        ck = led._checkpointer
        assert ck is not None and ck.is_alive() and ck.runs == 0
        for k in range(1, 401):  # ~2,900 WAL pages
            led.commit_bar(T0 + k * STEP, new_orders=[
                Order(f"{k}-{s}", T0 + k * STEP, s, 1.0, 10.0) for s in SYMBOLS])
        db_before, wal = _sizes(path)
        assert wal > 2 * 1000 * 4096  # no commit checkpointed (SQLite would at 1000 pages)
        ck.checkpoint()
        assert ck.runs == 1
        db_after, _ = _sizes(path)
        assert db_after > 10 * db_before  # the orders now live in the database file
        assert len(led.orders(limit=None)) == 400 * len(SYMBOLS)
    assert not ck.is_alive()  # close() stopped it


def test_a_writer_that_never_pauses_still_gets_its_wal_rewound(tmp_path, monkeypatch):
    import workbench.live._ledger as ledger_module

    monkeypatch.setattr(ledger_module, "_WAL_LIMIT_PAGES", 200)
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}", checkpoint_interval=3600.0) as led:
        ck = led._checkpointer

        def bar(k):
            led.commit_bar(T0 + k * STEP, new_orders=[
                Order(f"{k}-{s}", T0 + k * STEP, s, 1.0, 10.0) for s in SYMBOLS])

        def wal_frames():
            with led._engine.connect() as conn:  # (a checkpoint of nothing new: a probe)
                return conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1]

        for k in range(1, 101):
            bar(k)
        ck.checkpoint()  # as the thread would, while the writer keeps going
        assert ck.behind.is_set() and ck.runs == 1
        bar(101)  # checkpoints in line, then the next commit rewinds the WAL
        assert not ck.behind.is_set() and ck.runs == 2
        bar(102)
        assert wal_frames() < 50
        assert len(led.orders(limit=None)) == 102 * len(SYMBOLS)


def test_checkpoint_thread_runs_every_interval(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}", checkpoint_interval=0.02)
    try:
        led.commit_bar(T0)
        deadline = time.monotonic() + 10
        while led._checkpointer.runs < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert led._checkpointer.runs >= 3
    finally:
        led.close()


def test_checkpoint_interval_none_keeps_sqlites_automatic_checkpoint(tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}", checkpoint_interval=None) as led, \
            led._engine.connect() as conn:
        assert led._checkpointer is None
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    with Ledger("sqlite:///:memory:") as led:
        assert led._checkpointer is None  # nothing to checkpoint


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "1", True])
def test_bad_checkpoint_interval_is_named(tmp_path, bad):
    with pytest.raises(ValueError, match="checkpoint_interval must be None or a finite number"):
        Ledger(f"sqlite:///{tmp_path / 'l.db'}", checkpoint_interval=bad)
    assert not (tmp_path / "l.db").exists()  # refused before anything was created


def test_foreign_table_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, price REAL)")
    with pytest.raises(LedgerError, match="table 'orders'.*lacks column"):
        Ledger(f"sqlite:///{path}")


def test_reader_does_not_break_writer(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    writer, reader = Ledger(url), Ledger(url)
    errors: list[BaseException] = []

    def write():
        try:
            for i in range(1, 151):
                writer.commit_bar(i, new_orders=[Order(f"{i}-A", i, "A", 1.0, 10.0)],
                                  fills=[fill(f"{i - 1}-A", i, "A", 1.0, 10.0)] if i > 1 else [])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    seen = []
    while thread.is_alive():
        cursor = reader.cursor()
        seen.append(cursor or 0)
        reader.positions(), reader.open_orders(), reader.fills(20)
    thread.join()
    assert not errors
    assert seen == sorted(seen)  # a reader sees committed bars only, in order
    assert reader.cursor() == 150 and reader.positions() == {"A": 149.0}
    writer.close()
    reader.close()


# ---------------------------------------------------------------------------- kill -9
def ts_of(i: int) -> int:
    return T0 + i * STEP


def synth_bars(i: int) -> list[Bar]:
    """Deterministic bars of every symbol at bar ``i`` (prices not round: float arithmetic)."""
    bars = []
    for k, symbol in enumerate(SYMBOLS):
        open_ = (40.0 + 15.0 * k) * (1.0 + 0.2 * math.sin(0.013 * i + k))
        close = open_ * (1.0 + 0.003 * math.cos(0.7 * i + 2 * k))
        bars.append(Bar(symbol, ts_of(i), open_, max(open_, close) * 1.001,
                        min(open_, close) * 0.999, close, 1_000.0 + i))
    return bars


def decide(i: int, bars: list[Bar]) -> tuple[list[Order], list[tuple[Order, list[str]]]]:
    """Deterministic decisions at bar ``i``: 3-5 orders (a burst of fills next bar)."""
    rng = random.Random(i)
    closes = {b.symbol: b.close for b in bars}
    new, rejected = [], []
    for symbol in rng.sample(SYMBOLS, rng.randint(3, 5)):
        qty = float(rng.choice((-1, 1)) * rng.randint(1, 40))
        order = Order(f"{ts_of(i)}-{symbol}", ts_of(i), symbol, qty, closes[symbol])
        if rng.random() < 0.05:
            rejected.append((order, ["max order notional"]))
        else:
            new.append(order)
    return new, rejected


def drive(led: Ledger, broker: PaperBroker, start: int, stop: int, echo: bool = False,
          after_bar=None) -> None:
    """The engine's loop: fills at this bar, decide, commit, then send the orders."""
    for i in range(start, stop):
        bars = synth_bars(i)
        fills = broker.on_bars(bars)
        new, rejected = decide(i, bars)
        led.commit_bar(ts_of(i), fills=fills, new_orders=new, rejected=rejected)
        broker.submit(new)
        if echo:
            print(ts_of(i), flush=True)
        if after_bar is not None:
            after_bar(i)


def resume(url: str, account: str, echo: bool = False) -> None:
    """Open the ledger, restore the broker from it, run from the bar after the cursor."""
    led = Ledger(url, initial_cash=CASH, account=account)
    try:
        cursor = led.cursor()
        start = 0 if cursor is None else (cursor - T0) // STEP + 1
        broker = PaperBroker(cost_bps=1.0, slippage_bps=2.0)
        broker.restore(led.open_orders())
        drive(led, broker, start, N_BARS, echo=echo)
    finally:
        led.close()


CHILD = "import sys; from tests.live.test_ledger import resume; " \
        "resume(sys.argv[1], sys.argv[2], echo=True)"


@pytest.fixture(scope="module")
def reference():
    """An uninterrupted run (in memory): state after every bar, and the final ledger."""
    led = Ledger("sqlite:///:memory:", initial_cash=CASH, account="reference")
    snapshots = {}

    def snap(i):
        snapshots[ts_of(i)] = (led.cash(), led.positions(),
                               [o.order_id for o in led.open_orders()])

    drive(led, PaperBroker(cost_bps=1.0, slippage_bps=2.0), 0, N_BARS, after_bar=snap)
    final_prices = {b.symbol: b.close for b in synth_bars(N_BARS - 1)}
    yield {"snapshots": snapshots, "ledger": led, "prices": final_prices,
           "fills": led.fills(None).drop(columns="time"),
           "orders": led.orders(None).drop(columns="time")}
    led.close()


def recompute(led: Ledger) -> tuple[float, dict[str, float]]:
    """Cash and positions from the fills table alone, in application order."""
    fills = led.fills(None).sort_values("seq")
    assert fills["seq"].tolist() == list(range(1, len(fills) + 1))  # no gap, no repeat
    cash, positions = CASH, {}
    for symbol, qty, price, fee in zip(fills["symbol"], fills["qty"], fills["price"],
                                       fills["fee"]):
        cash = cash - (float(qty) * float(price) + float(fee))
        positions[symbol] = positions.get(symbol, 0.0) + float(qty)
    return cash, {s: q for s, q in sorted(positions.items()) if q != 0}


def kill_and_resume(url: str, account: str, target: int, reference: dict) -> int:
    """SIGKILL a child engine once it passed bar ``target`` (+ a random delay); check; resume."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url, account], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reached = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= target:
                reached.set()
        reached.set()  # EOF: the child ended (or failed) on its own

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not reached.wait(timeout=120) or proc.poll() is not None:
        proc.kill()
        pytest.fail(f"child did not reach bar {target}: rc={proc.poll()} "
                    f"stderr={proc.stderr.read()[-2000:]}")
    # a random delay of up to ~2 bars, so the kill lands anywhere in a commit
    time.sleep(random.Random(target).uniform(0.0, 0.005))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    printed = [int(text) for text in lines if text.endswith("\n")]
    last = printed[-1]
    assert last < ts_of(N_BARS - 1), "the child finished before it was killed"

    led = Ledger(url, initial_cash=CASH, account=account)
    try:
        cursor = led.cursor()
        # the last fully committed bar: printed, or committed just before the kill
        assert last <= cursor <= last + STEP
        cash, positions = led.cash(), led.positions()
        assert (cash, positions) == recompute(led)
        ref_cash, ref_positions, ref_open = reference["snapshots"][cursor]
        assert cash == ref_cash and positions == ref_positions
        assert [o.order_id for o in led.open_orders()] == ref_open
        filled = led.orders(None).query("status == 'filled'")["order_id"]
        assert sorted(filled) == sorted(led.fills(None)["order_id"])  # each filled once
    finally:
        led.close()

    resume(url, account)  # the restarted engine runs to the end
    with Ledger(url, account=account) as led:
        ref = reference["ledger"]
        assert led.cursor() == ts_of(N_BARS - 1)
        assert led.cash() == ref.cash() and led.positions() == ref.positions()
        assert led.avg_prices() == ref.avg_prices()
        assert led.equity(reference["prices"]) == ref.equity(reference["prices"])
        assert led.open_orders() == ref.open_orders()
        fills = led.fills(None).drop(columns="time")
        assert fills.to_dict("records") == reference["fills"].to_dict("records")
        orders = led.orders(None).drop(columns="time")
        assert orders.to_dict("records") == reference["orders"].to_dict("records")
    return cursor


def test_reference_run_is_busy(reference):
    fills = reference["fills"]
    per_bar = fills.groupby("ts").size()
    assert len(per_bar) == N_BARS - 1 and per_bar.mean() >= 3 and per_bar.max() >= 5
    assert (reference["orders"]["status"] == "rejected").sum() > 10
    assert len(reference["ledger"].positions()) >= 3


@pytest.mark.parametrize("target", [150, 900, 1600])
def test_kill_and_restart_sqlite(tmp_path, reference, target):
    cursor = kill_and_resume(f"sqlite:///{tmp_path / 'ledger.db'}", "paper", target, reference)
    assert cursor >= ts_of(target - 1)


@pytest.mark.slow
def test_kill_and_restart_postgresql(postgres_url, reference):
    kill_and_resume(postgres_url, f"kill-{uuid.uuid4().hex[:8]}", 700, reference)


def test_commit_with_unexpected_cash_writes_nothing(make_ledger):
    led = make_ledger(initial_cash=100.0)
    led.commit_bar(1, new_orders=[Order("1-A", 1, "A", 1.0, 10.0)], expect_cash=100.0)
    other = make_ledger()  # another writer on the same account
    other.commit_bar(2, fills=[fill("1-A", 2, "A", 1.0, 10.0)], expect_cash=100.0)
    before = state(led)
    with pytest.raises(LedgerError, match=r"holds cash 90\.0, but this writer expected "
                                          r"100\.0: another writer"):
        led.commit_bar(3, fills=[fill("2-A", 3, "A", 1.0, 10.0)], expect_cash=100.0)
    assert state(led) == before
    led.commit_bar(3, expect_cash=90.0)
    assert led.cursor() == 3


def test_commit_after_another_writers_order_only_bar_writes_nothing(make_ledger):
    # the second writer has placed an order but nothing has filled: cash is unchanged,
    # so only the cursor tells that another writer committed
    led = make_ledger(initial_cash=100.0)
    led.commit_bar(1, new_orders=[Order("1-A", 1, "A", 1.0, 10.0)], expect_cash=100.0,
                   expect_cursor=None)
    other = make_ledger()
    other.commit_bar(2, new_orders=[Order("2-A", 2, "A", 1.0, 10.0)], expect_cash=100.0,
                     expect_cursor=1)
    before = state(led)
    with pytest.raises(LedgerError, match=r"has cursor 2, but this writer last committed or "
                                          r"read 1: another writer"):
        led.commit_bar(3, new_orders=[Order("3-A", 3, "A", 1.0, 10.0)], expect_cash=100.0,
                       expect_cursor=1)
    assert state(led) == before
    assert "3-A" not in set(led.orders()["order_id"])
    led.commit_bar(3, expect_cash=100.0, expect_cursor=2)
    assert led.cursor() == 3
