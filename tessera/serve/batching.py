"""Adaptive batching for the inference server (seed 002's GDNInferenceServer / BatchScheduler).

Requests go into an asyncio.Queue; one batch loop takes them out in batches and runs each batch on the model
in ONE worker thread (`run_in_executor` on a one-thread pool), so the event loop keeps accepting requests while
the model runs and the model is never called from two threads at once.

A request may carry several rows (`input_ids` [r, S]); the rows of one request always stay in one batch.
A batch is closed when the next request would take it past the current row limit, or when the oldest request
in it has waited `max_wait_ms` since it arrived, whichever comes first (a request that waited while the model
was busy is not held back any further). A request with more rows than the current limit (but no more than the
model's max_batch_size; the app refuses more) runs alone.

The row limit adapts before each batch (`BatchPolicy.next_limit`, the seed's get_optimal_batch_size):

1. memory: when the process's resident memory exceeds `memory_high` (0.8) of the machine's → limit // 2;
2. latency: when the mean model time of the last `latency_window` batches exceeds `latency_target_ms` (100)
   → limit - step;
3. queue: when more than `queue_high` (20) rows wait → limit + step;
4. otherwise the limit stays.

It is clamped to [1, cap], cap = min(model.max_batch_size, max_batch_size option). Unlike the seed, the rules
move the current *limit*, not the size of the last batch: under light load batches are small because few
requests wait, and taking their size as the next limit would ratchet it down to 1 with no way back up until
the queue is long. The limit starts at `initial_batch_size` (default: the cap).

Every accepted request's future gets a result or an error: the model's exception fails its batch only,
`close()` drains (runs every queued request) before it returns, and a batch loop that dies fails what is left.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import ServeError

_log = logging.getLogger("tessera.serve")
_STOP = object()       # put by close(): wakes an idle batch loop, nothing comes after it


@dataclass
class BatchingOptions:
    """The knobs of the batching (create_app(..., **options) takes these names)."""
    max_wait_ms: float = 5.0           # longest a request waits for companions (from its arrival)
    max_batch_size: int | None = None  # cap on rows per batch (default: the model's max_batch_size)
    initial_batch_size: int | None = None  # the starting row limit (default: the cap)
    latency_target_ms: float = 100.0   # mean model time per batch above which the limit shrinks
    latency_window: int = 8            # batches the mean model time is taken over
    queue_high: int = 20               # queued rows above which the limit grows
    step: int = 2                      # how much the latency / queue rules move the limit
    memory_high: float = 0.8           # resident-memory fraction above which the limit halves
    max_queue_rows: int = 4096         # rows waiting beyond which new requests get 503


@dataclass
class BatchPolicy:
    """The seed's get_optimal_batch_size, as a small state machine over the row limit (module docstring)."""
    cap: int
    options: BatchingOptions
    limit: int = 0
    recent_ms: collections.deque = field(default_factory=collections.deque)

    def __post_init__(self):
        if self.cap < 1:
            raise ServeError(f"the batch cap must be >= 1, got {self.cap}", field="max_batch_size", status=500)
        start = self.options.initial_batch_size or self.cap
        self.limit = max(1, min(self.cap, int(start)))
        self.recent_ms = collections.deque(maxlen=max(1, self.options.latency_window))

    def observe(self, batch_ms: float):
        """Record one batch's model time (milliseconds)."""
        self.recent_ms.append(float(batch_ms))

    def mean_latency_ms(self) -> float:
        return float(np.mean(self.recent_ms)) if self.recent_ms else 0.0

    def next_limit(self, queued_rows: int, memory_fraction: float | None = None) -> int:
        o = self.options
        if memory_fraction is not None and memory_fraction > o.memory_high:
            self.limit = self.limit // 2
        elif self.mean_latency_ms() > o.latency_target_ms:
            self.limit = self.limit - o.step
        elif queued_rows > o.queue_high:
            self.limit = self.limit + o.step
        self.limit = max(1, min(self.cap, self.limit))
        return self.limit


