"""Inference engine: static buffers, CUDA graphs, member health and latency for live serving.

:class:`InferenceEngine` serves a fitted :class:`~workbench.models.Ensemble` on batches of
feature sequences ``(B, L, F)``, returning the combined last-step positions ``(B,)``
(DESIGN.md section 4, "Inference engine"). Inputs are copied into preallocated buffers
(one per configured batch size); on CUDA one CUDA graph per batch size replays every
torch member at once; on CPU each member's last-step path runs eagerly under
``torch.inference_mode`` (optionally compiled with ``torch.compile``, optionally with the
members spread over threads). A member that raises or emits NaN/inf is excluded for a
number of calls and the ensemble weights renormalise over the rest; when every member
fails the engine serves flat positions and reports an error state.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.models._sequence import _is_int, check_param, last_step, resolve_device

__all__ = ["InferenceEngine", "PRECISIONS"]

_LOG = logging.getLogger("workbench.models.engine")

#: Accepted ``precision`` values (the low-precision ones on CUDA only).
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

#: Largest allowed max abs difference between a low-precision graph and fp32 eager.
PRECISION_TOLERANCE = 0.05

#: Warm-up runs per batch size before timing (CPU lanes) or capture (CUDA graphs).
_WARMUP = 3

#: Timed runs per thread count when ``threads="auto"`` picks a count per member.
_TUNE_ROUNDS = 5

#: ``threads="auto"`` uses several threads for a member only when that is this much faster.
_TUNE_MARGIN = 0.25

#: Keys of :meth:`InferenceEngine.health` besides the member names.
_HEALTH_KEYS = ("state", "calls")


@dataclass
class _Member:
    """One ensemble member as the engine serves it."""

    name: str
    index: int  # row in Ensemble.combine's input
    model: Any
    context: int  # steps of history it reads
    network: torch.nn.Module | None  # torch members only (device copy on CUDA)
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None  # (b, ctx, F) -> (b,)
    eager_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    failures: int = 0
    excluded_until: int | None = None  # last call it sits out
    last_error: str | None = None

    @property
    def is_torch(self) -> bool:
        return self.network is not None


@dataclass
class _Slot:
    """Static buffers (and on CUDA the graph) of one batch size."""

    size: int  # rows of the buffers (>= the batch size it serves)
    host: torch.Tensor  # (size, C, F) float32, pinned on CUDA
    host_np: np.ndarray  # numpy view of ``host``
    inputs: dict[int, torch.Tensor]  # context -> (size, context, F) on the device
    out: torch.Tensor  # (M_torch, size) float32 on the device
    out_host: torch.Tensor  # (M_torch, size) float32 host (pinned on CUDA)
    lanes: list[list[int]] = field(default_factory=list)  # CPU: member indices per lane
    # CPU parallel_rows: the member orders of even and odd parts (costliest, cheapest first)
    row_orders: list[list[int]] = field(default_factory=list)
    member_threads: dict[int, int] = field(default_factory=dict)  # CPU "auto": per member
    graph: Any = None  # torch.cuda.CUDAGraph
    graph_members: tuple[int, ...] = ()  # member indices captured in ``graph``


class _Lane(threading.Thread):
    """A worker thread with one intra-op torch thread, running members on request."""

    def __init__(self, ready: threading.Event):
        super().__init__(daemon=True, name="workbench-engine-lane")
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = ready

    def run(self) -> None:  # noqa: D102
        torch.get_num_threads()  # initialise this thread's pool from the global setting ...
        torch.set_num_threads(1)  # ... then keep one intra-op thread here
        self._ready.set()
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                with torch.inference_mode():
                    self.results.put(job())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                self.results.put(exc)


def _stop_lanes(lanes: list[_Lane]) -> None:
    for lane in lanes:
        lane.jobs.put(None)


def _collect(lanes: Sequence[_Lane]) -> list[Any]:
    """The result of each lane's pending job, in lane order.

    Every lane is read before an exception a job raised is re-raised, so no result is
    left queued for the next call.
    """
    results = [lane.results.get() for lane in lanes]
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def _compiled_last_step(net: torch.nn.Module, options: dict[str, Any] | None = None,
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` of a network's last-step path.

    The bound ``forward_last`` has its own code object per class, so members of different
    classes do not share (and evict) one dynamo cache entry.
    """
    fl = getattr(net, "forward_last", None)
    if fl is not None:
        return torch.compile(fl, dynamic=True, options=options)
    full = torch.compile(net, dynamic=True, options=options)
    return lambda x: full(x)[:, -1]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class InferenceEngine:
    """Low-latency serving of a fitted ensemble: ``(B, L, F)`` sequences -> ``(B,)`` positions.

    Each call copies the last ``context_length`` steps of ``x`` into the static buffer of
    the smallest configured batch size >= B (batches larger than the largest size are
    split into chunks), reads non-finite values as 0 (as the training windows do), runs
    every active member's last-step path (:func:`~workbench.models.last_step`, which uses
    a network's ``forward_last``) and combines the member positions with
    :meth:`Ensemble.combine`, the weights renormalised over the members that served.

    Execution:

    - CPU, ``compile=False`` (default): eager ``torch.inference_mode`` in the calling
      thread, rows exactly as given (no padding). Bit-for-bit equal to
      :meth:`Ensemble.predict_sequences` (float32 members, float64 combination) on the
      same rows with the same torch thread count (CPU kernels round differently for
      other batch sizes and thread counts, ~1e-8: a batch above the largest buffer
      equals eager on the same chunks).
    - CPU, ``threads``: intra-op torch threads during a call (the caller's count is
      restored after). ``"auto"`` picks, per batch size and torch member, one thread or
      the caller's count from timed runs at construction (the caller's count when at
      least 25% faster): small recurrent steps (oneDNN LSTM) lose to thread
      synchronisation and stall when another process holds a core, wide position-wise
      blocks (the transformer's variable selection at batch 64) gain.
    - CPU, ``parallel_members=k > 1``: the members run concurrently on ``k`` threads,
      the calling thread and ``k - 1`` worker threads, with one intra-op torch thread
      each (torch ops release the GIL), assigned to the threads by
      longest-processing-time from warm-up timings per batch size (the calling thread
      takes the first, costliest group). Bit-for-bit equal to eager with
      ``torch.set_num_threads(1)``. Helps only when no member dominates the cost.
    - CPU, ``parallel_rows=k > 1``: the rows of a call are cut into ``k`` contiguous
      parts (when each gets at least 2 rows; else the call runs serially) and every
      member serves each part, part 0 in the calling thread and the others on ``k - 1``
      worker threads, one intra-op torch thread each. The work divides evenly whatever
      the members' costs; GIL-holding Python between torch ops is what it does not
      parallelise, so even parts take the members costliest first and odd parts
      cheapest first (from warm-up timings), and the threads are seldom in the same
      member at once; with ``compile=True`` the graphs get C++ wrappers
      (``cpp_wrapper``: they run without the GIL). Bit-for-bit equal to eager with one
      thread on the same parts.
    - CPU, ``compile=True``: each torch member's last-step function goes through
      ``torch.compile`` (inductor; dynamic batch dimension, single-row batches served on
      two rows), compiled at construction for every batch size (tens of seconds for a
      transformer); falls back to eager with a logged warning when the compiler is
      unavailable. Not bit-exact (fused kernels reorder float operations, ~1e-7).
    - CUDA: per batch size, warm-up on a side stream, then one CUDA graph
      (``torch.cuda.CUDAGraph``) captures all torch members, each on its own stream
      inside the capture (joined back); a call copies into a pinned host buffer, copies
      to the device, replays and copies the positions back. Non-torch members (boosted
      trees) run on the host while the graph replays. ``precision="bfloat16"`` or
      ``"float16"`` runs the members under autocast inside the capture; at construction
      the low-precision graph is compared with fp32 eager on a seeded N(0, 1) probe and
      the engine refuses to start when the max abs difference exceeds 0.05. A failure in
      a replay falls back to eager for that call.

    Health: a member that raises or returns a non-finite position for any row is
    excluded for the next ``exclude_calls`` calls (then retried), counted and logged
    (``logging.getLogger("workbench.models.engine")``, warning). A member failing on
    one chunk of a call is dropped for the whole call. When no member serves a call,
    the positions are zeros (flat) and :meth:`health` reports ``"error"`` until a later
    call succeeds.

    Parameters
    ----------
    ensemble : Ensemble
        Fitted ensemble (``names``, ``members``, ``weights_``, ``context_length``,
        ``n_features_in_``, ``combine``). Torch members expose ``network_`` (CPU, eval
        mode); other members ``predict_sequences(x) -> (B,)``. On CPU the members'
        networks are served as they are (not copied; with ``fused_attention``, copies
        of the networks it applies to); on CUDA device copies are made at construction.
    batch_sizes : sequence of int, default (1, 64, 512)
        Buffer (and CUDA graph) batch sizes; each >= 1.
    device : {"auto", "cpu", "cuda"}, default "auto"
        CUDA when present under "auto".
    compile : bool, default False
        Compile the torch members with ``torch.compile`` (see above).
    precision : {"float32", "bfloat16", "float16"}, default "float32"
        Compute precision of the torch members; the low-precision ones need CUDA.
    exclude_calls : int, default 100
        Calls a failed member sits out before it is retried (>= 0).
    latency_window : int, default 10_000
        Calls kept for :meth:`latency` (>= 1).
    context_length : int, optional
        Steps of history served: each member reads the last
        ``min(member.context_length, context_length)`` steps of ``x``. Default: the
        ensemble's ``context_length`` (the longest member context), as in
        :meth:`Ensemble.predict_sequences`.
    parallel_members : int, default 1
        CPU only: number of worker threads the members are spread over (1: run them
        one after the other in the calling thread).
    threads : int, "auto" or None, default None
        CPU intra-op torch threads during a call; None keeps the caller's setting,
        "auto" tunes a count per member and batch size (see above).
    parallel_rows : int, default 1
        CPU only: number of parts the rows of a call are cut into, served concurrently
        (see above); not combined with ``parallel_members``.
    fused_attention : bool, default False
        CPU only: serve copies of the members that support it (the Momentum
        Transformer, :meth:`MomentumTransformerNetwork.set_fused_attention`) on their
        fused lane-major path: the whole last step as composed matrix products and numba
        kernels (:mod:`workbench.models._fused`, ~2.3-2.8x faster than the module path
        at batch 64 on one core), with the fused attention kernel instead of ATen's SDPA.
        Equal to the members' own outputs to float32 rounding (~1e-7), not bit for bit.
        With ``compile``, such members are served on the fused path and not compiled
        (it beats the compiled module path; everything else is compiled).

    Attributes
    ----------
    device_ : torch.device
        Device the torch members run on.
    context_length_ : int
        Steps read from the end of every input sequence.
    batch_sizes_ : tuple of int
        Sorted, de-duplicated buffer batch sizes.
    compiled_ : bool
        Whether the ``torch.compile`` path is in use (False after a fallback).
    graphs_ : bool
        Whether CUDA graphs are in use.
    precision_check_ : dict or None
        CUDA: ``{"precision", "max_abs_diff", "per_member", "tolerance", "probe"}``, the
        largest abs difference of the served graph's member positions against fp32
        eager on the probe, over all batch sizes. None on CPU.
    member_outputs_ : dict of str to numpy.ndarray, shape (B,)
        The last call's per-member positions (float64; NaN for a member that did not
        serve the call), for plots.
    lane_assignment_ : dict of int to list of list of str
        Per batch size, CPU with ``parallel_members > 1``: member names per thread (the
        calling thread's first); with ``parallel_rows > 1``: the member order of the even
        parts (the calling thread's; costliest first) and of the odd parts (cheapest
        first).
    thread_choice_ : dict of int to dict of str to int
        CPU with ``threads="auto"``: intra-op threads per torch member, per batch size.

    Raises
    ------
    ValueError
        On a bad argument (named in the message; also ``parallel_members`` and
        ``parallel_rows`` both above 1), an unfitted ensemble, a member named
        "state" or "calls", a low precision on CPU, or a low-precision graph whose
        parity check exceeds 0.05.

    Notes
    -----
    Calls are serialised by a lock (the buffers are shared); the engine is not meant
    to be called from several threads at once for throughput.

    Measured on a shared 2-core VM (``benchmarks/bench_inference.py``; LSTM(40),
    Transformer(32, 2 layers), CNN and MLP over 63 steps of 10 features, batch 64):
    plain eager (full forwards) 13.8 ms p50; the engine's forward_last paths and
    buffers 9.7 ms; ``threads="auto"`` 8.8 ms; ``compile=True`` 8.4-8.5 ms (p99 ~14 ms).
    Member threads (``parallel_members=2``) did not help (10.5 ms): the transformer is
    ~75% of the work and is faster on two intra-op threads than on one. At batch 1,
    one intra-op thread avoids oneDNN LSTM stalls (p99 0.5-1 s with two threads
    while another process held a core).
    """

    def __init__(
        self,
        ensemble: Any,
        batch_sizes: Sequence[int] = (1, 64, 512),
        *,
        device: str = "auto",
        compile: bool = False,
        precision: str = "float32",
        exclude_calls: int = 100,
        latency_window: int = 10_000,
        context_length: int | None = None,
        parallel_members: int = 1,
        threads: int | str | None = None,
        fused_attention: bool = False,
        parallel_rows: int = 1,
    ):
        self.ensemble = ensemble
        self.batch_sizes = batch_sizes
        self.device = device
        self.compile = compile
        self.precision = precision
        self.exclude_calls = exclude_calls
        self.latency_window = latency_window
        self.context_length = context_length
        self.parallel_members = parallel_members
        self.threads = threads
        self.fused_attention = fused_attention
        self.parallel_rows = parallel_rows
        self._validate()
        self.device_ = resolve_device(device)
        cuda = self.device_.type == "cuda"
        if precision != "float32" and not cuda:
            raise ValueError(f"precision={precision!r} needs a CUDA device (device resolved to "
                             f"{self.device_.type!r}); use precision='float32' on CPU")
        if parallel_members > 1 and cuda:
            _LOG.info("parallel_members=%d ignored on CUDA (members run on CUDA streams)",
                      parallel_members)
        if parallel_rows > 1 and cuda:
            _LOG.info("parallel_rows=%d ignored on CUDA (one graph serves all rows)",
                      parallel_rows)
        self._lock = threading.Lock()
        self._calls = 0
        self._state = "ok"
        self._lat = np.zeros(int(latency_window))
        self._lat_n = 0
        self.member_outputs_: dict[str, np.ndarray] = {}
        self.precision_check_: dict[str, Any] | None = None
        self.lane_assignment_: dict[int, list[list[str]]] = {}
        self.graphs_ = False
        self.compiled_ = False
        self._members = self._make_members(ensemble)
        self._torch = [m for m in self._members if m.is_torch]
        self._trow = {m.index: k for k, m in enumerate(self._torch)}  # row in slot.out
        self._other = [m for m in self._members if not m.is_torch]
        self._contexts = sorted({m.context for m in self._torch} | {self.context_length_})
        self._lanes: list[_Lane] = []
        self._streams: dict[int, Any] = {}  # CUDA: one stream per torch member
        self._slots = [self._make_slot(b) for b in self.batch_sizes_]
        use_lanes = not cuda and min(int(parallel_members), len(self._members)) > 1
        self._row_parts = int(parallel_rows) if not cuda else 1
        # intra-op torch threads of the calling thread during a call (lanes: 1 each)
        self._intra: int | None = 1 if use_lanes or self._row_parts > 1 \
            else threads if isinstance(threads, int) else None
        self.thread_choice_: dict[int, dict[str, int]] = {}
        with self._intra_op():
            if compile:
                self._setup_compile()
            if cuda:
                self._setup_graphs()
            elif use_lanes:
                self._setup_lanes()
            elif self._row_parts > 1:
                self._setup_row_parts()
            elif threads == "auto":
                self._tune_threads()

    @contextlib.contextmanager
    def _intra_op(self) -> Any:
        """Run the block with the engine's intra-op thread count, restoring the caller's."""
        n = self._intra
        prev = torch.get_num_threads() if n is not None else None
        if n is None or prev is None or prev == n:
            yield
            return
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(prev)

    # -- construction ----------------------------------------------------------------
    def _validate(self) -> None:
        bs = self.batch_sizes
        ok = (isinstance(bs, Sequence) and not isinstance(bs, (str, bytes)) and len(bs) > 0
              and all(_is_int(b, 1) for b in bs))
        check_param("batch_sizes", bs, ok, "a non-empty sequence of ints >= 1")
        self.batch_sizes_ = tuple(sorted({int(b) for b in bs}))
        check_param("device", self.device, self.device in ("auto", "cpu", "cuda"),
                    "'auto', 'cpu' or 'cuda'")
        check_param("compile", self.compile, isinstance(self.compile, bool), "a bool")
        check_param("precision", self.precision, self.precision in PRECISIONS,
                    f"one of {list(PRECISIONS)}")
        check_param("exclude_calls", self.exclude_calls, _is_int(self.exclude_calls, 0),
                    "an int >= 0")
        check_param("latency_window", self.latency_window, _is_int(self.latency_window, 1),
                    "an int >= 1")
        check_param("context_length", self.context_length, self.context_length is None
                    or _is_int(self.context_length, 1), "None or an int >= 1")
        check_param("parallel_members", self.parallel_members,
                    _is_int(self.parallel_members, 1), "an int >= 1")
        check_param("parallel_rows", self.parallel_rows, _is_int(self.parallel_rows, 1),
                    "an int >= 1")
        if self.parallel_rows > 1 and self.parallel_members > 1:
            raise ValueError("parallel_members and parallel_rows cannot both be > 1, got "
                             f"parallel_members={self.parallel_members!r} and "
                             f"parallel_rows={self.parallel_rows!r}")
        check_param("fused_attention", self.fused_attention,
                    isinstance(self.fused_attention, bool), "a bool")
        check_param("threads", self.threads, self.threads is None or self.threads == "auto"
                    or _is_int(self.threads, 1), "None, 'auto' or an int >= 1")
        ens = self.ensemble
        for attr in ("names", "members", "combine", "context_length"):
            check_param("ensemble", type(ens).__name__, hasattr(ens, attr),
                        f"an Ensemble (it has no {attr!r})")
        if not hasattr(ens, "weights_"):
            raise ValueError("ensemble is not fitted (no weights_); call ensemble.fit first")
        for name in ens.names:
            if name in _HEALTH_KEYS:
                raise ValueError(f"member name {name!r} is reserved by health(); rename the "
                                 "member")
        self.n_features_in_ = int(ens.n_features_in_)
        self.context_length_ = int(self.context_length if self.context_length is not None
                                   else ens.context_length)

    def _make_members(self, ens: Any) -> list[_Member]:
        out = []
        for i, name in enumerate(ens.names):
            model = ens.members[name]
            ctx = min(int(model.context_length), self.context_length_)
            net = getattr(model, "network_", None)
            if net is not None:
                if (self.fused_attention and self.device_.type == "cpu"
                        and hasattr(net, "set_fused_attention")):
                    net = copy.deepcopy(net).set_fused_attention(True)
                if self.device_.type == "cuda":
                    net = copy.deepcopy(net).to(self.device_)
                    for mod in net.modules():  # contiguous cuDNN RNN weights
                        if isinstance(mod, torch.nn.RNNBase):
                            mod.flatten_parameters()
                net.eval()
                fn = functools.partial(last_step, net)
                out.append(_Member(name, i, model, ctx, net, fn, fn))
            elif hasattr(model, "predict_sequences"):
                out.append(_Member(name, i, model, ctx, None))
            else:
                raise ValueError(f"member {name!r} ({type(model).__name__}) has neither "
                                 "network_ nor predict_sequences")
        return out

    def _make_slot(self, b: int) -> _Slot:
        cuda = self.device_.type == "cuda"
        # compiled CPU code treats a size-1 batch as a special shape: serve it on 2 rows
        size = max(b, 2) if self.compile and not cuda else b
        C, F = self.context_length_, self.n_features_in_
        host = torch.zeros((size, C, F), dtype=torch.float32, pin_memory=cuda)
        Mt = len(self._torch)
        if cuda:
            inputs = {c: torch.zeros((size, c, F), device=self.device_) for c in self._contexts}
            out = torch.zeros((Mt, size), device=self.device_)
            out_host = torch.zeros((Mt, size), pin_memory=True)
        else:  # the full-context input is the host buffer; shorter contexts get their own
            inputs = {c: host if c == C else torch.zeros((size, c, F)) for c in self._contexts}
            out = out_host = torch.zeros((Mt, size))
        return _Slot(size, host, host.numpy(), inputs, out, out_host)

    def _probe(self, size: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn((size, self.context_length_, self.n_features_in_), generator=g)

    def _setup_compile(self) -> None:
        try:
            import torch._dynamo  # noqa: F401

            # threads="auto" switches the thread count per member: the compiled kernels
            # must read it at run time instead of baking in the count at compile time
            options: dict[str, Any] = {"cpp.dynamic_threads": True} \
                if self.threads == "auto" else {}
            if self._row_parts > 1:  # a C++ wrapper releases the GIL for the whole graph
                options["cpp_wrapper"] = True
            for m in self._torch:  # (members on a fused path stay on it)
                assert m.network is not None
                if not getattr(m.network, "fused", False):
                    m.fn = _compiled_last_step(m.network, options or None)
            self.compiled_ = True
            with torch.inference_mode():  # compile now, for the shapes of every slot
                for slot in self._slots:
                    slot.inputs[self.context_length_].copy_(self._probe(slot.size))
                    self._prepare_inputs(slot, slot.size)
                    for m in self._torch:
                        assert m.fn is not None
                        m.fn(slot.inputs[m.context])
                    slot.inputs[self.context_length_].zero_()
        except Exception as exc:  # noqa: BLE001 - any compiler failure: serve eagerly
            _LOG.warning("torch.compile unavailable (%s); serving eagerly", _describe(exc))
            for m in self._torch:
                m.fn = m.eager_fn
            self.compiled_ = False
            for slot in self._slots:
                slot.inputs[self.context_length_].zero_()

    # -- CPU lanes -----------------------------------------------------------------------
    def _start_lanes(self, k: int) -> None:
        main_threads = torch.get_num_threads()  # (the caller's: _intra_op restores it)
        for _ in range(k):
            ready = threading.Event()
            lane = _Lane(ready)
            lane.start()
            ready.wait()
            self._lanes.append(lane)
        torch.set_num_threads(main_threads)  # the lanes changed torch's global default
        weakref.finalize(self, _stop_lanes, self._lanes)

    def _setup_lanes(self) -> None:
        k = min(int(self.parallel_members), len(self._members))
        if k < 2:
            return
        self._start_lanes(k - 1)  # (the calling thread serves the first group)
        for slot in self._slots:  # longest processing time first, from warm-up timings
            cost = self._member_costs(slot, slot.size)
            lanes: list[list[int]] = [[] for _ in range(k)]
            load = [0.0] * k
            for i in sorted(cost, key=lambda j: -cost[j]):
                j = int(np.argmin(load))
                lanes[j].append(i)
                load[j] += cost[i]
            slot.lanes = [ln for ln in lanes if ln]
            self.lane_assignment_[slot.size] = [[self._members[i].name for i in ln]
                                                for ln in slot.lanes]

    def _member_costs(self, slot: _Slot, rows: int) -> dict[int, float]:
        """Seconds of each member on ``rows`` probe rows, on a lane (best of the warm-ups)."""
        x = self._probe(slot.size)
        cost = {}
        lane = self._lanes[0]
        for m in self._members:
            t = math.inf
            for _ in range(_WARMUP):
                t0 = time.perf_counter()
                lane.jobs.put(self._lane_job([m.index], slot, x, rows))
                lane.results.get()
                t = min(t, time.perf_counter() - t0)
            cost[m.index] = t
        return cost

    def _setup_row_parts(self) -> None:
        """Start the lanes; per slot, the member order of the parts, from warm-up timings.

        Even parts take the members costliest first, odd parts cheapest first, so two
        threads are seldom in the same member at once (a member with much Python between
        its torch calls, like the fused transformer path, would have them queue for the
        GIL).
        """
        self._start_lanes(self._row_parts - 1)  # the caller's thread runs part 0
        for slot in self._slots:
            rows = max(1, slot.size // self._row_parts)
            cost = self._member_costs(slot, rows)
            desc = sorted(cost, key=lambda j: -cost[j])
            slot.row_orders = [desc, desc[::-1]]
            self.lane_assignment_[slot.size] = [[self._members[i].name for i in order]
                                                for order in slot.row_orders]

    def _tune_threads(self) -> None:
        """Pick each torch member's intra-op thread count per batch size (``"auto"``).

        From timed runs (5 per count, interleaved), the caller's count only when its
        median is at least 25% below one thread's: on a busy machine a thread team's
        synchronisation stalls cost more in the tail latency than the median shows.
        """
        caller = torch.get_num_threads()
        candidates = sorted({1, caller})
        if len(candidates) < 2:
            return
        try:
            with torch.inference_mode():
                for slot in self._slots:
                    slot.inputs[self.context_length_].copy_(self._probe(slot.size))
                    self._prepare_inputs(slot, slot.size)
                    rows = self._rows(slot, slot.size)
                    for m in self._torch:
                        assert m.fn is not None
                        x = slot.inputs[m.context][:rows]
                        times: dict[int, list[float]] = {nt: [] for nt in candidates}
                        for nt in candidates:  # warm-up
                            torch.set_num_threads(nt)
                            m.fn(x)
                        for _ in range(_TUNE_ROUNDS):  # interleaved: load drift hits both
                            for nt in candidates:
                                torch.set_num_threads(nt)
                                t0 = time.perf_counter()
                                m.fn(x)
                                times[nt].append(time.perf_counter() - t0)
                        one, many = (float(np.median(times[nt])) for nt in candidates)
                        slot.member_threads[m.index] = (
                            caller if many < (1.0 - _TUNE_MARGIN) * one else 1)
                    slot.inputs[self.context_length_].zero_()
                    self.thread_choice_[slot.size] = {
                        self._members[i].name: n for i, n in slot.member_threads.items()}
        finally:
            torch.set_num_threads(caller)

    def close(self) -> None:
        """Stop the worker threads of ``parallel_members`` or ``parallel_rows``.

        The engine then runs serially.
        """
        _stop_lanes(self._lanes)
        self._lanes = []
        for slot in self._slots:
            slot.lanes = []

    # -- CUDA graphs ---------------------------------------------------------------------
    def _autocast(self) -> Any:
        dt = PRECISIONS[self.precision]
        return torch.autocast("cuda", dtype=dt, enabled=dt != torch.float32,
                              cache_enabled=False)

    def _device_forward(self, slot: _Slot, members: Sequence[_Member]) -> None:
        """Fill ``slot.out`` rows of ``members`` from ``slot.inputs`` (the graph's body).

        Each member runs on its own stream, forked from and joined back to the current
        stream (in a capture: the capture stream), so independent members overlap.
        """
        C = self.context_length_
        full = slot.inputs[C]
        for c, buf in slot.inputs.items():
            if c != C:
                buf.copy_(full[:, C - c:])
        cur = torch.cuda.current_stream(self.device_)
        for m in members:
            assert m.fn is not None
            s = self._streams[m.index]
            s.wait_stream(cur)
            with torch.cuda.stream(s), self._autocast():
                y = m.fn(slot.inputs[m.context])
                slot.out[self._trow[m.index]].copy_(y)
        for m in members:
            cur.wait_stream(self._streams[m.index])

    def _setup_graphs(self) -> None:
        if not self._torch:
            return
        dev = self.device_
        self._streams = {m.index: torch.cuda.Stream(dev) for m in self._torch}
        side = torch.cuda.Stream(dev)
        worst: dict[str, float] = {m.name: 0.0 for m in self._torch}
        for slot in self._slots:
            members = list(self._torch)
            slot.inputs[self.context_length_].copy_(self._probe(slot.size))
            # warm-up on a side stream (cuDNN/cuBLAS handles, workspaces, lazy init,
            # compilation); a member failing here is left out of the graph and served
            # eagerly (and so excluded) at call time
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side), torch.inference_mode():
                for m in list(members):
                    try:
                        for _ in range(_WARMUP):
                            self._device_forward(slot, [m])
                    except Exception as exc:  # noqa: BLE001
                        _LOG.warning("member %r failed its warm-up at batch %d (%s); it is "
                                     "served eagerly, outside the CUDA graph", m.name,
                                     slot.size, _describe(exc))
                        members.remove(m)
            torch.cuda.current_stream(dev).wait_stream(side)
            torch.cuda.synchronize(dev)
            if not members:
                continue
            graph = self._capture(slot, members)
            if graph is None and self.compiled_:
                _LOG.warning("CUDA graph capture of the compiled members failed; capturing "
                             "the eager members instead")
                for m in self._torch:
                    m.fn = m.eager_fn
                self.compiled_ = False
                graph = self._capture(slot, members)
            if graph is None:
                continue
            slot.graph = graph
            slot.graph_members = tuple(m.index for m in members)
            # parity: the graph (any precision) against fp32 eager on the probe
            slot.graph.replay()
            torch.cuda.synchronize(dev)
            got = slot.out.clone()
            with torch.inference_mode():
                for m in members:
                    assert m.eager_fn is not None
                    ref = m.eager_fn(slot.inputs[m.context]).float()
                    d = float((got[self._trow[m.index]] - ref).abs().max())
                    worst[m.name] = max(worst[m.name], d if math.isfinite(d) else math.inf)
        self.graphs_ = any(s.graph is not None for s in self._slots)
        self.precision_check_ = {
            "precision": self.precision, "max_abs_diff": max(worst.values()),
            "per_member": worst, "tolerance": PRECISION_TOLERANCE,
            "probe": "N(0, 1) inputs, seed 0, every batch size",
        }
        if self.precision != "float32" and not max(worst.values()) <= PRECISION_TOLERANCE:
            raise ValueError(
                f"precision={self.precision!r} fails the parity check: max abs difference of "
                f"member positions against float32 is {max(worst.values()):.4g} > "
                f"{PRECISION_TOLERANCE} ({worst}); use precision='float32'")

    def _capture(self, slot: _Slot, members: list[_Member]) -> Any:
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph):
                self._device_forward(slot, members)
            return graph
        except Exception as exc:  # noqa: BLE001
            _LOG.warning("CUDA graph capture failed at batch %d (%s); serving eagerly",
                         slot.size, _describe(exc))
            torch.cuda.synchronize(self.device_)
            return None

    # -- calls ---------------------------------------------------------------------------
    def _check_input(self, x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        F, C = self.n_features_in_, self.context_length_
        if x.ndim != 3 or x.shape[-1] != F or not (np.issubdtype(x.dtype, np.floating)
                                                   or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"x must be a real array of shape (B, L, {F}), got shape "
                             f"{x.shape} dtype {x.dtype}")
        if x.shape[1] < C:
            raise ValueError(f"x must hold at least context_length={C} steps, got L={x.shape[1]}")
        if x.shape[0] == 0:
            raise ValueError("x must hold at least one sequence, got B=0")
        return x

    def _slot_for(self, rows: int) -> _Slot:
        for slot in self._slots:
            if slot.size >= rows:
                return slot
        return self._slots[-1]

    def _fill(self, slot: _Slot, chunk: np.ndarray, rows: int) -> None:
        """Copy ``chunk`` (rows, L, F) last C steps into the slot; non-finite -> 0."""
        C = self.context_length_
        with np.errstate(over="ignore", invalid="ignore"):
            np.copyto(slot.host_np[:rows], chunk[:, chunk.shape[1] - C:], casting="unsafe")
        torch.nan_to_num_(slot.host[:rows], nan=0.0, posinf=0.0, neginf=0.0)

    def _run_member(self, m: _Member, slot: _Slot, chunk: np.ndarray | torch.Tensor,
                    rows: int, lo: int = 0) -> np.ndarray:
        """Positions (rows,) of one member for rows ``lo:lo + rows``.

        From the slot (torch) or the raw chunk (other); ``lo > 0`` only for parts of >= 2
        rows (``parallel_rows``).
        """
        if m.is_torch:
            assert m.fn is not None
            n = rows if lo else self._rows(slot, rows)
            t = m.fn(slot.inputs[m.context][lo:lo + n])
            y = t.detach().float().cpu().numpy()[:rows]
        else:
            x = chunk if isinstance(chunk, np.ndarray) else chunk.numpy()
            x = x[lo:lo + rows]
            y = np.asarray(m.model.predict_sequences(x[:, x.shape[1] - m.context:]))
        if y.shape != (rows,):
            raise ValueError(f"returned shape {y.shape}, expected ({rows},)")
        return y

    def _lane_job(self, indices: list[int], slot: _Slot, chunk: Any, rows: int, lo: int = 0,
                  ) -> Callable[[], list[tuple[int, Any]]]:
        def job() -> list[tuple[int, Any]]:
            res: list[tuple[int, Any]] = []
            for i in indices:
                try:
                    res.append((i, self._run_member(self._members[i], slot, chunk, rows, lo)))
                except Exception as exc:  # noqa: BLE001 - a failing member is excluded
                    res.append((i, exc))
            return res
        return job

    def _rows(self, slot: _Slot, rows: int) -> int:
        """Rows the torch members compute eagerly (CUDA graphs compute the whole buffer).

        Compiled code gets >= 2 rows: a batch of one would be compiled again.
        """
        return min(max(rows, 2), slot.size) if self.compiled_ else rows

    def _prepare_inputs(self, slot: _Slot, rows: int) -> None:
        C = self.context_length_
        full = slot.inputs[C]
        for c, buf in slot.inputs.items():
            if c != C:
                buf[:rows].copy_(full[:rows, C - c:])

    def _run_cpu(self, slot: _Slot, chunk: np.ndarray, rows: int,
                 serve: list[int]) -> list[tuple[int, Any]]:
        self._fill(slot, chunk, rows)
        self._prepare_inputs(slot, self._rows(slot, rows))
        if self._lanes and self._row_parts > 1 and rows >= 2 * self._row_parts:
            return self._run_row_parts(slot, chunk, rows, serve)
        if self._lanes and slot.lanes:
            groups = [[i for i in ln if i in serve] for ln in slot.lanes]
            parts = self._fan_out([self._lane_job(g, slot, chunk, rows) if g else None
                                   for g in groups])
            return [item for part in parts for item in part]
        mt = slot.member_threads
        if not mt:
            return self._lane_job(serve, slot, chunk, rows)()
        prev = torch.get_num_threads()  # threads="auto": each member at its tuned count
        res: list[tuple[int, Any]] = []
        try:
            for i in serve:
                nt = mt.get(i, prev)
                if nt != torch.get_num_threads():
                    torch.set_num_threads(nt)
                res += self._lane_job([i], slot, chunk, rows)()
        finally:
            if torch.get_num_threads() != prev:
                torch.set_num_threads(prev)
        return res

    def _fan_out(self, jobs: Sequence[Callable[[], list[tuple[int, Any]]] | None],
                 ) -> list[list[tuple[int, Any]]]:
        """Run ``jobs[0]`` in the calling thread and ``jobs[k]`` on lane ``k - 1``.

        A None job is skipped (its result is empty). Every lane given a job is read
        before an exception (a job's, or the calling thread's abort) is re-raised, so no
        result is left queued for the next call.
        """
        busy = []
        for lane, job in zip(self._lanes, jobs[1:]):
            if job is not None:
                lane.jobs.put(job)
                busy.append(lane)
        try:
            own = jobs[0]() if jobs[0] is not None else []
        finally:
            rest = iter(_collect(busy))
        return [own] + [next(rest) if job is not None else [] for job in jobs[1:]]

    def _run_row_parts(self, slot: _Slot, chunk: np.ndarray, rows: int,
                       serve: list[int]) -> list[tuple[int, Any]]:
        """``parallel_rows``: every member on each contiguous part of the rows.

        The parts run on the lanes and (part 0) the calling thread; a failure in any part
        fails the member for the call.
        """
        bounds = np.linspace(0, rows, self._row_parts + 1).astype(int)
        # even parts costliest member first, odd parts cheapest first (_setup_row_parts)
        jobs = [self._lane_job([i for i in slot.row_orders[p % 2] if i in serve], slot, chunk,
                               int(hi - lo), int(lo))
                for p, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]
        by_member = [dict(part) for part in self._fan_out(jobs)]
        out: list[tuple[int, Any]] = []
        for i in serve:
            ys = [p[i] for p in by_member]
            bad = next((y for y in ys if isinstance(y, BaseException)), None)
            out.append((i, bad if bad is not None else np.concatenate(ys)))
        return out

    def _run_cuda(self, slot: _Slot, chunk: np.ndarray, rows: int,
                  serve: list[int]) -> list[tuple[int, Any]]:
        self._fill(slot, chunk, rows)
        dev = self.device_
        C = self.context_length_
        slot.inputs[C][:rows].copy_(slot.host[:rows], non_blocking=True)
        res: list[tuple[int, Any]] = []
        in_graph = [i for i in slot.graph_members if i in serve]
        eager = [i for i in serve if self._members[i].is_torch and i not in in_graph]
        replayed = False
        if in_graph:
            try:
                slot.graph.replay()
                slot.out_host.copy_(slot.out, non_blocking=True)
                replayed = True
            except Exception as exc:  # noqa: BLE001
                _LOG.warning("CUDA graph replay failed at batch %d (%s); eager for this call",
                             slot.size, _describe(exc))
                eager += in_graph
        others = [i for i in serve if not self._members[i].is_torch]
        res += self._lane_job(others, slot, chunk, rows)()  # on the host, during the replay
        if eager:
            with self._autocast():
                for i in eager:
                    m = self._members[i]
                    try:
                        self._prepare_inputs(slot, self._rows(slot, rows))
                        res.append((i, self._run_member(m, slot, chunk, rows)))
                    except Exception as exc:  # noqa: BLE001
                        res.append((i, exc))
        if replayed:
            torch.cuda.current_stream(dev).synchronize()
            out = slot.out_host.numpy()
            res += [(i, out[self._trow[i], :rows].copy()) for i in in_graph]
        return res

    def predict(self, x: Any) -> np.ndarray:
        """Combined last-step positions of B sequences.

        Parameters
        ----------
        x : numpy.ndarray or torch.Tensor, shape (B, L, F)
            The last ``L >= context_length_`` bars of B symbols, features in the order
            of the ensemble's ``feature_names_in_`` (any real dtype; cast to float32;
            non-finite values read as 0 by the torch members). Only the last
            ``context_length_`` steps are read.

        Returns
        -------
        numpy.ndarray, shape (B,)
            Positions in [-1, 1] (float64), weights renormalised over the members that
            served the call; zeros when none did.

        Raises
        ------
        ValueError
            If ``x`` is not 3-D with ``n_features_in_`` features, has ``L`` shorter than
            ``context_length_``, or holds no sequence.
        """
        with self._lock, self._intra_op():
            return self._predict(x)

    __call__ = predict

    def _predict(self, x: Any) -> np.ndarray:
        t0 = time.perf_counter()
        x = self._check_input(x)
        self._calls += 1
        call = self._calls
        B = x.shape[0]
        M = len(self._members)
        serve = [m.index for m in self._members
                 if m.excluded_until is None or call > m.excluded_until]
        pos = np.full((M, B), np.nan)
        failed: dict[int, str] = {}
        run = self._run_cuda if self.device_.type == "cuda" else self._run_cpu
        bmax = self._slots[-1].size
        for start in range(0, B, bmax):
            rows = min(bmax, B - start)
            todo = [i for i in serve if i not in failed]
            if not todo:
                break
            with torch.inference_mode():
                results = run(self._slot_for(rows), x[start:start + rows], rows, todo)
            for i, y in results:
                if isinstance(y, BaseException):
                    failed[i] = _describe(y)
                elif not np.isfinite(y).all():
                    failed[i] = f"non-finite output for {int((~np.isfinite(y)).sum())} of " \
                                f"{rows} rows"
                else:
                    pos[i, start:start + rows] = y
        served = np.zeros(M, dtype=bool)
        served[serve] = True
        for i, why in failed.items():
            served[i] = False
            self._exclude(self._members[i], call, why, int(served.sum()))
        for m in self._members:
            if served[m.index] and m.excluded_until == call - 1:
                _LOG.info("member %r re-admitted at call %d", m.name, call)
        pos[~served] = np.nan
        if served.all():
            out = np.asarray(self.ensemble.combine(pos), dtype=np.float64)
            self._state = "ok"
        elif served.any():
            out = np.asarray(self.ensemble.combine(pos, served), dtype=np.float64)
            self._state = "degraded"
        else:
            out = np.zeros(B)
            if self._state != "error":
                _LOG.error("no member served call %d: flat positions until a member "
                           "recovers", call)
            self._state = "error"
        self.member_outputs_ = {m.name: pos[m.index] for m in self._members}
        self._lat[(call - 1) % len(self._lat)] = time.perf_counter() - t0
        self._lat_n = min(self._lat_n + 1, len(self._lat))
        return out

    def _exclude(self, m: _Member, call: int, why: str, n_served: int) -> None:
        m.failures += 1
        m.last_error = why
        m.excluded_until = call + int(self.exclude_calls)
        _LOG.warning("member %r failed at call %d (%s); excluded for %d calls (retried at "
                     "call %d); %d of %d members serving", m.name, call, why,
                     self.exclude_calls, m.excluded_until + 1, n_served, len(self._members))

    # -- reports -------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Member health and engine state.

        Returns
        -------
        dict
            One entry per member name: ``{"active": bool`` (served at the next call),
            ``"failures": int`` (exclusion events), ``"excluded_until_call": int | None``
            (last call of the latest exclusion), ``"last_error": str | None}``; plus
            ``"state"``: ``"ok"`` (every member served the last call), ``"degraded"``
            (some did) or ``"error"`` (none did: flat positions), and ``"calls"``: the
            number of calls served.
        """
        out: dict[str, Any] = {}
        for m in self._members:
            out[m.name] = {
                "active": m.excluded_until is None or self._calls >= m.excluded_until,
                "failures": m.failures,
                "excluded_until_call": m.excluded_until,
                "last_error": m.last_error,
            }
        out["state"] = self._state
        out["calls"] = self._calls
        return out

    def latency(self) -> dict[str, float]:
        """Latency percentiles of the last ``latency_window`` calls.

        Returns
        -------
        dict
            ``{"p50_ms", "p95_ms", "p99_ms"}`` in milliseconds (``time.perf_counter``
            around the whole call, input checks and combination included; NaN before
            the first call) and ``"n"``, the number of calls they cover.
        """
        n = self._lat_n
        if n == 0:
            return {"p50_ms": math.nan, "p95_ms": math.nan, "p99_ms": math.nan, "n": 0}
        lat = self._lat[:n] if n < len(self._lat) else self._lat
        p = np.percentile(lat, [50, 95, 99]) * 1e3
        return {"p50_ms": float(p[0]), "p95_ms": float(p[1]), "p99_ms": float(p[2]), "n": n}

    def __repr__(self) -> str:
        return (f"InferenceEngine(members={list(self.ensemble.names)}, "
                f"batch_sizes={self.batch_sizes_}, device={self.device_.type!r}, "
                f"compiled={self.compiled_}, graphs={self.graphs_}, "
                f"precision={self.precision!r}, parallel_members={self.parallel_members})")

