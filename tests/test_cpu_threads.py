"""CPU launches split over threads (issue 17, deliverable 3): a grid's linear program ids [0, n) in contiguous
chunks run at once through each kernel's `<name>_range` entry (tessera.runtime.cpu_launch). The results are
bitwise those of one thread, and so is the integer fault a launch reports, for the JIT, prepared launches and
saved objects alike; the GIL is released while a kernel runs."""
from __future__ import annotations

import ctypes
import gc
import json
import os
import threading
import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import knobs, tile
from tessera.runtime import cache, cpu_launch, load
from tessera.runtime.cpu_launch import PackedEntryLauncher

bf16 = ml_dtypes.bfloat16
THREADS = ("1", "2", "3", "7")


@pytest.fixture
def chunks(monkeypatch):
    """Every launch split as far as TESSERA_CPU_THREADS allows (however short its programs); yields the
    number of chunks each launch handed to the pool."""
    handed = []
    start = cpu_launch._start

    def counting(calls, workers):
        handed.append(len(calls))
        return start(calls, workers)
    monkeypatch.setattr(cpu_launch, "MIN_CHUNK_S", 1e-30)
    monkeypatch.setattr(cpu_launch, "_start", counting)
    return handed


@ts.kernel
def axpy(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], a: float,
         BLOCK: ts.constexpr = 16):
    i = tile.program_id(0) * BLOCK
    tile.store(out[i:i + BLOCK], tile.exp(tile.load(x[i:i + BLOCK])) * a + tile.load(y[i:i + BLOCK]))


@ts.kernel
def ids3(out: tile.Tensor["Z", "Y", "X", ts.i32], BX: ts.constexpr = 4):
    px, py, pz = tile.program_id(0), tile.program_id(1), tile.program_id(2)
    lanes = tile.arange(0, BX) + px * BX
    tile.store(out[pz, py, px * BX:px * BX + BX], lanes + py * 1000 + pz * 100000 + tile.num_programs(1) * 10)


@ts.kernel
def row_stats(x: tile.Tensor["M", "N", ts.f32], sums: tile.Tensor["M", ts.f32], maxs: tile.Tensor["M", ts.f32],
              BM: ts.constexpr = 4, BN: ts.constexpr = 64):
    r = tile.program_id(0) * BM
    v = tile.load(x[r:r + BM, 0:BN])
    tile.store(sums[r:r + BM], tile.sum(v, axis=1))
    tile.store(maxs[r:r + BM], tile.max(v, axis=1))


@ts.kernel
def gemm(a: tile.Tensor["M", "K", ts.f32], b: tile.Tensor["K", "N", ts.f32], c: tile.Tensor["M", "N", ts.f32],
         BM: ts.constexpr = 16, BN: ts.constexpr = 16, BK: ts.constexpr = 16):
    pm, pn = tile.program_id(0), tile.program_id(1)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        acc = tile.mma(tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK]), tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN]),
                       acc)
    tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)


@ts.kernel
def batched_bf16(a: tile.Tensor["B", "M", "K", ts.bf16], b: tile.Tensor["B", "K", "N", ts.bf16],
                 c: tile.Tensor["B", "M", "N", ts.bf16], BM: ts.constexpr = 16, BN: ts.constexpr = 16,
                 BK: ts.constexpr = 16):
    pm, pn, pb = tile.program_id(0), tile.program_id(1), tile.program_id(2)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in tile.range(0, a.shape[2], BK):
        acc = tile.mma(tile.load(a[pb, pm * BM:pm * BM + BM, k0:k0 + BK]),
                       tile.load(b[pb, k0:k0 + BK, pn * BN:pn * BN + BN]), acc)
    tile.store(c[pb, pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], tile.cast(acc, ts.bf16))