class _Request:
    __slots__ = ("ids", "mask", "future", "arrived", "rows")

    def __init__(self, ids: np.ndarray, mask: np.ndarray | None, future: asyncio.Future):
        self.ids, self.mask, self.future = ids, mask, future
        self.arrived = time.monotonic()
        self.rows = int(ids.shape[0])


@dataclass
class BatchResult:
    """What one request gets back: its rows' logits [r, S, V] (its own S) and next tokens, and the batch."""
    logits: np.ndarray
    next_tokens: list
    variant: str
    batch_rows: int
    model_ms: float


class Batcher:
    """The queue, the batch loop and the model's worker thread. Create and use it inside one event loop:
    `await start()`, `await submit(ids, mask)` per request, `await close()` to drain."""

    def __init__(self, model, options: BatchingOptions | None = None, monitor=None, on_batch=None,
                 memory_fraction=None):
        self.model = model
        self.options = options or BatchingOptions()
        cap = int(model.max_batch_size)
        if self.options.max_batch_size:
            cap = min(cap, int(self.options.max_batch_size))
        self.policy = BatchPolicy(cap, self.options)
        self.monitor = monitor
        self.on_batch = on_batch              # callback(rows, model_seconds) for the app's metrics
        self.memory_fraction = memory_fraction  # callable -> float | None, for rule 1
        self.queued_rows = 0
        self.queued_requests = 0
        self.in_flight_requests = 0
        self.accepted = 0
        self.completed = 0
        self.closing = False
        self._queue: asyncio.Queue | None = None
        self._carry: _Request | None = None   # taken from the queue but did not fit the last batch
        self._live: list = []                 # the requests of the batch the model is running
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self):
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tessera-serve-model")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="tessera-serve-batches")
        self._task.add_done_callback(self._loop_ended)

    async def run_in_worker(self, fn, *args):
        """Run fn(*args) on the model's worker thread (e.g. the warm-up before the server accepts)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def close(self, timeout: float | None = None):
        """Refuse new requests, run every queued one, then stop the loop and the worker thread."""
        if self._task is None:
            return
        self.closing = True
        self._queue.put_nowait(_STOP)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            self._task.cancel()          # the batch in the model and what is queued get a 503
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        except Exception:  # noqa: BLE001 - the loop died; _loop_ended has failed every pending request
            pass
        finally:
            self._fail_pending(ServeError("the server stopped before answering this request", status=503))
            self._executor.shutdown(wait=True)

    # -- requests ---------------------------------------------------------------------------------------------
    def submit(self, ids: np.ndarray, mask: np.ndarray | None = None) -> asyncio.Future:
        """Queue one request (ids int32 [r, S], mask 0/1 [r, S] or None); its future gets a BatchResult or
        the error. Refused (ServeError 503) while draining or when max_queue_rows rows already wait."""
        if self.closing or self._queue is None:
            raise ServeError("the server is shutting down", status=503)
        if ids.ndim != 2 or not 1 <= ids.shape[0] <= int(self.model.max_batch_size):
            raise ServeError(f"a request takes 1 to {self.model.max_batch_size} rows of input_ids, got shape "
                             f"{list(ids.shape)}", "input_ids")
        if self.queued_rows + ids.shape[0] > self.options.max_queue_rows:
            raise ServeError(f"the queue is full ({self.queued_rows} rows wait)", status=503)
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(ids, mask, fut))
        self.queued_rows += ids.shape[0]
        self.queued_requests += 1
        self.accepted += 1
        return fut

    # -- the batch loop ---------------------------------------------------------------------------------------
    async def _next(self, timeout: float | None):
        """The next queued request (or _STOP); None when `timeout` passes first."""
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _collect(self, limit: int) -> tuple[list, bool]:
        """One batch of requests (rows <= limit unless one request alone is bigger) and whether _STOP came."""
        batch, rows, stopped = [], 0, False
        first = await self._next(None)
        if first is _STOP:
            return batch, True
        batch.append(first)
        rows = first.rows
        deadline = first.arrived + self.options.max_wait_ms / 1000.0
        while rows < limit:
            item = await self._next(deadline - time.monotonic())
            if item is None:
                break
            if item is _STOP:
                stopped = True
                break
            if rows + item.rows > limit:
                self._carry = item
                break
            batch.append(item)
            rows += item.rows
        return batch, stopped

    async def _loop(self):
        loop = asyncio.get_running_loop()
        stopped = False
        while not (stopped and self._carry is None and self._queue.empty()):
            mem = self.memory_fraction() if self.memory_fraction else None
            limit = self.policy.next_limit(self.queued_rows, mem)
            batch, stop = await self._collect(limit)
            stopped = stopped or stop
            if not batch:
                continue
            for r in batch:
                self.queued_rows -= r.rows
                self.queued_requests -= 1
            live = [r for r in batch if not r.future.done()]   # a client that went away: skip its rows
            if not live:
                continue
            self._live = live
            self.in_flight_requests = len(live)
            rows = sum(r.rows for r in live)
            t0 = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, live)
            except Exception as e:  # noqa: BLE001 - the model's error goes to this batch's requests, not the loop
                err = e if isinstance(e, ServeError) else ServeError(
                    f"the model failed on a batch of {rows} row(s): {type(e).__name__}: {e}", status=500)
                results = [err] * len(live)
            model_s = time.perf_counter() - t0
            self.policy.observe(model_s * 1000.0)
            failed = isinstance(results[0], Exception)
            for r, res in zip(live, results):
                if not r.future.done():
                    (r.future.set_exception if failed else r.future.set_result)(res)
            self.in_flight_requests, self._live = 0, []
            self.completed += len(live)
            try:
                if self.on_batch is not None:
                    self.on_batch(rows, model_s, failed)
                if self.monitor is not None:
                    self.monitor.record_batch(rows, model_s, queue_depth=self.queued_rows, failed=failed)
            except Exception:  # noqa: BLE001 - metrics must never stop the batch loop
                _log.exception("recording a batch's metrics failed")

    def _loop_ended(self, task: asyncio.Task):
        """Whatever stopped the loop, nothing accepted stays unanswered."""
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            _log.error("the batch loop stopped: %r", exc)
        self._fail_pending(ServeError(f"the batch loop stopped ({exc!r})" if exc else
                                      "the server stopped before answering this request", status=503))

    def _fail_pending(self, err: ServeError):
        """Fail the batch in the model (if the loop is gone) and every queued request with `err`."""
        pending = list(self._live) + ([self._carry] if self._carry is not None else [])
        self._carry, self._live = None, []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for r in pending:
            if r is not _STOP and not r.future.done():
                r.future.set_exception(err)

    # -- on the worker thread ---------------------------------------------------------------------------------
    def _run_batch(self, requests: list) -> list:
        """Left-pad every row to the batch's longest sequence (mask 0 on the padding), run the model once, and
        cut each request's rows and positions back out."""
        S = max(r.ids.shape[1] for r in requests)
        B = sum(r.rows for r in requests)
        ids = np.zeros((B, S), np.int32)
        mask = np.zeros((B, S), np.int32)
        i = 0
        for r in requests:
            s = r.ids.shape[1]
            ids[i:i + r.rows, S - s:] = r.ids
            mask[i:i + r.rows, S - s:] = 1 if r.mask is None else r.mask
            i += r.rows
        inputs = {"input_ids": ids}
        if not mask.all():
            inputs["attention_mask"] = mask
        variant = str(self.model.variant_for(B))
        t0 = time.perf_counter()
        logits = np.asarray(self.model.inference(inputs)["logits"])
        model_ms = (time.perf_counter() - t0) * 1000.0
        if logits.shape[:2] != (B, S):
            raise ServeError(f"the model returned logits of shape {logits.shape} for input_ids {ids.shape}",
                             status=500)
        # the next token of a row: the argmax at its last real (mask 1) position
        last = S - 1 - np.argmax(mask[:, ::-1], axis=1)
        nxt = np.argmax(logits[np.arange(B), last], axis=-1)
        out, i = [], 0
        for r in requests:
            s = r.ids.shape[1]
            out.append(BatchResult(logits[i:i + r.rows, S - s:], [int(t) for t in nxt[i:i + r.rows]],
                                   variant, B, model_ms))
            i += r.rows
        return out
