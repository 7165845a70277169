"""The cases of tests/test_int_semantics.py that killed the process before (SIGFPE from an integer
division, a segfault from a read-only output or a shared buffer on a small thread stack): run as a script
in a child process, so a regression shows as a dead child naming its case, never as a dead pytest.
`python int_semantics_child.py` prints `START <case>`, then one JSON line per case: what it raised
(class, message, file, line) or what it computed."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading

import numpy as np

import tessera as ts
from tessera import tile

MIN32, MIN64 = -2 ** 31, -2 ** 63


@ts.kernel
def divmod_tiles(x: tile.Tensor["N", ts.i32], y: tile.Tensor["N", ts.i32], q: tile.Tensor["N", ts.i32],
                 r: tile.Tensor["N", ts.i32], BLOCK: ts.constexpr = 8):
    a = tile.load(x[0:BLOCK])
    b = tile.load(y[0:BLOCK])
    tile.store(q[0:BLOCK], a // b)  # DIV-TILES
    tile.store(r[0:BLOCK], a % b)  # MOD-TILES


@ts.kernel
def divmod_scalars(out: tile.Tensor["N", ts.i64], a: int, b: int):
    tile.store(out[0], a // b)  # DIV-SCALARS
    tile.store(out[1], a % b)  # MOD-SCALARS


@ts.kernel
def mod_then_div(x: tile.Tensor["N", ts.i32], y: tile.Tensor["N", ts.i32], out: tile.Tensor["N", ts.i32]):
    a = tile.load(x[0:4])
    r = a % tile.load(y[0:4])  # FIRST-FAULT
    tile.store(out[0:4], r // tile.load(y[0:4]))


@ts.kernel
def copy(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32]):
    tile.store(out[0:4], tile.load(x[0:4]))


@ts.kernel
def copy_to_list(x: tile.Tensor["N", ts.f32], outs: list[tile.Tensor["N", ts.f32]]):
    for i in tile.range(len(outs)):
        tile.store(outs[i][0:4], tile.load(x[0:4]))


@ts.kernel
def big_shared(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], ROWS: ts.constexpr = 256):
    buf = tile.alloc_shared([ROWS, 1024], ts.f32)   # 1 MiB: the CPU budget
    tile.fill(buf, 1.0)
    tile.store(out[0:4], tile.load(x[0:4]) + tile.sum(tile.load(buf)))


def _i32(*v):
    return np.array(v, np.int32)


def _raised(e):
    return {"raised": type(e).__name__, "message": getattr(e, "msg", str(e)), "file": getattr(e, "filename", None),
            "line": getattr(e, "line", None)}


def case_tile_div_by_zero():
    q, r = np.zeros(8, np.int32), np.zeros(8, np.int32)
    divmod_tiles[(1,)](_i32(7, -7, 5, 0, 1, 2, 3, 4), _i32(2, 0, 1, 1, 1, 1, 1, 1), q, r)


def case_tile_int_min_div_minus_one():
    q, r = np.zeros(8, np.int32), np.zeros(8, np.int32)
    divmod_tiles[(1,)](_i32(MIN32, 1, 1, 1, 1, 1, 1, 1), _i32(-1, 1, 1, 1, 1, 1, 1, 1), q, r)


def case_tile_results_after_fault():
    """The launch runs to its end: the outputs hold the GPU's results."""
    x = _i32(7, -7, MIN32, MIN32, 0, 5, -5, 9)
    y = _i32(0, 0, -1, 0, 0, -1, 2, -4)
    q, r = np.zeros(8, np.int32), np.zeros(8, np.int32)
    try:
        divmod_tiles[(1,)](x, y, q, r)
    except ts.LaunchError as e:
        return {**_raised(e), "q": q.tolist(), "r": r.tolist()}


def case_tile_int_min_mod_minus_one():
    q, r = np.zeros(8, np.int32), np.zeros(8, np.int32)
    divmod_tiles[(1,)](_i32(MIN32, -7, 7, 7, 7, 7, 7, 7), _i32(1, -1, -1, 3, -3, 3, 3, 3), q, r)
    return {"q": q.tolist(), "r": r.tolist()}


def case_scalar_div_by_zero():
    divmod_scalars[(1,)](np.zeros(2, np.int64), 5, 0)


def case_scalar_int64_min_div_minus_one():
    divmod_scalars[(1,)](np.zeros(2, np.int64), MIN64, -1)


def case_first_fault_is_named():
    mod_then_div[(1,)](_i32(1, 2, 3, 4), _i32(1, 0, 1, 1), np.zeros(4, np.int32))


def case_prepared_launch_fault():
    h = divmod_scalars.prepare(np.zeros(2, np.int64), 5, 0, grid=(1,))
    h()


def case_second_launch_is_clean():
    """The flag is per launch: a good launch after a faulting one raises nothing."""
    out = np.zeros(2, np.int64)
    try:
        divmod_scalars[(1,)](out, 5, 0)
    except ts.LaunchError:
        pass
    divmod_scalars[(1,)](out, -7, 2)
    return {"out": out.tolist()}


def case_fault_from_the_disk_cache():
    """The fault sites travel with the compiled module: a kernel loaded from disk names its division too."""
    out = np.zeros(2, np.int64)
    divmod_scalars[(1,)](out, 7, 2)
    divmod_scalars._compiled.clear()
    ck = ts.compile(divmod_scalars, out, 7, 2)
    try:
        ck[(1,)](out, 5, 0)
    except ts.LaunchError as e:
        return {**_raised(e), "from_disk": bool(ck.metadata.get("from_disk_cache"))}


def _read_only_memmap():
    path = os.path.join(tempfile.mkdtemp(), "out.bin")
    np.zeros(4, np.float32).tofile(path)
    return np.memmap(path, np.float32, mode="r", shape=(4,))


def case_read_only_memmap_output():
    copy[(1,)](np.ones(4, np.float32), _read_only_memmap())


def case_read_only_memmap_in_list():
    copy_to_list[(1,)](np.ones(4, np.float32), [np.zeros(4, np.float32), _read_only_memmap()])


def case_read_only_memmap_prepared():
    copy.prepare(np.ones(4, np.float32), _read_only_memmap(), grid=(1,))


def case_read_only_memmap_compiled():
    x = np.ones(4, np.float32)
    ck = ts.compile(copy, x, x)
    ck[(1,)](x, _read_only_memmap())


def case_shared_buffer_on_small_thread_stack():
    out, got = np.zeros(4, np.float32), {}

    def run():
        try:
            big_shared[(1,)](np.ones(4, np.float32), out)
            got["out"] = out.tolist()
        except Exception as e:  # noqa: BLE001 - reported to the parent
            got.update(_raised(e))
    threading.stack_size(512 << 10)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return got


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


def main(names):
    for name in names or CASES:
        print(f"START {name}", flush=True)
        try:
            result = CASES[name]() or {"returned": True}
        except ts.TesseraError as e:
            result = _raised(e)
        print(json.dumps({"case": name, **result}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
