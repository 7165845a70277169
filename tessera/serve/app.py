"""The HTTP face of a deployed model: `create_app(model, monitor=None, **batching_options)` -> a FastAPI app.

    POST /v1/infer   {"input_ids": [[int, ...], ...], "attention_mask": [[0|1, ...], ...]?,
                      "return": "next_tokens" | "logits"}
                  -> {"model", "variant", "batch_rows", "next_tokens": [int per row]}   (or "logits": [r][S][V])
    GET  /health     status, model, queue depth, in-flight requests, variants
    GET  /metrics    Prometheus text (this app's own CollectorRegistry)

Every error reply is `{"error": {"field": <request field or null>, "message": ...}}`: 400 for a body that is not
a JSON object, 422 for a field that is wrong, 503 while draining or when the queue is full, 500 when the model
fails. The model is duck-typed (tessera.DeployedModel's interface): `.name`, `.inference({"input_ids",
"attention_mask"?}) -> {"logits"}`, `.max_batch_size`, `.max_sequence_length`, `.vocab_size`,
`.variant_for(batch)`. See docs/serving.md. Importing this module imports fastapi and prometheus_client;
`import tessera` does not.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ServeError, TesseraError
from ..production.monitor import GDNProductionMonitor, memory_fraction
from .batching import Batcher, BatchingOptions

_log = logging.getLogger("tessera.serve")
_RETURNS = ("next_tokens", "logits")
_FIELDS = ("input_ids", "attention_mask", "return")


# -- request validation -------------------------------------------------------------------------------------------
def _int_matrix(value, name: str, lo: int, hi: int, max_rows: int, max_cols: int) -> np.ndarray:
    """A non-empty, rectangular list of lists of ints in [lo, hi) as an int32 array, or ServeError(field=name)."""
    if not isinstance(value, list) or not value:
        raise ServeError(f"{name} must be a non-empty list of rows (lists of integers), got "
                         f"{type(value).__name__ if not isinstance(value, list) else 'an empty list'}", name)
    if len(value) > max_rows:
        raise ServeError(f"{name} has {len(value)} rows; this model takes at most {max_rows} per request", name)
    width = None
    for i, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise ServeError(f"{name}[{i}] must be a non-empty list of integers, got "
                             f"{type(row).__name__ if not isinstance(row, list) else 'an empty list'}", name)
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise ServeError(f"{name} is ragged: row 0 has {width} tokens, row {i} has {len(row)} (pad the rows "
                             f"to one length and send an attention_mask)", name)
        for j, t in enumerate(row):
            if type(t) is not int:
                raise ServeError(f"{name}[{i}][{j}] must be an integer, got {type(t).__name__} {t!r}", name)
            if not lo <= t < hi:
                raise ServeError(f"{name}[{i}][{j}] = {t} is outside [{lo}, {hi})", name)
    if width > max_cols:
        raise ServeError(f"{name} rows have {width} tokens; this model takes at most {max_cols}", name)
    return np.asarray(value, dtype=np.int32)


def parse_infer_body(body: bytes, model) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(input_ids int32 [r, S], attention_mask [r, S] or None, what to return) of a /v1/infer body, or a
    ServeError naming the field at fault."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServeError(f"the body is not valid JSON: {e}", "body", status=400) from None
    if not isinstance(data, dict):
        raise ServeError(f"the body must be a JSON object, got {type(data).__name__}", "body", status=400)
    for key in data:
        if key not in _FIELDS:
            raise ServeError(f"unknown field {key!r} (known: {', '.join(_FIELDS)})", str(key))
    if "input_ids" not in data:
        raise ServeError("input_ids is required", "input_ids")
    rows, cols = int(model.max_batch_size), int(model.max_sequence_length)
    ids = _int_matrix(data["input_ids"], "input_ids", 0, int(model.vocab_size), rows, cols)
    mask = None
    if data.get("attention_mask") is not None:
        mask = _int_matrix(data["attention_mask"], "attention_mask", 0, 2, rows, cols)
        if mask.shape != ids.shape:
            raise ServeError(f"attention_mask has shape {list(mask.shape)}, input_ids {list(ids.shape)}",
                             "attention_mask")
        empty = np.flatnonzero(mask.sum(axis=1) == 0)
        if empty.size:
            raise ServeError(f"attention_mask row {int(empty[0])} masks every token", "attention_mask")
        if mask.all():
            mask = None
    ret = data.get("return", "next_tokens")
    if ret not in _RETURNS:
        raise ServeError(f"return must be one of {list(_RETURNS)}, got {ret!r}", "return")
    return ids, mask, ret


def body_limit(model) -> int:
    """The largest /v1/infer body read (bytes): room for full input_ids and attention_mask of max_batch_size rows
    of max_sequence_length tokens at 24 bytes a token, plus 4 KiB. A longer body is refused (413) unread."""
    return 4096 + 2 * 24 * int(model.max_batch_size) * int(model.max_sequence_length)


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, or ServeError 413 (field "body") as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServeError(f"the body has {declared} bytes; this model's requests need at most {limit}", "body", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServeError(f"the body has more than {limit} bytes, more than this model's requests need",
                             "body", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, field, message: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=status)


def warm_up(model):
    """Compile every variant before the server accepts: model.warmup() if the model has one, else one call per
    distinct variant (at the largest batch it serves) without and with a padding mask."""
    if callable(getattr(model, "warmup", None)):
        return model.warmup()
    largest = {}
    for b in range(1, int(model.max_batch_size) + 1):
        largest[model.variant_for(b)] = b
    S = int(model.max_sequence_length)
    for b in largest.values():
        ids = np.zeros((b, S), np.int32)
        model.inference({"input_ids": ids})
        if S > 1:
            mask = np.ones((b, S), np.int32)
            mask[:, 0] = 0
            model.inference({"input_ids": ids, "attention_mask": mask})


# -- metrics ------------------------------------------------------------------------------------------------------
class _MonitorCollector:
    """The monitor's numbers as gauges, read at scrape time (GPU utilisation is never emitted: there is none)."""

    def __init__(self, monitor: GDNProductionMonitor):
        self.monitor = monitor

    def collect(self):
        s = self.monitor.snapshot()
        lat = GaugeMetricFamily("tessera_monitor_latency_seconds", "Request latency percentiles over the monitor's "
                                "window", labels=["quantile"])
        for q, key in (("0.5", "latency_p50"), ("0.95", "latency_p95"), ("0.99", "latency_p99")):
            if s[key] is not None:
                lat.add_metric([q], s[key] / 1000.0)
        yield lat
        for name, key, doc in (
                ("tessera_monitor_throughput_requests_per_second", "throughput", "Answered requests per second"),
                ("tessera_monitor_error_rate", "error_rate", "Failed (5xx) / answered requests over the window"),
                ("tessera_monitor_memory_rss_bytes", "memory_rss_bytes", "Resident memory of the server process"),
                ("tessera_monitor_memory_fraction", "memory_usage", "Resident / physical memory"),
                ("tessera_monitor_mean_batch_size", "mean_batch_size", "Mean rows per batch over the window")):
            if s[key] is not None:
                yield GaugeMetricFamily(name, doc, value=float(s[key]))
        alerts = CounterMetricFamily("tessera_monitor_alerts", "Alerts raised by the monitor", labels=["kind"])
        counts = {}
        for a in list(self.monitor.alerts):
            counts[a.kind] = counts.get(a.kind, 0) + 1
        for kind, n in sorted(counts.items()):
            alerts.add_metric([kind], n)
        yield alerts
        yield CounterMetricFamily("tessera_monitor_latency_anomalies", "Latency outliers (robust z-score)",
                                  value=self.monitor.totals["anomalies"])