def _cases(rng):
    """(name, kernel, grid, args, the indices of the outputs, a NumPy reference of them)."""
    n = 1000                                       # 63 programs, the last one partial
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    z, yy, xx = 3, 5, 7                            # 105 programs; X = 28 lanes
    want_ids = (np.arange(4 * xx)[None, None, :] + 1000 * np.arange(yy)[None, :, None]
                + 100000 * np.arange(z)[:, None, None] + 10 * yy).astype(np.int32)
    s = rng.standard_normal((37, 64)).astype(np.float32)   # 10 programs, the last one 1 row
    a, b = rng.standard_normal((45, 40)).astype(np.float32), rng.standard_normal((40, 50)).astype(np.float32)
    ab, bb = rng.standard_normal((3, 33, 20)).astype(bf16), rng.standard_normal((3, 20, 35)).astype(bf16)
    return [
        ("1-d", axpy, (63,), [x, y, np.zeros(n, np.float32), 0.5], [2], [np.exp(x) * 0.5 + y]),
        ("3-d", ids3, (xx, yy, z), [np.zeros((z, yy, 4 * xx), np.int32)], [0], [want_ids]),
        ("reduction", row_stats, (10,), [s, np.zeros(37, np.float32), np.zeros(37, np.float32)], [1, 2],
         [s.sum(axis=1), s.max(axis=1)]),
        ("2-d mma", gemm, (3, 4), [a, b, np.zeros((45, 50), np.float32)], [2], [a @ b]),
        ("3-d mma bf16", batched_bf16, (3, 3, 3), [ab, bb, np.zeros((3, 33, 35), bf16)], [2],
         [(ab.astype(np.float32) @ bb.astype(np.float32)).astype(bf16)]),
    ]


def test_results_are_bitwise_those_of_one_thread(chunks, monkeypatch):
    got = {}
    for threads in THREADS:
        monkeypatch.setenv("TESSERA_CPU_THREADS", threads)
        for name, k, grid, args, outs, _ in _cases(np.random.default_rng(7)):
            k[grid](*args)
            got[threads, name] = [args[i] for i in outs]
    for name, _, _, _, _, want in _cases(np.random.default_rng(7)):
        for w, g in zip(want, got["1", name]):
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=2e-2, atol=2e-2, err_msg=name)
        for threads in THREADS[1:]:
            for g1, g in zip(got["1", name], got[threads, name]):
                assert g.dtype == g1.dtype and np.array_equal(g.view(np.uint8), g1.view(np.uint8)), (name, threads)
    # 63 programs on 7 threads: six chunks went to the pool; a grid of 105 on 3: two
    assert 6 in chunks and 2 in chunks and 1 in chunks


def test_prepared_launches_split_once_and_again_on_a_new_grid(chunks, monkeypatch):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    want = np.zeros(1000, np.float32)
    monkeypatch.setenv("TESSERA_CPU_THREADS", "1")
    axpy[(63,)](x, y, want, 2.0)
    monkeypatch.setenv("TESSERA_CPU_THREADS", "3")
    out = np.zeros(1000, np.float32)
    h = axpy.prepare(x, y, out, 2.0, grid=(63,))
    h()
    assert np.array_equal(out, want) and chunks == [2]
    packed = h._handle._run
    arrays = [c[2] for c in packed.chunks]
    out[:] = 0
    h((20,))                                       # the first 320 elements
    assert np.array_equal(out[:320], want[:320]) and not out[320:].any()
    assert all(c[2] is a for c, a in zip(packed.chunks, arrays))   # the same pointer arrays, new bounds
    assert [tuple(c[0]) for c in packed.chunks] == [(0, 6), (6, 13), (13, 20)]
    monkeypatch.setenv("TESSERA_CPU_THREADS", "2")   # a changed knob re-splits too
    h((63,))
    assert np.array_equal(out, want) and [tuple(c[0]) for c in packed.chunks[:2]] == [(0, 31), (31, 63)]
    monkeypatch.setenv("TESSERA_CPU_THREADS", "7")
    h((1,))                                        # one program: the calling thread alone
    assert chunks == [2, 2, 1]


