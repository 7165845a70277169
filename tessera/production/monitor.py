"""Production monitoring of a served model (seed 002's GDNProductionMonitor), NumPy and the standard library only.

    monitor = GDNProductionMonitor("gdn-chat", {"collection_interval": 30})
    monitor.record_request(latency_s=0.012)             # the server feeds it (tessera.serve does)
    monitor.record_batch(rows=8, model_s=0.020, queue_depth=3)
    monitor.start_monitoring()                          # a daemon thread: collect_once() every interval
    monitor.generate_performance_report(time_range_hours=1)

What it computes over the last `window_s` seconds (`snapshot()`): request latency p50 / p95 / p99 (ms),
throughput (answered requests per second), error rate (failed / answered; a failure is the server's fault, a
5xx: a client's malformed request is not an error of the service), mean batch size, queue depth, the process's
resident memory (bytes, and as a fraction of the machine's; read from /proc/self/statm, or the peak from
`resource` where /proc is missing). GPU utilisation is None: nothing here reads a GPU's counters, and a CPU-only
server has none; the report says None rather than a made-up number.

Alerts (`check_performance_degradation`, run on every collection), each to `self.alerts`, the
"tessera.production" logger and `alert_callback(alert)` if configured:
  - latency: p95 more than `latency_increase` (0.20) above the baseline p95  -> warning
  - throughput: more than `throughput_decrease` (0.15) below the baseline     -> warning
  - error rate above `error_rate_threshold` (0.01)                            -> critical
The baseline is the mean of the previous `baseline_samples` (10) collections, as in the seed, unless
`set_baseline()` fixed one. Latency / throughput are judged only when the window holds at least
`min_window_requests` (10) requests: an idle server has no latency and its throughput falls for no fault.

Anomalies (`detect_anomalies`): each request latency recorded since the last check is scored with the robust
z-score of Iglewicz and Hoaglin against the `anomaly_window` (200) latencies before it:
    z = 0.6745 * (x - median) / MAD,   MAD = median(|x_i - median|)
and flagged when z > `anomaly_threshold` (3.5; slow outliers only). When MAD is 0 (half the latencies equal),
z = (x - median) / (1.2533 * mean absolute deviation) is used instead; when that is 0 too, any different value scores infinity.
Scoring needs `anomaly_min_samples` (20) reference latencies. One alert per check sums the outliers found.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

_log = logging.getLogger("tessera.production")

DEFAULTS = {
    "collection_interval": 30.0,     # seconds between samples of the monitoring thread
    "window_s": 60.0,                # the sliding window latencies / throughput / errors are taken over
    "history": 1000,                 # collections kept (performance_history)
    "baseline_samples": 10,          # collections the baseline is the mean of
    "latency_increase": 0.20,        # p95 above baseline by more than this fraction -> alert
    "throughput_decrease": 0.15,     # throughput below baseline by more than this fraction -> alert
    "error_rate_threshold": 0.01,    # error rate above this -> critical alert
    "min_window_requests": 10,       # requests the window needs before latency / throughput are judged
    "anomaly_threshold": 3.5,        # robust z-score above which a latency is an anomaly
    "anomaly_window": 200,           # reference latencies the median / MAD are taken over
    "anomaly_min_samples": 20,       # reference latencies needed before scoring
    "high_latency_ms": 100.0,        # the report recommends latency work above this p95
    "high_memory_fraction": 0.85,    # ... and memory work above this resident fraction
    "alert_callback": None,          # callable(Alert), called for every alert
}


@dataclass
class Alert:
    severity: str          # "info" | "warning" | "critical"
    kind: str              # "latency" | "throughput" | "error_rate" | "latency_anomaly"
    message: str
    metrics: dict = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)


def robust_z_scores(values, reference) -> np.ndarray:
    """The robust z-score of each value against `reference` (module docstring)."""
    ref = np.asarray(reference, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    med = np.median(ref)
    dev = x - med
    mad = np.median(np.abs(ref - med))
    if mad > 0:
        return 0.6745 * dev / mad
    mean_ad = np.mean(np.abs(ref - med))       # MAD is 0: the mean absolute deviation stands in
    if mean_ad > 0:
        return dev / (1.2533 * mean_ad)
    return np.where(dev == 0, 0.0, np.copysign(np.inf, dev))


def resident_memory_bytes() -> int | None:
    """The process's resident set size now (/proc/self/statm), else its peak (resource), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return None


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def memory_fraction() -> float | None:
    """Resident memory as a fraction of the machine's physical memory (None if either is unknown)."""
    rss, total = resident_memory_bytes(), physical_memory_bytes()
    return rss / total if rss and total else None


