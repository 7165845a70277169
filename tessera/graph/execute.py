"""Executing a graph plan (tessera.graph.plan builds it): the steps in program order on NumPy (CPU backend
or the PTX emulator) or CuPy / torch CUDA (GPU) arrays, each launch on views of the slots it reads and
writes, intermediates dropped after their last reader (liveness).

MLIR-free on purpose: the same loop runs a plan loaded from disk (tessera.runtime.saved_plan), whose steps
hold saved kernels (`kernel[grid](*views)`) instead of @ts.kernel functions."""
from __future__ import annotations

import numpy as np

from ..errors import CompilationError


def _launch_target(xp) -> str:
    """The target a plan's kernels compile for: NumPy arrays run on the CPU backend (or the emulator's
    target under TESSERA_BACKEND=emu), CuPy arrays on the device's."""
    from .. import knobs
    if xp is np:
        return knobs.emu_arch() if knobs.backend() == "emu" else "cpu"
    from ..runtime.cuda import device_arch
    return device_arch()


def liveness(steps, outputs):
    """(frees, peak): frees[i] = the intermediate slots no step after i reads (dropped after step i, so a
    long graph, e.g. forward + backward, holds only what is still needed); peak = the most bytes of
    intermediates alive at once."""
    def base(slot):
        while slot[0] == "reshape":
            slot = slot[1]
        return slot
    keep = {base(s) for s in outputs}
    last, size = {}, {}
    for i, st in enumerate(steps):
        for slot, shape, dtype in st.outs:
            size[slot] = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        for _, slot in st.args:
            b = base(slot)
            if b[0] == "tmp":
                last[b] = i
    frees = [[] for _ in steps]
    for slot, i in last.items():
        if slot not in keep:
            frees[i].append(slot)
    alive = peak = 0
    for i, st in enumerate(steps):
        alive += sum(size[s] for s, _, _ in st.outs)
        peak = max(peak, alive)
        alive -= sum(size.get(s, 0) for s in frees[i])
    return frees, peak


def run(plan, args, xp, profile=None):
    """Execute with NumPy (CPU backend) or CuPy (GPU) arrays; returns the outputs. With a list as
    `profile`, each step appends (label, kernel name, seconds, bytes read + written). `plan`: anything with
    `constants` ({slot: array}), `steps`, `outputs` and `liveness()`: a Plan, or a loaded SavedPlan."""
    values = {("arg", i): a for i, a in enumerate(args)}
    for slot, arr in plan.constants.items():
        values[slot] = xp.asarray(arr)

    def value(slot):
        if slot[0] == "reshape":
            return value(slot[1]).reshape(slot[2])
        return values[slot]

    def view(spec):
        kind, slot = spec
        v = value(slot)
        torch_like = type(v).__module__.startswith("torch")
        if isinstance(kind, tuple) and kind[0] == "perm":  # a strided view, no copy: the kernel does the copy
            return v.permute(*kind[1]) if torch_like else v.transpose(kind[1])
        if isinstance(kind, tuple) and kind[0] == "slice":
            return v[(slice(None),) * kind[1] + (slice(kind[2], kind[3]),)]
        if isinstance(kind, tuple) and kind[0] == "index":
            return v[kind[1]]  # a strided view: the kernel does the copy
        if isinstance(kind, tuple) and kind[0] == "bcast":  # zero strides: the kernel does the copy
            return v.reshape(kind[1]).expand(*kind[2]) if torch_like else xp.broadcast_to(v.reshape(kind[1]), kind[2])
        if kind == "flat":
            return v.reshape(-1)
        if kind == "col":
            return v.reshape(-1, 1)
        if kind == "rows":   # a 0-d array is one row of one element
            return v.reshape(-1, v.shape[-1] if v.ndim else 1) if v.ndim != 2 else v
        if kind == "batch3":
            return v.reshape(-1, v.shape[-2], v.shape[-1])
        return v

    import time
    from ..runtime.profiler import active
    profiler = active()
    target = _launch_target(xp) if any(st.by_target for st in plan.steps) else None
    frees, _ = plan.liveness()
    if getattr(plan, "keep_intermediates", False):   # CompilationConfig(enable_memory_optimization=False)
        frees = [[] for _ in frees]
    for i, st in enumerate(plan.steps):
        if st.kernel is None:   # a host step (a collective): Python on the arrays, no launch
            t0 = time.perf_counter()
            values[st.outs[0][0]] = st.host(*[value(slot) for _, slot in st.args])
            for slot in frees[i]:
                del values[slot]
            if profile is not None:
                profile.append((st.label, "host", time.perf_counter() - t0, 0))
            if profiler is not None:
                profiler.record(st.label, "host", time.perf_counter() - t0, 0)
            continue
        for slot, shape, dtype in st.outs:
            values[slot] = xp.empty(shape, dtype=dtype)
        views = [view(a) for a in st.args]
        grid, ce = st.launch_config(target)
        for slot in frees[i]:   # this step holds its views; nothing later reads these
            del values[slot]
        if profile is None and profiler is None:
            st.kernel[grid](*views, **ce)
            continue
        if profile is None:   # a ts.Profiler: this launch timed as it runs
            _sync(xp)
            t0 = time.perf_counter()
            st.kernel[grid](*views, **ce)
            _sync(xp)
            profiler.record(st.label, getattr(st.kernel, "__name__", st.label), time.perf_counter() - t0,
                            sum(v.nbytes for v in views))
            continue
        st.kernel[grid](*views, **ce)  # compile / warm up outside the timing
        _sync(xp)
        t0 = time.perf_counter()
        st.kernel[grid](*views, **ce)
        _sync(xp)
        profile.append((st.label, st.kernel.__name__, time.perf_counter() - t0, sum(v.nbytes for v in views)))
    outs = [value(s) for s in plan.outputs]
    # `value` refers to itself through its closure, a cycle that keeps `values` (every array of the run) alive
    # until the garbage collector runs: each call then maps its outputs afresh, and page faults cost more
    # than the kernels (a 16 MB softmax: 72% of its time)
    values.clear()
    if any(o is None for o in outs):
        raise CompilationError("a graph output was not computed")
    return outs


def _sync(xp):
    if xp is not np:
        xp.cuda.runtime.deviceSynchronize()
