"""Integer semantics and launch limits (issue 16, item 3), one regression test per failure measured:
runtime `// 0`, `% 0` and INT_MIN // -1 (SIGFPE on the CPU before: now a LaunchError at the division, and
PTX's results on NVIDIA, in the emulator on sm_80 and sm_90a with checks on); constant `// 0` / `% 0`
(returned x: now a CompilationError); `% -5` on i32 (did not compile); int arguments and grids beyond their
types (wrapped); a Python int with a bool tile (cut to one bit); large shared buffers and read-only outputs
(segfaults); `.T` in every documented form (raw TypeErrors). The cases that crashed the process run in a
child (tests/int_semantics_child.py)."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.runtime import native
from tessera.runtime.prepared import CUDA_GRID_LIMITS, check_grid, check_scalar
from child_protocol import read_child_output
from test_nvidia_compile import _have_ptxas

HERE = pathlib.Path(__file__).resolve().parent
CHILD = HERE / "int_semantics_child.py"
MIN32, MIN64 = -2 ** 31, -2 ** 63


def _line(path, marker):
    for i, text in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        if marker in text:
            return i
    raise AssertionError(marker)


def py_floordiv(a, b, bits):
    """The documented results: Python's where defined, x // 0 == -1, INT_MIN // -1 wraps."""
    if b == 0:
        return -1
    q = a // b
    return q - (1 << bits) if q >= 1 << (bits - 1) else q


def py_mod(a, b):
    return a if b == 0 else a % b


# -- the cases that crashed: in a child process ----------------------------------------------------------
@pytest.fixture(scope="module")
def child(tmp_path_factory):
    env = {**os.environ, "TESSERA_CACHE_DIR": str(tmp_path_factory.mktemp("child-cache"))}
    env.pop("TESSERA_BACKEND", None)
    proc = subprocess.run([sys.executable, str(CHILD)], capture_output=True, text=True, timeout=900, env=env, cwd=HERE)
    results, started = read_child_output(proc.stdout, "case")
    assert started is None and proc.returncode == 0, (
        f"the child died in case {started!r} (exit {proc.returncode}): a crash is back\n{proc.stderr[-3000:]}")
    return results


def _fault(child, case, what, marker):
    r = child[case]
    assert r.get("raised") == "LaunchError", r
    assert r["message"].startswith(what), r["message"]
    assert r["file"] == str(CHILD) and r["line"] == _line(CHILD, marker), r
    return r


def test_runtime_division_by_zero_is_a_launch_error_at_the_division(child):
    _fault(child, "tile_div_by_zero", "integer division by zero in kernel 'divmod_tiles'", "# DIV-TILES")
    _fault(child, "scalar_div_by_zero", "integer division by zero in kernel 'divmod_scalars'", "# DIV-SCALARS")
    _fault(child, "prepared_launch_fault", "integer division by zero", "# DIV-SCALARS")
    assert _fault(child, "fault_from_the_disk_cache", "integer division by zero", "# DIV-SCALARS")["from_disk"]


def test_int_min_floordiv_minus_one_is_a_launch_error(child):
    _fault(child, "tile_int_min_div_minus_one", "integer overflow: -2147483648 // -1 does not fit i32", "# DIV-TILES")
    _fault(child, "scalar_int64_min_div_minus_one", f"integer overflow: {MIN64} // -1 does not fit i64",
           "# DIV-SCALARS")


def test_the_first_fault_is_named_and_the_launch_ends_with_the_documented_results(child):
    _fault(child, "first_fault_is_named", "integer modulo by zero", "# FIRST-FAULT")
    r = _fault(child, "tile_results_after_fault", "integer division by zero", "# DIV-TILES")
    x, y = [7, -7, MIN32, MIN32, 0, 5, -5, 9], [0, 0, -1, 0, 0, -1, 2, -4]
    assert r["q"] == [py_floordiv(a, b, 32) for a, b in zip(x, y)]
    assert r["r"] == [py_mod(a, b) for a, b in zip(x, y)]
    assert child["second_launch_is_clean"]["out"] == [-4, 1]