def _make_metrics(registry: CollectorRegistry, batcher: Batcher, monitor: GDNProductionMonitor) -> dict:
    m = {
        "requests": Counter("tessera_serve_requests", "Answered /v1/infer requests, by HTTP status", ["status"],
                            registry=registry),
        "latency": Histogram("tessera_serve_request_latency_seconds", "End-to-end /v1/infer latency",
                             buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
                             registry=registry),
        "batch_size": Histogram("tessera_serve_batch_size", "Rows per model batch",
                                buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128), registry=registry),
        "batch_seconds": Histogram("tessera_serve_batch_seconds", "Model time per batch",
                                   buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
                                   registry=registry),
        "errors": Counter("tessera_serve_errors", "Failed requests, by kind (invalid, unavailable, model, "
                          "internal)", ["kind"], registry=registry),
    }
    Gauge("tessera_serve_queue_depth", "Rows waiting for a batch", registry=registry).set_function(
        lambda: batcher.queued_rows)
    Gauge("tessera_serve_in_flight_requests", "Requests in the batch the model is running", registry=registry
          ).set_function(lambda: batcher.in_flight_requests)
    Gauge("tessera_serve_batch_limit", "The adaptive row limit of the next batch", registry=registry
          ).set_function(lambda: batcher.policy.limit)
    registry.register(_MonitorCollector(monitor))
    return m


