"""The launch ABI of a CPU-compiled kernel, shared by the two ways it runs: MLIR's ExecutionEngine (the
JIT, tessera.backends.cpu.runner) and a saved shared object loaded with ctypes (tessera.runtime.cpu_object).

Both call the same packed entry, `_mlir__mlir_ciface_<name>_range(void **args)` (what the engine's `invoke`
would call): one pointer per kernel argument (to a pointer to a strided memref descriptor for tensors, to the
C value for scalars), then three pointers to the i64 grid sizes, two to the i64 first and last linear program
ids to run, then, when the kernel can record an integer fault (tessera-lower-tile-to-cpu's
`tessera.int_faults`), a pointer to a pointer to the descriptor of a 1-element i64 fault flag. A plan saved by
an older tessera has only `<name>_grid` (no first and last: the whole grid) and runs on one thread.

A launch of n programs runs on T = min(TESSERA_CPU_THREADS, n) threads: [0, n) in T contiguous chunks, the
calling thread running the first and a shared pool the others, all at once (a ctypes call releases the GIL).
T is lowered so that a chunk gets at least MIN_CHUNK_S of work, by the CPU time a program of the kernel took
in its last launch: a small launch stays in the calling thread. Programs write disjoint outputs (as on a GPU),
so the results do not depend on T. Each chunk has its own fault flag, which keeps the first fault of its
chunk; the launch reports the lowest chunk's, so the fault named is the first in program order whatever T is.
MLIR-free: a loaded plan packs its launches with this module without the compiler."""
from __future__ import annotations

import ctypes
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .. import knobs
from ..errors import LaunchError
from .prepared import CPU_GRID_LIMITS, check_grid, check_scalar

SCALAR_C = {"index": ctypes.c_int64, "i64": ctypes.c_int64, "i32": ctypes.c_int32, "i16": ctypes.c_int16,
            "i8": ctypes.c_int8, "bool": ctypes.c_bool, "f32": ctypes.c_float, "f64": ctypes.c_double}
ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)   # a packed entry: void (void **args)
# A launch takes another thread only for this much of its programs' time: handing a chunk to a pool thread and
# back costs some 30-100 us (a thread wake-up each way), more than a small kernel runs in all.
MIN_CHUNK_S = 100e-6
_DESC_TYPES: dict[int, type] = {}


def range_entry(name: str) -> str:
    """A kernel's `<name>_range` entry as ExecutionEngine.raw_lookup names it; its packed entry, the symbol in
    a saved object, is this with the engine's `_mlir_` in front."""
    return f"_mlir_ciface_{name}_range"


