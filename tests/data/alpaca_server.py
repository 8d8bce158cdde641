"""A loopback websocket server that speaks Alpaca's market-data stream protocol, for tests.

It implements the server side of the exchange that alpaca-py's ``DataStream`` performs
(``alpaca/data/live/websocket.py``):

1. on connect, send ``[{"T": "success", "msg": "connected"}]``;
2. read ``{"action": "auth", "key": ..., "secret": ...}``; reply
   ``[{"T": "success", "msg": "authenticated"}]``, or Alpaca's errors: 402 ``auth failed``
   (wrong key/secret, then the connection is closed), 401 ``not authenticated`` (another action
   first), 404 ``auth timeout``;
3. acknowledge each ``subscribe``/``unsubscribe`` with a ``{"T": "subscription", "trades": [...],
   "quotes": [...], "bars": [...], ...}`` message listing the current subscriptions;
4. after the first subscription, send the given messages, ``per_frame`` per frame, every
   ``interval_s`` seconds; :meth:`AlpacaLoopbackServer.send` pushes more at any time.

Frames are msgpack (binary) or JSON (text). alpaca-py asks for msgpack through the handshake
header ``Content-Type: application/msgpack`` and decodes every frame with ``msgpack.unpackb``;
with ``encoding="auto"`` the server answers in msgpack exactly when the client asks for it, as
Alpaca does. In msgpack frames, RFC-3339 ``"t"`` strings are sent as msgpack Timestamps (ext
type -1), as Alpaca does; strings that do not parse are sent unchanged, so tests can send
malformed timestamps.

The server logs nothing below WARNING (its frames carry the client's credentials).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

import msgpack
import pandas as pd

__all__ = ["AlpacaLoopbackServer", "bar_message"]

_QUIET = logging.getLogger("tests.alpaca_loopback")
_QUIET.setLevel(logging.WARNING)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_CHANNELS = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)


def bar_message(symbol: str, t: str, o: float, h: float, lo: float, c: float, v: float) -> dict:
    """An Alpaca v2 stream bar message (``T="b"``) with trade count and VWAP filled in."""
    return {
        "T": "b",
        "S": symbol,
        "o": o,
        "h": h,
        "l": lo,
        "c": c,
        "v": v,
        "t": t,
        "n": 10,
        "vw": (h + lo + c) / 3,
    }


def _to_native_ts(msg: Any) -> Any:
    if isinstance(msg, dict) and isinstance(msg.get("t"), str) and _RFC3339.match(msg["t"]):
        try:
            ns = pd.Timestamp(msg["t"]).as_unit("ns").value
        except ValueError:
            return msg
        return {**msg, "t": msgpack.Timestamp.from_unix_nano(int(ns))}
    return msg


def _json_default(x: Any) -> Any:
    if isinstance(x, msgpack.Timestamp):
        return pd.Timestamp(x.to_unix_nano(), tz="UTC").isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


class AlpacaLoopbackServer:
    """Alpaca market-data stream stand-in on 127.0.0.1, run in a thread (a context manager).

    Parameters
    ----------
    bars : list of dict
        Messages sent after the first subscription (bar messages, or anything else a test
        wants to send, e.g. malformed bars or ``{"T": "error", ...}``), in order.
    key, secret : str
        Credentials the client must authenticate with.
    port : int, default 0
        TCP port (0: any free port; see :attr:`url`).
    encoding : {"auto", "msgpack", "json"}
        Frame encoding: "auto" follows the client's ``Content-Type`` header.
    per_frame : int, default 1
        Messages per frame (Alpaca batches several into one array).
    interval_s : float, default 0.0
        Pause between frames of the initial messages.
    native_timestamps : bool, default True
        In msgpack frames, send parseable RFC-3339 ``"t"`` strings as msgpack Timestamps.
    auth_timeout_s : float, default 10.0
        Seconds to wait for the auth message before replying 404 ``auth timeout``.

    Attributes
    ----------
    connections : int
        Connections accepted so far.
    auth_failures : int
        Auth attempts refused with 402.
    subscriptions : dict of str to list of str
        Current subscriptions of the latest authenticated connection, per channel.
    encodings : list of str
        Encoding chosen for each connection ("msgpack" or "json").
    received : list of dict
        Client messages decoded, with ``key``/``secret`` replaced by ``"***"``.
    """

    def __init__(
        self,
        bars: list[dict] | None = None,
        *,
        key: str = "test-key",
        secret: str = "test-secret",
        port: int = 0,
        encoding: str = "auto",
        per_frame: int = 1,
        interval_s: float = 0.0,
        native_timestamps: bool = True,
        auth_timeout_s: float = 10.0,
        host: str = "127.0.0.1",
    ) -> None:
        if encoding not in ("auto", "msgpack", "json"):
            raise ValueError(f"encoding must be 'auto', 'msgpack' or 'json', got {encoding!r}")
        if per_frame < 1:
            raise ValueError(f"per_frame must be >= 1, got {per_frame}")
        self._initial = list(bars or [])
        self._key, self._secret = key, secret
        self._host, self._port = host, port
        self._encoding = encoding
        self._per_frame = per_frame
        self._interval_s = interval_s
        self._native_ts = native_timestamps
        self._auth_timeout_s = auth_timeout_s
        self.connections = 0
        self.auth_failures = 0
        self.subscriptions: dict[str, list[str]] = {c: [] for c in _CHANNELS}
        self.encodings: list[str] = []
        self.received: list[dict] = []
        self._clients: set[Any] = set()  # subscribed connections -> encoding
        self._client_enc: dict[Any, str] = {}
        self._initial_sent = False
        self._subscribed = threading.Event()
        self._all_sent = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._startup_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/v2/iex`` (valid once started)."""
        return f"ws://{self._host}:{self._port}/v2/iex"

    def start(self) -> AlpacaLoopbackServer:
        """Start serving in a daemon thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._run, name="AlpacaLoopback", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("AlpacaLoopbackServer did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError(f"AlpacaLoopbackServer failed: {self._startup_error}")
        return self

    def stop(self) -> None:
        """Close all connections and stop the server thread."""
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> AlpacaLoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        """Wait until a client has subscribed; False on timeout."""
        return self._subscribed.wait(timeout)

    def wait_sent(self, timeout: float = 10.0) -> bool:
        """Wait until the initial messages have all been sent; False on timeout."""
        return self._all_sent.wait(timeout)

    def send(self, messages: Iterable[dict], per_frame: int | None = None) -> None:
        """Send ``messages`` to every subscribed client now (thread-safe; blocks until sent)."""
        msgs = list(messages)
        fut = asyncio.run_coroutine_threadsafe(
            self._broadcast(msgs, per_frame or self._per_frame), self._loop
        )
        fut.result(10)

    def disconnect(self) -> None:
        """Close every client connection (the server keeps listening): a network drop."""

        async def _close_all():
            for ws in list(self._client_enc):
                await ws.close(code=1011, reason="loopback disconnect")

        asyncio.run_coroutine_threadsafe(_close_all(), self._loop).result(10)

    # ------------------------------------------------------------------ server
    def _run(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._startup_error = exc
            self._ready.set()

    async def _amain(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handle, self._host, self._port, logger=_QUIET) as server:
            self._port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def _encode(self, msgs: list, enc: str) -> bytes | str:
        if enc == "msgpack":
            if self._native_ts:
                msgs = [_to_native_ts(m) for m in msgs]
            return msgpack.packb(msgs)
        return json.dumps(msgs, default=_json_default)

    @staticmethod
    def _decode(raw: bytes | str) -> Any:
        return msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)

    async def _reply(self, ws, msgs: list) -> None:
        await ws.send(self._encode(msgs, self._client_enc[ws]))

    def _record(self, msg: Any) -> None:
        if isinstance(msg, dict):
            msg = {k: ("***" if k in ("key", "secret") else v) for k, v in msg.items()}
        self.received.append(msg)

    async def _handle(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        self.connections += 1
        if self._encoding == "auto":
            ctype = ws.request.headers.get("Content-Type", "")
            enc = "msgpack" if "msgpack" in ctype else "json"
        else:
            enc = self._encoding
        self.encodings.append(enc)
        self._client_enc[ws] = enc
        try:
            await self._reply(ws, [{"T": "success", "msg": "connected"}])
            try:
                raw = await asyncio.wait_for(ws.recv(), self._auth_timeout_s)
            except asyncio.TimeoutError:
                await self._reply(ws, [{"T": "error", "code": 404, "msg": "auth timeout"}])
                return
            try:
                msg = self._decode(raw)
            except Exception:  # noqa: BLE001
                await self._reply(ws, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
                return
            self._record(msg)
            if not isinstance(msg, dict) or msg.get("action") != "auth":
                await self._reply(ws, [{"T": "error", "code": 401, "msg": "not authenticated"}])
                return
            if msg.get("key") != self._key or msg.get("secret") != self._secret:
                self.auth_failures += 1
                await self._reply(ws, [{"T": "error", "code": 402, "msg": "auth failed"}])
                return
            await self._reply(ws, [{"T": "success", "msg": "authenticated"}])
            subs: dict[str, list[str]] = {c: [] for c in _CHANNELS}
            async for raw in ws:
                try:
                    msg = self._decode(raw)
                except Exception:  # noqa: BLE001
                    await self._reply(ws, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
                    continue
                self._record(msg)
                action = msg.get("action") if isinstance(msg, dict) else None
                if action in ("subscribe", "unsubscribe"):
                    for c in _CHANNELS:
                        for s in msg.get(c, []) or []:
                            if action == "subscribe" and s not in subs[c]:
                                subs[c].append(s)
                            elif action == "unsubscribe" and s in subs[c]:
                                subs[c].remove(s)
                    self.subscriptions = {c: list(v) for c, v in subs.items()}
                    await self._reply(ws, [{"T": "subscription", **subs}])
                    if action == "subscribe":
                        self._clients.add(ws)
                        self._subscribed.set()
                        if not self._initial_sent:
                            self._initial_sent = True
                            asyncio.ensure_future(self._send_initial(ws))
                elif action == "auth":
                    await self._reply(
                        ws, [{"T": "error", "code": 403, "msg": "already authenticated"}]
                    )
                else:
                    await self._reply(ws, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(ws)
            self._client_enc.pop(ws, None)

    async def _send_initial(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        msgs, n = self._initial, self._per_frame
        try:
            for i in range(0, len(msgs), n):
                if i and self._interval_s:
                    await asyncio.sleep(self._interval_s)
                await self._reply(ws, msgs[i : i + n])
        except (ConnectionClosed, KeyError):
            return
        self._all_sent.set()

    async def _broadcast(self, msgs: list, n: int) -> None:
        for ws in list(self._clients):
            for i in range(0, len(msgs), n):
                await self._reply(ws, msgs[i : i + n])
