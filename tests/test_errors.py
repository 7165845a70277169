"""Every error kind: located CompilationErrors with a caret, ShapeError naming the dim and both
arguments, DTypeError, and no internal traceback by default."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tessera as ts
from tessera import tile

HERE = os.path.abspath(__file__)


def _line_of(fn_text):
    with open(HERE) as f:
        for i, line in enumerate(f, 1):
            if fn_text in line and "_line_of" not in line:
                return i
    raise AssertionError(fn_text)


@ts.kernel
def uses_while(x: tile.Tensor["N", ts.f32]):
    v = tile.load(x[0:16])
    while v:  # ERR-WHILE
        pass


@ts.kernel
def uses_undefined(x: tile.Tensor["N", ts.f32]):
    v = tile.load(x[0:16]) + not_defined_anywhere  # noqa: F821 ERR-UNDEF
    tile.store(x[0:16], v)


@ts.kernel
def mismatched_copy(x: tile.Tensor["N", ts.f32]):
    buf = tile.alloc_shared([16], ts.bf16)
    tile.cp_async(buf, x[0:16])  # ERR-DTYPE


@ts.kernel
def bad_mma(a: tile.Tensor["M", "K", ts.f32], out: tile.Tensor["M", "K", ts.f32]):
    x = tile.load(a[0:16, 0:8])
    tile.store(out[0:16, 0:8], tile.mma(x, x))  # ERR-MMA


@ts.kernel
def dynamic_slice(x: tile.Tensor["N", ts.f32], n: int):
    v = tile.load(x[0:n])  # ERR-SLICE
    tile.store(x[0:16], v)


@ts.kernel
def two_args(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32]):
    tile.store(y[0:16], tile.load(x[0:16]))


@ts.kernel
def bad_broadcast(x: tile.Tensor["N", ts.f32]):
    a = tile.zeros([4, 8], ts.f32)
    b = tile.zeros([3], ts.f32)
    tile.store(x[0:8], tile.sum(a + b, axis=0))  # ERR-BCAST


@pytest.mark.parametrize("kernel,marker,needle", [
    (uses_while, "ERR-WHILE", "while loops are not supported"),
    (uses_undefined, "ERR-UNDEF", "undefined name 'not_defined_anywhere'"),
    (mismatched_copy, "ERR-DTYPE", "dtype mismatch"),
    (bad_mma, "ERR-MMA", "inner dims differ"),
    (bad_broadcast, "ERR-BCAST", "do not broadcast"),
])
def test_compilation_errors_point_at_the_line(kernel, marker, needle):
    x = np.zeros(64, np.float32) if kernel is not bad_mma else np.zeros((16, 8), np.float32)
    args = (x,) if kernel is not bad_mma else (x, x.copy())
    with pytest.raises(ts.CompilationError) as ei:
        kernel[(1,)](*args)
    e = ei.value
    line = _line_of(marker)
    assert e.filename == HERE and e.line == line
    text = str(e)
    assert needle in text
    assert text.startswith(f"{HERE}:{line}:")
    src, caret = text.splitlines()[1:3]
    assert marker in src
    assert caret.strip() == "^" and src[caret.index("^")] != " "


def test_dynamic_slice_size_is_rejected():
    with pytest.raises(ts.CompilationError, match="compile-time constant"):
        dynamic_slice[(1,)](np.zeros(16, np.float32), 16)


def test_wrong_argument_count_points_at_the_launch():
    x = np.zeros(16, np.float32)
    with pytest.raises(ts.CompilationError, match=r"missing argument 'y'") as ei:
        two_args[(1,)](x)  # LAUNCH-LINE
    assert ei.value.line == _line_of("LAUNCH-LINE") and ei.value.filename == HERE
    launch = open(HERE).read().splitlines()[ei.value.line - 1]
    assert ei.value.col == launch.index("two_args[") + 1, "the caret points at the launch expression"
    with pytest.raises(ts.CompilationError, match="takes 2 arguments, got 3"):
        two_args[(1,)](x, x, x)
    with pytest.raises(ts.CompilationError, match="unexpected keyword argument 'z'"):
        two_args[(1,)](x, x, z=1)


def test_dtype_error_on_launch():
    with pytest.raises(ts.DTypeError, match="argument 'y' has dtype f64, the kernel declares f32"):
        two_args[(1,)](np.zeros(16, np.float32), np.zeros(16, np.float64))


def test_shape_error_names_dim_and_both_arguments():
    with pytest.raises(ts.ShapeError) as ei:
        two_args[(1,)](np.zeros(16, np.float32), np.zeros(17, np.float32))
    msg = str(ei.value)
    assert "'N'" in msg and "'x'" in msg and "'y'" in msg and "16" in msg and "17" in msg
    with pytest.raises(ts.ShapeError, match="2 dims"):
        two_args[(1,)](np.zeros((4, 4), np.float32), np.zeros(16, np.float32))


def test_no_internal_traceback_by_default(tmp_path):
    script = tmp_path / "user_kernel.py"
    script.write_text(textwrap.dedent("""
        import numpy as np, tessera as ts
        from tessera import tile

        @ts.kernel
        def k(x: tile.Tensor["N", ts.f32]):
            tile.store(x[0:4], tile.load(x[0:4]) + nope)

        k[(1,)](np.zeros(4, np.float32))
    """))
    env = dict(os.environ)
    env.pop("TESSERA_DEBUG", None)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert f"{script}:7:" in r.stderr and "undefined name 'nope'" in r.stderr
    assert "codegen" not in r.stderr and "mlir" not in r.stderr.lower()


@ts.kernel
def huge_shared(out: tile.Tensor["N", ts.f32], SIZE: ts.constexpr = 16):
    buf = tile.alloc_shared([SIZE], ts.f32)  # ERR-HUGE-SHARED
    tile.store(buf, tile.zeros([SIZE], ts.f32))
    tile.store(out[0:SIZE], tile.load(buf))


def test_huge_shared_buffer_on_the_cpu_is_out_of_resources():
    """Shared buffers live on the CPU backend's stack: a huge one used to kill the process."""
    out = np.zeros(4, np.float32)
    with pytest.raises(ts.OutOfResources, match="the CPU backend's budget is 1048576 bytes") as ei:
        huge_shared[(1,)](out, SIZE=1 << 28)
    assert ei.value.line == _line_of("ERR-HUGE-SHARED") and ei.value.required == 1 << 30
    huge_shared[(1,)](out, SIZE=1 << 16)   # 256 KiB: within the CPU budget
    assert not out.any()