def _desc_type(rank: int):
    if rank not in _DESC_TYPES:
        class Desc(ctypes.Structure):
            _fields_ = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p), ("offset", ctypes.c_int64),
                        ("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
        _DESC_TYPES[rank] = Desc
    return _DESC_TYPES[rank]


def memref_descriptor(a: np.ndarray):
    """A strided memref descriptor viewing `a` in place (any strides that are whole elements)."""
    item = a.itemsize
    if any(s % item for s in a.strides):
        raise LaunchError("array strides must be multiples of the element size")
    ptr = a.__array_interface__["data"][0]
    D = _desc_type(a.ndim)
    return D(ptr, ptr, 0, (ctypes.c_int64 * a.ndim)(*a.shape),
             (ctypes.c_int64 * a.ndim)(*[s // item for s in a.strides]))


_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def _start(calls, workers: int):
    """Submit `calls` [(fn, *args)] to the shared pool of `workers` threads (made, or remade when
    TESSERA_CPU_THREADS changed). Under the lock, so a resize never shuts down a pool being submitted to."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)   # what was submitted to it still runs
            _pool, _pool_workers = ThreadPoolExecutor(workers, thread_name_prefix="tessera-cpu"), workers
        return [_pool.submit(*c) for c in calls]


def _after_fork():
    """A forked child has none of the pool's threads, and the lock may have been held by one of the parent's."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _run_chunk(fn, packed, launch):
    fn(packed)   # `launch` holds the arrays the pointers point into until the chunk has run


class _Launch:
    """One set of arguments packed for a launcher: the argument and grid pointers are shared, and each chunk of
    programs has its own pointer array with its own [first, last) and fault flag, made once and kept (a
    prepared launch re-splits them when the grid or the thread count changes)."""

    def __init__(self, launcher, args):
        self.launcher = launcher
        self.keep, self.head = launcher.pack(args)
        self.grid = (ctypes.c_int64 * 3)()
        self.head += [ctypes.addressof(self.grid) + 8 * k for k in range(3)]
        self.chunks = []   # [(bounds, fault flag or None, packed pointer array)]
        self.split, self.threads = None, 1

    def _new_chunk(self):
        bounds = (ctypes.c_int64 * 2)()
        ptrs = list(self.head)
        if self.launcher.ranged:
            ptrs += [ctypes.addressof(bounds), ctypes.addressof(bounds) + 8]
        flag = None
        if self.launcher.faults:   # the kernel's integer fault flag comes last
            flag = np.zeros(1, np.int64)
            d = memref_descriptor(flag)
            p = ctypes.pointer(d)
            self.keep += [flag, d, p]
            ptrs.append(ctypes.addressof(p))
        return bounds, flag, (ctypes.c_void_p * len(ptrs))(*ptrs)

    def _split(self, grid, limit):
        g = check_grid(grid, CPU_GRID_LIMITS)
        n = g[0] * g[1] * g[2]
        if n > CPU_GRID_LIMITS[0]:
            raise LaunchError(f"the grid {g} has {n} programs, more than the CPU backend counts in i64 "
                              f"({CPU_GRID_LIMITS[0]})")
        threads = min(limit, n) if self.launcher.ranged else min(1, n)
        per_program = self.launcher.program_s
        if per_program is not None:
            threads = max(min(1, n), min(threads, int(n * per_program / MIN_CHUNK_S)))
        if (g, threads) == self.split:
            return
        self.grid[:] = g
        while len(self.chunks) < threads:
            self.chunks.append(self._new_chunk())
        for i, (bounds, _, _) in enumerate(self.chunks[:threads]):
            bounds[0], bounds[1] = i * n // threads, (i + 1) * n // threads
        self.split, self.threads = (g, threads), threads

    def __call__(self, grid):
        limit = knobs.cpu_threads()
        self._split(grid, limit)
        fn, chunks = self.launcher.fn, self.chunks[:self.threads]
        if not chunks:   # an empty grid
            return
        futures = _start([(_run_chunk, fn, c[2], self) for c in chunks[1:]], limit - 1) if len(chunks) > 1 else []
        try:
            # CPU time, not wall time: waiting for the GIL after the call, or for a core on a busy machine, is no
            # work of the kernel's, and counted would keep a small kernel on several threads
            t0 = time.thread_time()
            fn(chunks[0][2])
            first, last = chunks[0][0]
            self.launcher.program_s = (time.thread_time() - t0) / (last - first)
        finally:
            if futures:
                wait(futures)   # every chunk is done with the arrays before anything returns or raises
        for f in futures:
            f.result()
        self.launcher.check_faults([c[1] for c in chunks])


class PackedEntryLauncher:
    """Packs arguments for a kernel's packed entry, runs a launch's programs over threads and reports its
    integer faults. Subclasses set `fn` (the entry, a ctypes function of one void** that releases the GIL) and
    `ranged` (False for an old `<name>_grid` entry: no [first, last), one thread). `faults`: one (what, file,
    line, col) per fault code (code k is faults[k - 1]), so a LaunchError names the user's source line."""

    grid_limits = CPU_GRID_LIMITS
    fn = None
    ranged = True
    program_s = None   # the CPU time a program took in the last launch (in the calling thread's chunk)

    def __init__(self, name: str, arg_abi: list[dict], faults):
        self.name, self.abi = name, arg_abi
        self.faults = [tuple(f) for f in faults]

    def check_faults(self, flags):
        """After a launch: the first integer fault a program recorded (the lowest chunk's: chunks are in program
        order), as a LaunchError at its division. The flags are cleared for the next launch."""
        codes = [int(f[0]) for f in flags if f is not None and f[0]]
        if not codes:
            return
        for f in flags:
            f[0] = 0
        what, file, line, col = self.faults[codes[0] - 1]
        raise LaunchError(f"{what} in kernel '{self.name}' at run time: the launch ran to its end with the GPU's "
                          "results (x // 0 == -1, x % 0 == x, INT_MIN // -1 == INT_MIN) in its outputs",
                          file, line, col)

    def pack(self, args):
        """(what must stay alive, the address per argument that the packed entry's pointer array holds)."""
        keep, ptrs = [], []
        for spec, a in zip(self.abi, args):
            if spec["kind"] == "tensor_list":   # its table, in host memory (runtime.tensor_list)
                from .tensor_list import table
                keep.append(a)
                a = table(spec, a)
            if spec["kind"] in ("tensor", "tensor_list"):
                d = memref_descriptor(a)
                p = ctypes.pointer(d)
                keep += [a, d, p]
                ptrs.append(ctypes.addressof(p))
            else:
                check_scalar(spec, a)
                c = SCALAR_C[spec["abi"]](a)
                keep.append(c)
                ptrs.append(ctypes.addressof(c))
        return keep, ptrs

    def launch(self, grid, args):
        _Launch(self, args)(grid)

    def prepare(self, grid, args):
        """The pointer arrays built once; a call re-splits them only when the grid or the thread count changed."""
        from .prepared import PyPrepared
        packed = _Launch(self, args)
        return PyPrepared(packed, tuple(grid), packed.keep)