@ts.kernel
def divide(x: tile.Tensor["N", ts.i32], y: tile.Tensor["N", ts.i32], z: tile.Tensor["N", ts.i32],
           q: tile.Tensor["N", ts.i32], r: tile.Tensor["N", ts.i32], BLOCK: ts.constexpr = 4):
    i = tile.program_id(0) * BLOCK
    tile.store(q[i:i + BLOCK], tile.load(x[i:i + BLOCK]) // tile.load(y[i:i + BLOCK]))  # DIVIDE-HERE
    tile.store(r[i:i + BLOCK], tile.load(x[i:i + BLOCK]) % tile.load(z[i:i + BLOCK]))  # MODULO-HERE


def _line(marker):
    return next(i for i, s in enumerate(Path(__file__).read_text().splitlines(), 1) if s.endswith(marker))


def _fault_run(y_zero, z_zero, threads, monkeypatch, prepared=False):
    """The LaunchError (message, file, line) of a 64-program launch of `divide` and its outputs."""
    monkeypatch.setenv("TESSERA_CPU_THREADS", str(threads))
    n = 256
    x, y, z = np.arange(n, dtype=np.int32) + 7, np.ones(n, np.int32), np.full(n, 5, np.int32)
    y[y_zero], z[z_zero] = 0, 0
    q, r = np.zeros(n, np.int32), np.zeros(n, np.int32)
    launch = divide.prepare(x, y, z, q, r, grid=(64,)) if prepared else (lambda: divide[(64,)](x, y, z, q, r))
    with pytest.raises(ts.LaunchError) as e:
        launch()
    return (e.value.msg, e.value.filename, e.value.line), q, r


@pytest.mark.parametrize("prepared", [False, True])
def test_the_first_fault_in_program_order_is_reported_whatever_the_threads(chunks, monkeypatch, prepared):
    # program 40 (second half) divides by zero; programs 50 and 60 take a modulo by zero
    late = dict(y_zero=[160], z_zero=[200, 240])
    # program 3 (first half) takes the modulo by zero, program 60 (the last chunk) divides by zero
    both = dict(y_zero=[241], z_zero=[13])
    for case, marker, what in ((late, "# DIVIDE-HERE", "integer division by zero"),
                               (both, "# MODULO-HERE", "integer modulo by zero")):
        one, q1, r1 = _fault_run(**case, threads=1, monkeypatch=monkeypatch, prepared=prepared)
        assert one[0].startswith(what) and one[1:] == (__file__, _line(marker)), one
        for threads in (2, 3, 7):
            many, q, r = _fault_run(**case, threads=threads, monkeypatch=monkeypatch, prepared=prepared)
            assert many == one, threads
            assert np.array_equal(q, q1) and np.array_equal(r, r1)   # the launch ran to its end all the same
    assert max(chunks) == 6


def test_a_prepared_launch_clears_the_flags_after_a_fault(chunks, monkeypatch):
    monkeypatch.setenv("TESSERA_CPU_THREADS", "3")
    n = 256
    x, y, z = np.arange(n, dtype=np.int32), np.ones(n, np.int32), np.ones(n, np.int32)
    q, r = np.zeros(n, np.int32), np.zeros(n, np.int32)
    h = divide.prepare(x, y, z, q, r, grid=(64,))
    y[250] = 0
    with pytest.raises(ts.LaunchError, match="division by zero"):
        h()
    y[250] = 1
    h()   # no fault left over from the last chunk
    assert np.array_equal(q, x)


def test_saved_kernels_split_their_grid_too(chunks, monkeypatch, tmp_path):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((45, 40)).astype(np.float32), rng.standard_normal((40, 50)).astype(np.float32)
    want = np.zeros((45, 50), np.float32)
    monkeypatch.setenv("TESSERA_CPU_THREADS", "1")
    gemm[(3, 4)](a, b, want)
    ck = ts.compile(gemm, a, b, want, target="cpu")
    ck.save(tmp_path / "k")
    manifest = json.loads((tmp_path / "k" / "manifest.json").read_text())
    # `entry` is what a tessera from before the split calls with no range in its pointer array
    assert (manifest["range_entry"], manifest["entry"]) == ("_mlir__mlir_ciface_gemm_range",
                                                            "_mlir__mlir_ciface_gemm_grid")
    k = load(tmp_path / "k")
    monkeypatch.setenv("TESSERA_CPU_THREADS", "3")
    for launch in (lambda c: k[(3, 4)](a, b, c), lambda c: k.prepare(a, b, c, grid=(3, 4))()):
        c = np.zeros((45, 50), np.float32)
        launch(c)
        assert np.array_equal(c, want)
    assert chunks == [2, 2]
    # a plan saved by an older tessera names only the whole-grid entry: it runs, on one thread
    del manifest["range_entry"]
    (tmp_path / "k" / "manifest.json").write_text(json.dumps(manifest))
    old = load(tmp_path / "k")
    c = np.zeros((45, 50), np.float32)
    old[(3, 4)](a, b, c)
    assert np.array_equal(c, want) and chunks == [2, 2]


def test_a_disk_cache_entry_without_the_range_entry_is_compiled_again(monkeypatch, tmp_path):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    x, y = np.ones(1000, np.float32), np.ones(1000, np.float32)
    axpy._compiled.clear()                        # (compiled into the session's cache by the tests above)
    ck = ts.compile(axpy, x, y, x, 1.0, target="cpu")
    (entry,) = [e for e in cache.entries() if e.get("name") == "axpy"]
    files, meta = cache.load(entry["key"])
    files["kernel.llvm"] = files["kernel.llvm"].replace(b"_mlir_ciface_axpy_range", b"_mlir_ciface_axpy_older")
    cache.remove(cache.root() / "kernels" / entry["key"][:2] / entry["key"])
    cache.store(entry["key"], files, meta)        # what a tessera before the split compiled
    axpy._compiled.clear()
    again = ts.compile(axpy, x, y, x, 1.0, target="cpu")
    assert again is not ck and not again.metadata.get("from_disk_cache")
    assert b"_mlir_ciface_axpy_range" in cache.load(entry["key"])[0]["kernel.llvm"]   # and cached anew
    out = np.zeros(1000, np.float32)
    again[(63,)](x, y, out, 1.0)
    assert np.allclose(out, np.e + 1)


def test_the_knob(monkeypatch):
    monkeypatch.delenv("TESSERA_CPU_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert knobs.cpu_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")          # four torchrun ranks on this host: a share each
    assert knobs.cpu_threads() == max(1, len(os.sched_getaffinity(0)) // 4)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setenv("TESSERA_CPU_THREADS", " 3 ")
    assert knobs.cpu_threads() == 3
    x = np.ones(16, np.float32)
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv("TESSERA_CPU_THREADS", bad)
        with pytest.raises(ts.LaunchError, match=f"TESSERA_CPU_THREADS must be a positive integer, got '{bad}'"):
            knobs.cpu_threads()
        with pytest.raises(ts.LaunchError, match="TESSERA_CPU_THREADS"):
            axpy[(1,)](x, x, np.zeros(16, np.float32), 1.0)


@ts.kernel
def spin(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], iters: int):
    i = tile.program_id(0)
    acc = tile.load_scalar(x[i])
    for _ in range(iters):
        acc = acc * 0.999 + 0.001
    tile.store(out[i], acc)


def test_the_gil_is_released_while_a_kernel_runs(monkeypatch):
    monkeypatch.setenv("TESSERA_CPU_THREADS", "1")
    x, out = np.full(1, 0.5, np.float32), np.zeros(1, np.float32)
    spin[(1,)](x, out, 10)
    t = time.thread_time()   # CPU time: a busy machine stretches the launch, it does not shorten it
    spin[(1,)](x, out, 2_000_000)
    iters = int(2_000_000 * 0.6 / max(time.thread_time() - t, 1e-4))   # some 0.6 s of work
    ticks, stop = [], threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
    counter = threading.Thread(target=count)
    counter.start()
    while not ticks:
        time.sleep(0.001)
    try:
        t0 = time.perf_counter()
        spin[(1,)](x, out, iters)
        t1 = time.perf_counter()
    finally:
        stop.set()
        counter.join()
    # the middle half of the launch is inside the kernel: a thread holding the GIL there would let no tick in
    quarter = (t1 - t0) / 4
    assert quarter > 0.05 and any(t0 + quarter < t < t1 - quarter for t in ticks)


def test_bad_arguments_raise_the_same_launch_error_with_threads(chunks, monkeypatch):
    x = np.ones(1000, np.float32)
    frozen = np.zeros(1000, np.float32)
    frozen.setflags(write=False)
    one = np.ones(4, np.float32)
    errors = []
    for threads in ("1", "7"):
        monkeypatch.setenv("TESSERA_CPU_THREADS", threads)
        for launch in (lambda: axpy[(63,)](x, x, frozen, 1.0),
                       lambda: axpy[(63,)](x, x[None], np.zeros(1000, np.float32), 1.0),
                       lambda: spin[(4,)](one, np.zeros(4, np.float32), 2 ** 63)):
            with pytest.raises(ts.TesseraError) as e:
                launch()
            errors.append((type(e.value), str(e.value)))
    assert errors[:3] == errors[3:] and ts.LaunchError in {e[0] for e in errors}
    with pytest.raises(ts.LaunchError, match="has 18446744073709551616 programs, more than"):
        axpy[(2 ** 62, 4)](x, x, np.zeros(1000, np.float32), 1.0)   # each axis fits, their product does not
    assert chunks == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_launches_on_a_pool_of_its_own(chunks, monkeypatch):
    monkeypatch.setenv("TESSERA_CPU_THREADS", "3")
    x = np.arange(1000, dtype=np.float32)
    want = np.zeros(1000, np.float32)
    axpy[(63,)](x, x, want, 1.0)   # the parent's pool has threads now, which a child of fork lacks
    # MLIR objects the earlier tests dropped must not be collected in the child: freeing a context there
    # segfaults (its LLVM thread pool's threads are the parent's), with or without a launch
    gc.collect()
    pid = os.fork()
    if pid == 0:   # (never back into pytest)
        code = 2
        try:
            out = np.zeros(1000, np.float32)
            axpy[(63,)](x, x, out, 1.0)
            code = 0 if np.array_equal(out, want) else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung on the parent's pool")
    assert os.waitstatus_to_exitcode(done[1]) == 0


class _Fake(PackedEntryLauncher):
    """A launcher whose entry is Python: it raises in the chunk that runs program `bad`."""

    def __init__(self, bad):
        super().__init__("fake", [], [])
        self.ran, self.bad = [], bad

        def entry(packed):
            first, last = (ctypes.c_int64.from_address(packed[3 + k]).value for k in range(2))
            time.sleep(0.05 * (first == 0))   # the calling thread's chunk ends last
            self.ran.append((first, last))
            if first <= bad < last:
                raise RuntimeError(f"programs {first}..{last}")
        self.fn = entry


def test_an_exception_in_a_pool_thread_reaches_the_caller_after_every_chunk(chunks, monkeypatch):
    monkeypatch.setenv("TESSERA_CPU_THREADS", "4")
    fake = _Fake(bad=90)
    with pytest.raises(RuntimeError, match="programs 75..100"):
        fake.launch((100, 1, 1), [])
    assert sorted(fake.ran) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    fake = _Fake(bad=3)                            # the calling thread's own chunk
    with pytest.raises(RuntimeError, match="programs 0..25"):
        fake.launch((100, 1, 1), [])
    assert len(fake.ran) == 4


def test_small_launches_stay_in_the_calling_thread(monkeypatch):
    handed = []
    start = cpu_launch._start
    monkeypatch.setattr(cpu_launch, "_start", lambda calls, workers: handed.append(len(calls)) or start(calls, workers))
    monkeypatch.setenv("TESSERA_CPU_THREADS", "4")
    x = np.ones(1000, np.float32)
    axpy[(1,)](x, x, np.zeros(1000, np.float32), 1.0)   # one program: never the pool
    assert handed == []
    for _ in range(10):   # microseconds of work: once the kernel's programs are timed, not worth a thread
        axpy[(63,)](x, x, np.zeros(1000, np.float32), 1.0)
    assert len(handed) <= 2   # (a launch preempted in the middle may time its programs as slow)
    big = _Fake(bad=-1)
    big.program_s = 2 * cpu_launch.MIN_CHUNK_S     # 3 programs of 2 chunks' worth: 3 threads
    big.launch((3, 1, 1), [])
    assert handed[-1] == 2
    big.program_s = cpu_launch.MIN_CHUNK_S / 4     # 10 programs worth 2.5 chunks: 2 threads
    big.launch((10, 1, 1), [])
    assert handed[-1] == 1 and sorted(big.ran[-2:]) == [(0, 5), (5, 10)]
