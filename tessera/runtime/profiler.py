"""`ts.Profiler`: per-kernel times and bytes of every graph launch run inside it (no mlir import).

    with ts.Profiler() as prof:
        model(ids)
    print(prof.table())              # kernel, calls, total / mean ms, bytes moved, GB/s
    prof.summary()["gemm"]           # {"calls", "seconds", "bytes"}

While a profiler is open on a thread, the graph executor synchronises around each launch and times it as it
runs (no extra runs, unlike CompiledFunction.profile, which warms each kernel up first), so the first call
of a new shape includes its compile time in the kernel's first launch. Bytes are the sizes of the views a
launch reads and writes. `ts.synchronize()` waits for the GPU (nothing to wait for on the CPU backend,
whose launches return when done); `ts.get_device_count()` counts the CUDA GPUs CuPy sees (0 without)."""
from __future__ import annotations

import threading
import time

_ACTIVE = threading.local()


def active():
    stack = getattr(_ACTIVE, "stack", None)
    return stack[-1] if stack else None


class Profiler:
    def __init__(self):
        self.records = []          # (label, kernel, seconds, bytes)
        self.wall_seconds = 0.0

    def __enter__(self):
        stack = getattr(_ACTIVE, "stack", None)
        if stack is None:
            stack = _ACTIVE.stack = []
        stack.append(self)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall_seconds += time.perf_counter() - self._t0
        _ACTIVE.stack.remove(self)
        return False

    def record(self, label, kernel, seconds, nbytes):
        self.records.append((label, kernel, float(seconds), int(nbytes)))

    @property
    def kernel_seconds(self):
        return sum(r[2] for r in self.records)

    def summary(self):
        """{kernel: {"calls", "seconds", "bytes", "labels"}} in order of total time (largest first)."""
        out = {}
        for label, kernel, s, b in self.records:
            e = out.setdefault(kernel, {"calls": 0, "seconds": 0.0, "bytes": 0, "labels": set()})
            e["calls"] += 1
            e["seconds"] += s
            e["bytes"] += b
            e["labels"].add(label)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["seconds"]))

    def table(self, top=20):
        rows = [f"{'kernel':40s} {'calls':>6s} {'total ms':>10s} {'mean us':>10s} {'MiB':>9s} {'GB/s':>8s}"]
        for name, e in list(self.summary().items())[:top]:
            gbs = e["bytes"] / e["seconds"] / 1e9 if e["seconds"] > 0 else 0.0
            rows.append(f"{name[:40]:40s} {e['calls']:6d} {e['seconds'] * 1e3:10.3f} "
                        f"{e['seconds'] / e['calls'] * 1e6:10.1f} {e['bytes'] / 2**20:9.2f} {gbs:8.2f}")
        rows.append(f"{len(self.records)} launches, {self.kernel_seconds * 1e3:.3f} ms in kernels, "
                    f"{self.wall_seconds * 1e3:.3f} ms wall")
        return "\n".join(rows)

    def __repr__(self):
        return f"<Profiler {len(self.records)} launches, {self.kernel_seconds * 1e3:.3f} ms>"


def synchronize():
    """`ts.synchronize()`: wait for the current GPU's work (a no-op without CuPy / a GPU)."""
    import sys
    cp = sys.modules.get("cupy")
    if cp is not None:
        try:
            cp.cuda.runtime.deviceSynchronize()
        except Exception:   # CuPy without a usable device: nothing was launched on one
            pass


def get_device_count() -> int:
    """`ts.get_device_count()`: CUDA GPUs visible to CuPy (0 without CuPy or a driver)."""
    try:
        import cupy
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:   # no CuPy, no driver, no device
        return 0