def test_read_only_output_is_refused_at_the_launch():
    """A kernel that stores to a read-only NumPy array used to write it anyway."""
    x = np.ones(16, np.float32)
    y = np.zeros(16, np.float32)
    y.flags.writeable = False
    with pytest.raises(ts.LaunchError, match="argument 'y' is a read-only array") as ei:
        two_args[(1,)](x, y)  # READ-ONLY-LAUNCH
    assert ei.value.line == _line_of("READ-ONLY-LAUNCH") and ei.value.filename == HERE
    assert not y.any()
    ck = ts.compile(two_args, x, np.zeros(16, np.float32))
    assert ck.metadata["writes"] == [1]
    with pytest.raises(ts.LaunchError, match="read-only"):
        ck.prepare(x, y, grid=(1,))
    x.flags.writeable = False     # read-only inputs are fine
    two_args[(1,)](x, np.zeros(16, np.float32))


def test_sm_90_is_sm_90a():
    from tessera.backends.nvidia.ptxas import find_ptxas
    try:
        find_ptxas()
    except ts.BackendUnavailable:
        pytest.skip("ptxas not found")
    ck = ts.compile(two_args, np.zeros(16, np.float32), np.zeros(16, np.float32), target="sm_90")
    assert ck.target == "sm_90a"


@ts.kernel
def negative_zeros(x: tile.Tensor["N", ts.f32]):
    tile.store(x[0:4], tile.zeros([-4], ts.f32))  # ERR-NEG-ZEROS


def test_bad_launch_options_grids_and_shapes_are_located():
    """Found by a first probe of bad inputs (issue 11): each used to pass silently or escape raw."""
    x = np.zeros(16, np.float32)
    with pytest.raises(ts.LaunchError, match="the grid function raised ZeroDivisionError") as ei:
        two_args[lambda m: 1 // 0](x, x.copy())  # GRID-RAISES
    assert ei.value.line == _line_of("GRID-RAISES")
    for opts, needle in ((dict(num_warps=0), "num_warps must be an int from 1 to 32"),
                         (dict(num_warps=64), "num_warps must be an int from 1 to 32"),
                         (dict(num_stages=-1), "num_stages must be an int >= 1"),
                         (dict(persistent=1), "persistent must be True or False")):
        with pytest.raises(ts.CompilationError, match=needle):
            two_args[(1,)](x, x.copy(), **opts)
    with pytest.raises(ts.CompilationError, match=r"tile shape sizes must be positive, got \[-4\]") as ei:
        negative_zeros[(1,)](x)
    assert ei.value.line == _line_of("ERR-NEG-ZEROS")