def test_int_min_mod_minus_one_is_zero_without_a_fault(child):
    r = child["tile_int_min_mod_minus_one"]
    assert r["q"] == [MIN32, 7, -7, 2, -3, 2, 2, 2] and r["r"] == [0, 0, 0, 1, -2, 1, 1, 1]


def test_read_only_outputs_are_refused_before_the_launch(child):
    for case, name, marker in [("read_only_memmap_output", "out", "copy[(1,)]"),
                               ("read_only_memmap_in_list", "outs[1]", "copy_to_list[(1,)]"),
                               ("read_only_memmap_prepared", "out", "copy.prepare("),
                               ("read_only_memmap_compiled", "out", "ck[(1,)](x, _read_only_memmap())")]:
        r = child[case]
        assert r.get("raised") == "LaunchError" and r["message"].startswith(f"argument '{name}' is a read-only array")
        assert r["line"] == _line(CHILD, marker), r


def test_a_1_mib_shared_buffer_runs_on_a_small_thread_stack(child):
    assert child["shared_buffer_on_small_thread_stack"] == {"case": "shared_buffer_on_small_thread_stack",
                                                             "out": [1.0 + 256 * 1024] * 4}


# -- compile-time integer semantics ---------------------------------------------------------------------
@ts.kernel
def div_const_zero(x: tile.Tensor["N", ts.i32], out: tile.Tensor["N", ts.i32]):
    tile.store(out[0:4], tile.load(x[0:4]) // 0)  # CONST-DIV


@ts.kernel
def mod_const_zero(x: tile.Tensor["N", ts.i32], out: tile.Tensor["N", ts.i32]):
    tile.store(out[0:4], tile.load(x[0:4]) % tile.full([4], 0, ts.i32))  # CONST-MOD


@pytest.mark.parametrize("kernel, marker, what", [(div_const_zero, "# CONST-DIV", "integer division by zero"),
                                                  (mod_const_zero, "# CONST-MOD", "integer modulo by zero")])
def test_constant_division_by_zero_is_a_located_compilation_error(kernel, marker, what):
    with pytest.raises(ts.CompilationError) as e:
        kernel[(1,)](np.arange(4, dtype=np.int32), np.zeros(4, np.int32))
    assert e.value.msg.startswith(what) and e.value.filename == __file__ and e.value.line == _line(__file__, marker)
    assert "^" in str(e.value)


@ts.kernel
def by_constants(x: tile.Tensor["N", ts.i32], out: tile.Tensor["K", "N", ts.i32], BLOCK: ts.constexpr = 8):
    a = tile.load(x[0:BLOCK])
    tile.store(out[0, 0:BLOCK], a % -5)
    tile.store(out[1, 0:BLOCK], a // -5)
    tile.store(out[2, 0:BLOCK], a % 5)
    tile.store(out[3, 0:BLOCK], a // -1)


def test_negative_constant_divisors_follow_python():
    x = np.array([7, -7, 0, 13, -13, 4, -1, 2 ** 31 - 1], np.int32)
    out = np.zeros((4, 8), np.int32)
    by_constants[(1,)](x, out)
    np.testing.assert_array_equal(out, [x % -5, x // -5, x % 5, -x])


# -- integer arguments and grids ------------------------------------------------------------------------
@ts.kernel
def scalars(out: tile.Tensor["N", ts.i64], a: int, b: ts.i32, c: ts.i8):
    tile.store(out[0], a + b + c)


@pytest.mark.parametrize("args, name, type_name", [((2 ** 63, 0, 0), "a", "i64"), ((-2 ** 63 - 1, 0, 0), "a", "i64"),
                                                   ((0, 2 ** 31, 0), "b", "i32"), ((0, 0, -129), "c", "i8")])
def test_int_arguments_beyond_their_type_are_launch_errors_on_every_path(args, name, type_name):
    out = np.zeros(1, np.int64)
    want = f"argument '{name}' is {args[['a', 'b', 'c'].index(name)]}, which does not fit {type_name}"
    ck = ts.compile(scalars, out, 1, 1, 1)
    launches = [lambda: scalars[(1,)](out, *args), lambda: scalars.prepare(out, *args, grid=(1,)),
                lambda: ck[(1,)](out, *args), lambda: ck.prepare(out, *args, grid=(1,))]
    for launch in launches:
        with pytest.raises(ts.LaunchError) as e:
            launch()
        assert e.value.msg.startswith(want) and e.value.filename == __file__, e.value
    with pytest.raises(ts.LaunchError, match=want):   # the runner itself, under every check above
        ck.launch((1, 1, 1), [out, *args])
    assert out[0] == 0


def test_gpu_launchers_check_int_arguments_by_name():
    spec = {"name": "n", "kind": "scalar", "dtype": "i32", "abi": "i32"}
    with pytest.raises(ts.LaunchError, match="argument 'n' is 2147483648, which does not fit i32"):
        native.flat_values([spec], [2 ** 31])   # the native launcher's and the emulator's packing
    with pytest.raises(ts.LaunchError, match="argument 'n' must be an int"):
        check_scalar(spec, 1.5)                 # the CuPy launcher's packing runs check_scalar too
    assert native.flat_values([spec], [2 ** 31 - 1])[0] == [2 ** 31 - 1]


def test_grids_beyond_the_backends_limits_are_launch_errors():
    out = np.zeros(1, np.int64)
    for grid in [(2 ** 63,), (1, 2 ** 64 + 1), (1, 1, 2 ** 63)]:
        with pytest.raises(ts.LaunchError) as e:
            scalars[grid](out, 1, 1, 1)
        assert "grid dim" in e.value.msg and e.value.filename == __file__
    h = scalars.prepare(out, 1, 1, 1, grid=(1,))
    with pytest.raises(ts.LaunchError, match="grid dim 0 is 18446744073709551616") as e:
        h((2 ** 64,))
    assert e.value.filename == __file__
    with pytest.raises(ts.LaunchError, match="grid dim 1 is 65536"):
        check_grid((1, 65536, 1), CUDA_GRID_LIMITS)
    assert out[0] == 0


# -- bool tiles with Python ints ------------------------------------------------------------------------
@ts.kernel
def bool_ints(m: tile.Tensor["N", ts.bool], ints: tile.Tensor["K", "N", ts.i32], bools: tile.Tensor["J", "N", ts.bool]):
    b = tile.load(m[0:4])
    tile.store(ints[0, 0:4], b + 256)
    tile.store(ints[1, 0:4], b * 3 - 1)
    tile.store(bools[0, 0:4], b & 2)
    tile.store(bools[1, 0:4], tile.where(b, 2, 0))
    tile.store(bools[2, 0:4], tile.full([4], 2, ts.bool))
    tile.store(bools[3, 0:4], b == 1)


def test_python_ints_with_bool_tiles_count_the_bool_as_an_int():
    m = np.array([True, False, True, False])
    ints, bools = np.zeros((2, 4), np.int32), np.zeros((4, 4), bool)
    bool_ints[(1,)](m, ints, bools)
    np.testing.assert_array_equal(ints, [m + 256, m * 3 - 1])                      # NumPy's values
    np.testing.assert_array_equal(bools, [(m & 2) != 0, np.where(m, 2, 0) != 0, [True] * 4, m == 1])


# -- shared buffers -------------------------------------------------------------------------------------
@ts.kernel
def shared_8mib(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32]):
    buf = tile.alloc_shared([2048, 1024], ts.f32)  # BIG-SHARED
    tile.fill(buf, 1.0)
    tile.store(out[0:4], tile.load(x[0:4]) + tile.sum(tile.load(buf)))


def test_shared_buffers_past_the_cpu_budget_are_out_of_resources_at_their_line():
    with pytest.raises(ts.OutOfResources) as e:
        shared_8mib[(1,)](np.ones(4, np.float32), np.zeros(4, np.float32))
    assert e.value.line == _line(__file__, "# BIG-SHARED") and e.value.required == 8 << 20


# -- .T ---------------------------------------------------------------------------------------------------
@ts.kernel
def transposes(a: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["K", "N", "M", ts.f32],
               mm: tile.Tensor["N", "N", ts.f32]):
    t = tile.load(a[0:4, 0:8])
    s = tile.alloc_shared([4, 8], ts.f32)
    tile.store(s, t)
    tile.store(out[0, 0:8, 0:4], t.T)                 # stored
    tile.store(out[1, 0:8, 0:4], s.T)                 # a shared buffer's
    tile.store(out[2, 0:8, 0:4], t.T * 2.0 + 1.0)     # in arithmetic
    tile.store(mm[0:8, 0:8], tile.mma(t.T, t))        # an mma operand


@ts.function
def graph_t(a: ts.Tensor["M", "N", ts.f32]):
    return a.T * 2.0


@ts.function
def eager_t(a: ts.Tensor["M", "N", ts.f32]):
    if ts.ops.l2_norm(a) > 0.0:          # a value-dependent branch: the body runs eagerly
        return a.T
    return a


def test_transpose_in_every_documented_form():
    a = np.arange(32, dtype=np.float32).reshape(4, 8)
    out, mm = np.zeros((3, 8, 4), np.float32), np.zeros((8, 8), np.float32)
    transposes[(1,)](a, out, mm)
    np.testing.assert_array_equal(out, [a.T, a.T, a.T * 2 + 1])
    np.testing.assert_allclose(mm, a.T @ a, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(graph_t(a)), a.T * 2)
    np.testing.assert_array_equal(np.asarray(eager_t(a)), a.T)


# -- NVIDIA: PTX's results, in the emulator with checks on ----------------------------------------------
@ts.kernel
def divmod_gpu(x: tile.Tensor["N", ts.i32], y: tile.Tensor["N", ts.i32], q: tile.Tensor["N", ts.i32],
               r: tile.Tensor["N", ts.i32], s: tile.Tensor["S", ts.i64], a: int, b: int, BLOCK: ts.constexpr = 16):
    u = tile.load(x[0:BLOCK])
    v = tile.load(y[0:BLOCK])
    tile.store(q[0:BLOCK], u // v)
    tile.store(r[0:BLOCK], u % v)
    tile.store(s[0], a // b)
    tile.store(s[1], a % b)


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")
@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
@pytest.mark.parametrize("a, b", [(7, 0), (MIN64, -1), (-7, 2)])
def test_gpu_division_gives_the_documented_results_in_the_emulator(target, a, b):
    x = np.array([7, -7, 7, -7, 0, MIN32, MIN32, MIN32, 5, -5, 3, 100, 7, MIN32, 2 ** 31 - 1, -1], np.int32)
    y = np.array([2, 2, -2, -2, 0, -1, 0, 1, 0, 0, -5, 0, -1, -1, -1, 0], np.int32)
    q, r, s = np.zeros(16, np.int32), np.zeros(16, np.int32), np.zeros(2, np.int64)
    ck = ts.compile(divmod_gpu, x, y, q, r, s, MIN64, -1, target=target)
    report = ck.emulate((1,), x, y, q, r, s, a, b)
    assert report.ok and report.checks
    assert q.tolist() == [py_floordiv(int(u), int(v), 32) for u, v in zip(x, y)]
    assert r.tolist() == [py_mod(int(u), int(v)) for u, v in zip(x, y)]
    assert s.tolist() == [py_floordiv(a, b, 64), py_mod(a, b)]
    with pytest.raises(ts.LaunchError, match="grid dim 0 is 2147483648"):
        ck.emulate((2 ** 31,), x, y, q, r, s, a, b)