class GDNProductionMonitor:
    """Metrics, threshold alerts, latency anomalies and reports for one served model (module docstring).
    Thread-safe: the server records from its event loop, the monitoring thread samples."""

    def __init__(self, model_name: str, monitoring_config: dict | None = None):
        unknown = set(monitoring_config or {}) - set(DEFAULTS) - {"delta_collection_interval"}
        if unknown:
            from ..errors import TesseraError
            raise TesseraError(f"GDNProductionMonitor: unknown monitoring_config keys {sorted(unknown)} "
                               f"(known: {sorted(DEFAULTS)})")
        self.model_name = model_name
        self.config = {**DEFAULTS, **(monitoring_config or {})}
        self.performance_history = collections.deque(maxlen=int(self.config["history"]))
        self.delta_utilization_history = collections.deque(maxlen=int(self.config["history"]))  # no source yet
        self.alerts: collections.deque = collections.deque(maxlen=1000)
        self.anomalies: collections.deque = collections.deque(maxlen=1000)   # (timestamp, latency_ms, z)
        self.baseline: dict | None = None
        self._lock = threading.RLock()
        self._requests = collections.deque()     # (t, latency_ms, ok) within window_s
        self._batches = collections.deque()      # (t, rows, model_ms) within window_s
        self._latency_ref = collections.deque(maxlen=int(self.config["anomaly_window"]))
        self._latency_new = collections.deque(maxlen=10000)   # latencies since the last anomaly check
        self._queue_depth = 0
        self.totals = {"requests": 0, "errors": 0, "batches": 0, "rows": 0, "anomalies": 0}
        self._started = time.time()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- what the server feeds ---------------------------------------------------------------------------------
    def record_request(self, latency_s: float, ok: bool = True):
        """One answered request: its end-to-end latency (seconds) and whether it succeeded (not a 5xx)."""
        now = time.time()
        ms = float(latency_s) * 1000.0
        with self._lock:
            self._requests.append((now, ms, bool(ok)))
            self._latency_new.append((now, ms))
            self.totals["requests"] += 1
            self.totals["errors"] += 0 if ok else 1
            self._prune(now)

    def record_error(self, kind: str = "error"):
        """A failure not tied to a timed request (counted in the error rate as a failed request)."""
        with self._lock:
            self._requests.append((time.time(), None, False))
            self.totals["requests"] += 1
            self.totals["errors"] += 1

    def record_batch(self, rows: int, model_s: float, queue_depth: int | None = None, failed: bool = False):
        now = time.time()
        with self._lock:
            self._batches.append((now, int(rows), float(model_s) * 1000.0))
            self.totals["batches"] += 1
            self.totals["rows"] += int(rows)
            if queue_depth is not None:
                self._queue_depth = int(queue_depth)
            self._prune(now)

    def record_queue_depth(self, depth: int):
        with self._lock:
            self._queue_depth = int(depth)

    def _prune(self, now: float):
        cut = now - float(self.config["window_s"])
        for dq in (self._requests, self._batches):
            while dq and dq[0][0] < cut:
                dq.popleft()

    # -- the seed's getters ------------------------------------------------------------------------------------
    def _latencies(self) -> list:
        return [ms for _, ms, _ in self._requests if ms is not None]

    def get_latency_percentile(self, p: float) -> float | None:
        """The p-th percentile of request latency (ms) in the window; None with no requests."""
        with self._lock:
            self._prune(time.time())
            lat = self._latencies()
        return float(np.percentile(lat, p)) if lat else None

    def get_throughput(self) -> float:
        """Answered requests per second over the window (or since start, if that is shorter)."""
        now = time.time()
        with self._lock:
            self._prune(now)
            n = len(self._requests)
        span = min(float(self.config["window_s"]), max(now - self._started, 1e-3))
        return n / span

    def get_error_rate(self) -> float:
        with self._lock:
            n = len(self._requests)
            bad = sum(1 for _, _, ok in self._requests if not ok)
        return bad / n if n else 0.0

    def get_memory_usage(self) -> float | None:
        """Resident memory as a fraction of the machine's (the seed's memory_usage, compared with 0.85)."""
        return memory_fraction()

    def get_gpu_utilization(self) -> float | None:
        """None: no GPU counters are read (and a CPU server has no GPU). Not a fabricated 0."""
        return None

    def snapshot(self) -> dict:
        """The current metrics (the seed's dict plus what the server adds); None where there is no data."""
        now = time.time()
        with self._lock:
            self._prune(now)
            lat = self._latencies()
            n = len(self._requests)
            rows = [b[1] for b in self._batches]
            model_ms = [b[2] for b in self._batches]
            qd = self._queue_depth
        pct = np.percentile(lat, [50, 95, 99]) if lat else [None] * 3
        return {
            "timestamp": now,
            "latency_p50": None if pct[0] is None else float(pct[0]),
            "latency_p95": None if pct[1] is None else float(pct[1]),
            "latency_p99": None if pct[2] is None else float(pct[2]),
            "throughput": self.get_throughput(),
            "memory_usage": self.get_memory_usage(),
            "memory_rss_bytes": resident_memory_bytes(),
            "gpu_utilization": self.get_gpu_utilization(),
            "error_rate": self.get_error_rate(),
            "window_requests": n,
            "mean_batch_size": float(np.mean(rows)) if rows else None,
            "mean_model_ms": float(np.mean(model_ms)) if model_ms else None,
            "queue_depth": qd,
        }

    # -- collection, alerts, anomalies -------------------------------------------------------------------------
    def collect_once(self) -> dict:
        """One sample: snapshot, anomaly check, degradation check, then into performance_history."""
        metrics = self.snapshot()
        self.detect_anomalies()
        self.check_performance_degradation(metrics)
        with self._lock:
            self.performance_history.append(metrics)
        return metrics

    def set_baseline(self, latency_p95: float | None = None, throughput: float | None = None):
        """Fix the baseline the degradation alerts compare with (default: the mean of recent collections)."""
        self.baseline = {"latency_p95": latency_p95, "throughput": throughput}

    def _baseline(self) -> dict | None:
        if self.baseline is not None:
            return self.baseline
        k = int(self.config["baseline_samples"])
        with self._lock:
            recent = list(self.performance_history)[-k:]
        if len(recent) < k:
            return None          # the seed's "need more history"

        def mean(key):
            vals = [m[key] for m in recent if m.get(key) is not None and m.get("window_requests", 1) > 0]
            return float(np.mean(vals)) if vals else None
        return {"latency_p95": mean("latency_p95"), "throughput": mean("throughput")}

    def check_performance_degradation(self, current: dict) -> list:
        """The seed's three threshold rules (module docstring); returns the alerts raised."""
        c, raised = self.config, []
        if current.get("window_requests", 0) > 0 and current["error_rate"] > c["error_rate_threshold"]:
            raised.append(self._alert("critical", "error_rate", f"High error rate: {current['error_rate']:.2%}",
                                      current))
        base = self._baseline()
        if base is None or current.get("window_requests", 0) < c["min_window_requests"]:
            return raised
        bl, cl = base.get("latency_p95"), current.get("latency_p95")
        if bl and cl is not None:
            inc = (cl - bl) / bl
            if inc > c["latency_increase"]:
                raised.append(self._alert("warning", "latency", f"Latency increased by {inc:.1%} "
                                          f"(p95 {cl:.1f} ms vs baseline {bl:.1f} ms)", current))
        bt, ct = base.get("throughput"), current.get("throughput")
        if bt and ct is not None:
            dec = (bt - ct) / bt
            if dec > c["throughput_decrease"]:
                raised.append(self._alert("warning", "throughput", f"Throughput decreased by {dec:.1%} "
                                          f"({ct:.1f}/s vs baseline {bt:.1f}/s)", current))
        return raised

    def detect_anomalies(self) -> list:
        """Score the latencies recorded since the last call (robust z-score, module docstring); returns the
        anomalies found as (timestamp, latency_ms, z) and raises one alert if there are any."""
        with self._lock:
            new = list(self._latency_new)
            self._latency_new.clear()
            found = []
            for t, ms in new:
                if len(self._latency_ref) >= int(self.config["anomaly_min_samples"]):
                    z = float(robust_z_scores([ms], self._latency_ref)[0])
                    if z > float(self.config["anomaly_threshold"]):
                        found.append((t, ms, z))
                self._latency_ref.append(ms)
            self.anomalies.extend(found)
            self.totals["anomalies"] += len(found)
        if found:
            worst = max(found, key=lambda a: a[2])
            self._alert("warning", "latency_anomaly",
                        f"{len(found)} latency outlier(s); worst {worst[1]:.1f} ms (robust z {worst[2]:.1f} > "
                        f"{self.config['anomaly_threshold']})", {"count": len(found), "worst_ms": worst[1]})
        return found

    def _alert(self, severity: str, kind: str, message: str, metrics: dict) -> Alert:
        alert = Alert(severity, kind, f"[{self.model_name}] {message}", dict(metrics))
        with self._lock:
            self.alerts.append(alert)
        level = {"critical": logging.CRITICAL, "warning": logging.WARNING}.get(severity, logging.INFO)
        _log.log(level, alert.message)
        cb = self.config.get("alert_callback")
        if cb is not None:
            try:
                cb(alert)
            except Exception:  # noqa: BLE001 - a broken callback must not stop monitoring
                _log.exception("the alert callback failed")
        return alert

    # -- the monitoring thread ---------------------------------------------------------------------------------
    def start_monitoring(self) -> bool:
        """Start the daemon thread that calls collect_once() every collection_interval seconds (False if it
        already runs)."""
        if self._thread is not None and self._thread.is_alive():
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"tessera-monitor-{self.model_name}",
                                        daemon=True)
        self._thread.start()
        return True

    def stop_monitoring(self, timeout: float = 5.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def monitoring(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self):
        interval = float(self.config["collection_interval"])
        while not self._stop.wait(interval):
            try:
                self.collect_once()
            except Exception:  # noqa: BLE001 - keep sampling; the seed waits longer after an error
                _log.exception("collecting performance metrics failed")
                if self._stop.wait(2 * interval):
                    break

    # -- reports -----------------------------------------------------------------------------------------------
    def generate_performance_report(self, time_range_hours: float = 24) -> dict:
        """The seed's report over the collections of the last time_range_hours."""
        cutoff = time.time() - time_range_hours * 3600
        with self._lock:
            perf = [m for m in self.performance_history if m["timestamp"] > cutoff]
            delta = [m for m in self.delta_utilization_history if m["timestamp"] > cutoff]
            totals = dict(self.totals)
            alerts = len(self.alerts)
        if not perf:
            return {"error": "No data available for the specified time range"}

        def mean(key):
            vals = [m[key] for m in perf if m.get(key) is not None]
            return float(np.mean(vals)) if vals else None
        return {
            "model_name": self.model_name,
            "time_range_hours": time_range_hours,
            "samples": len(perf),
            "total_requests": totals["requests"],
            "performance": {
                "avg_latency_ms": mean("latency_p50"),
                "p95_latency_ms": mean("latency_p95"),
                "p99_latency_ms": mean("latency_p99"),
                "avg_throughput": mean("throughput"),
                "avg_memory_usage": mean("memory_usage"),
                "avg_memory_rss_bytes": mean("memory_rss_bytes"),
                "avg_gpu_utilization": mean("gpu_utilization"),   # None on a CPU server
                "error_rate": mean("error_rate"),
                "avg_batch_size": mean("mean_batch_size"),
            },
            "delta_efficiency": {},   # no delta-connection counters are exported by the deployed model yet
            "alerts": alerts,
            "anomalies": totals["anomalies"],
            "trends": self.analyze_trends(perf, delta),
            "recommendations": self.generate_recommendations(perf, delta),
        }

    def analyze_trends(self, perf_data: list, delta_data: list | None = None) -> dict:
        """Least-squares slopes (np.polyfit, degree 1) of p95 latency (ms/s) and throughput (1/s²) over time."""
        pts = [m for m in perf_data if m.get("latency_p95") is not None]
        if len(pts) < 10:
            return {"insufficient_data": True}
        t = np.array([m["timestamp"] for m in pts], dtype=np.float64)
        t = t - t[0]
        if np.ptp(t) == 0:
            return {"insufficient_data": True}
        out = {}
        for key, name in (("latency_p95", "latency_trend"), ("throughput", "throughput_trend")):
            slope = float(np.polyfit(t, np.array([m[key] for m in pts], dtype=np.float64), 1)[0])
            out[name] = {"slope": slope, "direction": "increasing" if slope > 0 else "decreasing",
                         "magnitude": abs(slope)}
        return out

    def generate_recommendations(self, perf_data: list, delta_data: list | None = None) -> list:
        recs = []
        lat = [m["latency_p95"] for m in perf_data if m.get("latency_p95") is not None]
        mem = [m["memory_usage"] for m in perf_data if m.get("memory_usage") is not None]
        if lat and np.mean(lat) > self.config["high_latency_ms"]:
            recs.append({"type": "latency_optimization", "priority": "high", "description": "High latency detected",
                         "actions": ["Lower max_batch_size or max_wait_ms", "Compile smaller batch variants",
                                     "Serve on a GPU target"]})
        if mem and np.mean(mem) > self.config["high_memory_fraction"]:
            recs.append({"type": "memory_optimization", "priority": "medium",
                         "description": "High memory usage detected",
                         "actions": ["Reduce batch size", "Load fewer variants"]})
        errs = [m["error_rate"] for m in perf_data]
        if errs and np.mean(errs) > self.config["error_rate_threshold"]:
            recs.append({"type": "reliability", "priority": "high", "description": "Requests are failing",
                         "actions": ["Check the server log for the model's errors"]})
        return recs