# -- the app ------------------------------------------------------------------------------------------------------
def create_app(model, monitor: GDNProductionMonitor | None = None, *, warmup: bool = True,
               drain_timeout: float | None = None, **batching_options) -> FastAPI:
    """A FastAPI app serving `model` (module docstring). batching_options are BatchingOptions' fields
    (max_wait_ms, max_batch_size, latency_target_ms, queue_high, ...). A monitor is made if none is given; the
    app starts its sampling thread if it is not running and stops it at shutdown. Shutdown drains: every
    request accepted is answered before the lifespan ends (drain_timeout=None: however long that takes)."""
    try:
        options = BatchingOptions(**batching_options)
    except TypeError:
        known = sorted(BatchingOptions.__dataclass_fields__)
        raise TesseraError(f"create_app: unknown batching option(s) {sorted(batching_options)}; known: {known}"
                           ) from None
    for attr in ("name", "inference", "max_batch_size", "max_sequence_length", "vocab_size", "variant_for"):
        if not hasattr(model, attr):
            raise TesseraError(f"create_app: the model has no {attr!r} (it needs DeployedModel's interface)")
    if monitor is None:
        monitor = GDNProductionMonitor(model.name, {"collection_interval": 5.0})
    registry = CollectorRegistry(auto_describe=True)
    batcher = Batcher(model, options, monitor=monitor, memory_fraction=memory_fraction)
    metrics = _make_metrics(registry, batcher, monitor)

    def on_batch(rows, model_s, failed):
        metrics["batch_size"].observe(rows)
        metrics["batch_seconds"].observe(model_s)
    batcher.on_batch = on_batch
    state = {"status": "starting", "own_monitor": False}
    max_body = body_limit(model)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        if warmup:
            t0 = time.perf_counter()
            await batcher.run_in_worker(warm_up, model)
            _log.info("warmed up %s in %.1f s", model.name, time.perf_counter() - t0)
        state["own_monitor"] = monitor.start_monitoring()
        state["status"] = "ok"
        try:
            yield
        finally:
            state["status"] = "draining"
            _log.info("draining: %d request(s) queued, %d in flight", batcher.queued_requests,
                      batcher.in_flight_requests)
            await batcher.close(timeout=drain_timeout)
            if state["own_monitor"]:
                monitor.stop_monitoring()
            state["status"] = "stopped"

    app = FastAPI(title=f"tessera serve: {model.name}", lifespan=lifespan)
    app.state.batcher, app.state.monitor, app.state.registry = batcher, monitor, registry

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc):
        errs = exc.errors()
        loc = [str(x) for x in (errs[0].get("loc", ()) if errs else ()) if x != "body"]
        return _error(422, loc[0] if loc else None, errs[0].get("msg", str(exc)) if errs else str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc):
        return _error(exc.status_code, None, str(exc.detail))

    @app.post("/v1/infer")
    async def infer(request: Request):
        t0 = time.perf_counter()
        status = 500
        try:
            ids, mask, ret = parse_infer_body(await read_body(request, max_body), model)
            res = await batcher.submit(ids, mask)
            out = {"model": model.name, "variant": res.variant, "batch_rows": res.batch_rows}
            if ret == "logits":
                out["logits"] = res.logits.tolist()
            else:
                out["next_tokens"] = res.next_tokens
            status = 200
            return JSONResponse(out)
        except ServeError as e:
            status = e.status
            kind = "invalid" if status < 500 and status != 503 else ("unavailable" if status == 503 else "model")
            metrics["errors"].labels(kind).inc()
            return _error(status, e.field, str(e))
        except asyncio.CancelledError:
            status = 499                                  # the client went away
            raise
        except Exception as e:  # noqa: BLE001 - a bug here answers 500 in the error shape, never a bare trace
            _log.exception("/v1/infer failed")
            metrics["errors"].labels("internal").inc()
            return _error(500, None, f"internal error: {type(e).__name__}: {e}")
        finally:
            dt = time.perf_counter() - t0
            metrics["requests"].labels(str(status)).inc()
            metrics["latency"].observe(dt)
            if status < 400 or status >= 500:
                monitor.record_request(dt, ok=status < 500)

    @app.get("/health")
    async def health():
        variants = {}
        for b in range(1, int(model.max_batch_size) + 1):
            variants.setdefault(str(model.variant_for(b)), []).append(b)
        return {"status": state["status"], "model": model.name, "queue_depth": batcher.queued_rows,
                "queued_requests": batcher.queued_requests, "in_flight_requests": batcher.in_flight_requests,
                "accepted_requests": batcher.accepted, "completed_requests": batcher.completed,
                "batch_limit": batcher.policy.limit, "max_batch_size": int(model.max_batch_size),
                "max_sequence_length": int(model.max_sequence_length), "vocab_size": int(model.vocab_size),
                "variants": variants}

    @app.get("/metrics")
    async def prometheus_metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
