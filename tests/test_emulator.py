"""Every kernel the project compiles for NVIDIA runs in the PTX emulator on sm_80 and sm_90a with
the checks on, and matches the CPU backend (bit for bit where the math is exact, else within the
per-dtype tolerance of emu_cases.tolerance). Also: TESSERA_BACKEND=emu for kernels and @ts.function
graphs, the sanitizer's reports naming kernel and PTX line, and the MLIR-free import."""
import re
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile
import emu_cases
from test_nvidia_compile import _have_ptxas

bf16 = ml_dtypes.bfloat16
TARGETS = ("sm_80", "sm_90a")
CASES = {c[0]: c[1:] for c in emu_cases.cases()}


needs_ptxas = pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")


def _copy(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _compare(name, args, got, want):
    tol = emu_cases.tolerance(args)
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(g, np.ndarray):
            continue
        if name in emu_cases.EXACT:
            np.testing.assert_array_equal(g.view(np.uint8), w.view(np.uint8), err_msg=f"{name}: argument {i}")
            continue
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        np.testing.assert_allclose(g64, w64, rtol=tol, atol=tol, err_msg=f"{name}: argument {i}")


@needs_ptxas
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_matches_cpu_backend_in_emulator(name, target):
    kernel, grid, make, ce = CASES[name]
    args = make(np.random.default_rng(7))
    want = _copy(args)
    kernel[grid](*want, **ce)
    ck = ts.compile(kernel, *args, target=target, **ce)
    got = _copy(args)
    report = ck.emulate(grid, *got, **ce)
    assert report.ok and report.checks
    assert report.steps > 0 and report.warp_instructions >= report.steps // 64
    _compare(name, args, got, want)
    if "wgmma" in ck.asm["ptx"]:
        assert target == "sm_90a"


@ts.kernel
def oob_store(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 128):
    i = tile.program_id(0) * BLOCK
    v = tile.load(x[i:i + BLOCK])
    tile.store(out[i:i + BLOCK], v)


@needs_ptxas
@pytest.mark.parametrize("target", TARGETS)
def test_out_of_bounds_store_is_named_with_kernel_and_ptx_line(target):
    x = np.arange(100, dtype=np.float32)
    out = np.zeros(100, np.float32)
    ck = ts.compile(oob_store, x, out, target=target)
    # The kernel's own bounds check turned into one that lets lane 100.. through: the real PTX, one token changed.
    ptx = ck.asm["ptx"]
    op = next(o for o in ("setp.ge.s64", "setp.ge.u64", "setp.ge.s32", "setp.ge.u32") if o in ptx)
    mutated = ptx.replace(op, op.replace(".ge.", ".gt."))
    assert mutated != ptx
    with pytest.raises(ts.SanitizerError) as e:
        ck.emulate((1,), x, out, ptx=mutated)
    f = e.value.findings[0]
    assert e.value.kind == "global-out-of-bounds" and f.kernel == "oob_store"
    lines = mutated.splitlines()
    assert lines[f.line - 1].strip().startswith(("ld.global", "st.global"))
    assert f"PTX line {f.line}" in str(e.value) and "oob_store" in str(e.value)


@needs_ptxas
@pytest.mark.parametrize("target", TARGETS)
def test_missing_barrier_is_a_shared_race(target):
    from tessera.kernels import row_softmax
    x = np.random.default_rng(0).standard_normal((4, 300)).astype(np.float32)
    y = np.zeros_like(x)
    ck = ts.compile(row_softmax, x, y, target=target)
    ptx = ck.asm["ptx"]
    first = ptx.index("bar.sync", ptx.index("st.shared"))   # the barrier between the partial stores and the block read
    mutated = ptx[:first] + "// dropped" + ptx[ptx.index(";", first) + 1:]
    with pytest.raises(ts.SanitizerError) as e:
        ck.emulate((4,), x, y, ptx=mutated)
    assert e.value.kind == "shared-race" and e.value.findings[0].kernel == "row_softmax"
    assert "RAW" in e.value.findings[0].detail or "WAR" in e.value.findings[0].detail


@needs_ptxas
def test_unimplemented_opcode_names_opcode_and_line():
    from tessera.kernels import vector_add
    a = np.zeros(64, np.float32)
    ck = ts.compile(vector_add, a, a, a, target="sm_80")
    ptx = ck.asm["ptx"].replace("ret;", "popc.b32 %r1, %r1;\n\tret;", 1)
    with pytest.raises(ts.EmulatorError, match=r"popc.*PTX line \d+"):
        ck.emulate((1,), a, a.copy(), a.copy(), ptx=ptx)


def _aligned_256(n):
    raw = np.zeros(n + 64, np.float32)
    skip = (-raw.ctypes.data % 256) // 4
    return raw[skip:skip + n]


@needs_ptxas
def test_report_counters_coalescing_and_bank_conflicts():
    from tessera.kernels import vector_add, matmul
    a, b, c = (_aligned_256(4096) for _ in range(3))     # as cudaMalloc: 256-byte aligned
    ck = ts.compile(vector_add, a, b, c, target="sm_80")
    rep = ck.emulate((4,), a, b, c, checks=False)
    # 16-byte vector loads and stores (runs of 4 f32 per thread): every warp request covers 16 full sectors
    assert "ld.global.v4" in ck.asm["ptx"] and "st.global.v4" in ck.asm["ptx"]
    assert rep.global_requests == 3 * 4 * 4 * 2 and rep.sectors_per_request == pytest.approx(16.0)
    A = np.ones((64, 64), bf16)
    ck = ts.compile(matmul, A, A, np.zeros((64, 64), np.float32), target="sm_80")
    rep = ck.emulate((1, 1), A, A, np.zeros((64, 64), np.float32))
    assert rep.shared_requests > 0 and rep.shared_wavefronts >= rep.shared_requests
    assert rep.shared_bank_conflicts == rep.shared_wavefronts - rep.shared_requests or rep.shared_bank_conflicts >= 0
    assert sum(rep.bank_conflicts_by_line.values()) == rep.shared_bank_conflicts


@needs_ptxas
@pytest.mark.parametrize("arch", TARGETS)
def test_backend_emu_runs_kernels_and_graph_functions(monkeypatch, arch):
    from tessera.kernels import vector_add
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(300).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
    out = np.zeros(300, np.float32)
    ck = vector_add[(3,)](a, b, out)
    assert ck.target == arch
    np.testing.assert_array_equal(out, a + b)

    @ts.function
    def layer(x: ts.Tensor["B", "D", ts.f32], w: ts.Tensor["D", "D", ts.f32]):
        return ts.ops.softmax(ts.sigmoid(ts.gemm(x, w)) * 2.0, axis=-1)

    x, w = rng.standard_normal((8, 32)).astype(np.float32), rng.standard_normal((32, 32)).astype(np.float32)
    got = layer(x, w)
    monkeypatch.setenv("TESSERA_BACKEND", "cpu")
    want = layer(x, w)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_emulator_imports_without_mlir():
    code = ("import sys, tessera.runtime.emulator, tessera.runtime.check; "
            "assert not any(m == 'mlir' or m.startswith('mlir.') for m in sys.modules), 'mlir imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@ts.function
def _graph_block(x, w, b):
    h = ts.gemm(x, w) * 0.5 + b                  # gemm, fused elementwise with a row broadcast
    p = ts.ops.softmax(h)
    n = ts.ops.l2_norm(h, axis=-1, keepdims=True)
    return ts.sigmoid(p) * ts.tanh(h) / n, ts.mean(h, axis=-1), ts.sum(h, axis=-1)


@ts.function
def _graph_shapes(q, k, x):
    split = ts.reshape(x, (2, 5, 3, 4))
    s = ts.stack([x, x * 2.0], axis=0)
    return ts.gemm(q, k), ts.transpose(split, [0, 2, 1, 3]), ts.mean(s, axis=0), ts.concatenate([x, x], axis=1)


def _graph_cases(rng):
    from test_graph import _random, multi_scale_delta_aggregation
    from tessera.gdn import delta_connection
    srcs, tgt, ws, A = _random(seed=11)
    s = rng.standard_normal((2, 33, 16)).astype(bf16)
    t = rng.standard_normal((2, 33, 16)).astype(bf16)
    w = (rng.standard_normal((16, 16)) * 0.3).astype(bf16)
    return [
        ("gemm+epilogue+row ops", _graph_block, (rng.standard_normal((3, 5, 8)).astype(np.float32),
                                                 rng.standard_normal((8, 12)).astype(np.float32),
                                                 rng.standard_normal(12).astype(np.float32)), 1e-5),
        ("batched gemm+strided copies", _graph_shapes, (rng.standard_normal((2, 3, 17, 8)).astype(np.float32),
                                                        rng.standard_normal((2, 3, 8, 40)).astype(np.float32),
                                                        rng.standard_normal((2, 5, 12)).astype(np.float32)), 1e-5),
        ("delta connection (gating)", delta_connection, (s, t, w, 2), 1e-4),
        ("fused delta aggregation", multi_scale_delta_aggregation, (srcs, tgt, ws, A), 2e-2),
    ]


@needs_ptxas
@pytest.mark.parametrize("arch", TARGETS)
def test_graph_pipeline_templates_run_in_emulator(monkeypatch, arch):
    for label, fn, args, tol in _graph_cases(np.random.default_rng(12)):
        monkeypatch.setenv("TESSERA_BACKEND", "cpu")
        want = fn(*args)
        monkeypatch.setenv("TESSERA_BACKEND", "emu")
        monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
        got = fn(*args)
        want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
        for g, wv in zip(got, want):
            np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(wv, np.float64), rtol=tol, atol=tol,
                                       err_msg=f"{label} on {arch}")


@needs_ptxas
@pytest.mark.parametrize("arch", TARGETS)
def test_aot_folder_checked_in_emulator(tmp_path, arch):
    """`tessera aot` + `python -m tessera.runtime.check DIR --emulate`: the smoke suite's artifacts run
    from their PTX without a GPU and match the NumPy references (regression: bf16 outputs were compared
    against the f64 reference reinterpreted as bf16 bits)."""
    out = tmp_path / arch
    subprocess.run([sys.executable, "-m", "tessera.tools.cli", "aot", "--suite", "smoke", "--target", arch,
                    "--out", str(out)], check=True, capture_output=True)
    for cmd in (["-m", "tessera.runtime.check", str(out), "--emulate"], ["-m", "tessera.tools.cli", "emulate", str(out)]):
        r = subprocess.run([sys.executable, *cmd], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("correct=True") == 5


@needs_ptxas
@pytest.mark.parametrize("arch", TARGETS)
def test_store_then_load_by_other_threads_is_ordered(arch):
    """Regression (found by the emulator): tessera.gdn's svd_top_k stores `norms[bj] = -2` (thread 0) and
    then every thread loads `norms[j]`; the GPU code had no barrier in between, a global-memory race
    (the emulator's `global-race`, and a wrong U when warps ran apart). Stores to a tensor the kernel also
    reads now end with a barrier."""
    from tessera.gdn.compression import svd_top_k
    r = np.random.default_rng(12)
    a = r.standard_normal((60, 16)).astype(np.float32)
    v = np.eye(16, dtype=np.float32)
    args = [a, v, np.zeros(16, np.float32), np.zeros((60, 4), np.float32), np.zeros(4, np.float32),
            np.zeros((4, 16), np.float32)]
    want = _copy(args)
    svd_top_k[(1,)](*want)
    got = _copy(args)
    ts.compile(svd_top_k, *args, target=arch).emulate((1,), *got)     # no global-race
    for g, w in zip(got[3:], want[3:]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@needs_ptxas
def test_wgmma_accumulators_read_before_wait_group_are_nan():
    """Adversarial mode: until a wgmma.wait_group retires its group, the accumulator registers read as
    NaN, so an epilogue that does not wait (here: every wait dropped) produces NaN, not lucky numbers;
    its stores into the operand stages are also WAR races with the unretired wgmma group."""
    from tessera.kernels import matmul
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((128, 64)).astype(bf16), rng.standard_normal((64, 128)).astype(bf16)
    c = np.zeros((128, 128), np.float32)
    ck = ts.compile(matmul, a, b, c, target="sm_90a", BM=128, BN=128, BK=64)
    ptx = ck.asm["ptx"]
    assert "wgmma.wait_group" in ptx
    mutated = "\n".join(line for line in ptx.splitlines() if "wgmma.wait_group" not in line)
    ck.emulate((1, 1), a, b, c)
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-4, atol=1e-3)
    c[:] = 0
    with pytest.raises(ts.SanitizerError) as e:       # the epilogue's stores reuse the operand stages: WAR too
        ck.emulate((1, 1), a, b, c, ptx=mutated)
    assert e.value.kind == "shared-race" and "wgmma" in e.value.findings[0].detail
    assert np.isnan(c).all()
    c[:] = 0
    ck.emulate((1, 1), a, b, c, ptx=mutated, checks=False)       # numerics only: not adversarial
    assert not np.isnan(c).any()


@needs_ptxas
@pytest.mark.parametrize("arch", TARGETS)
def test_vector_accesses_follow_the_arguments_alignment(monkeypatch, arch):
    """Arrays of the aligned stride class get the 16-byte vector variant; views into the middle of an
    array (misaligned base, as on the device: the emulator keeps the host address mod 256) get the
    scalar one, and a kernel compiled for aligned arrays refuses them instead of faulting."""
    from tessera.kernels import vector_add
    rng = np.random.default_rng(0)
    big = rng.standard_normal(2100).astype(np.float32)
    x, y = big[1:1025], big[3:1027]
    out = np.zeros(1100, np.float32)[2:1026]
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
    ck = vector_add[(1,)](x, y, out)
    np.testing.assert_array_equal(out, x + y)
    assert ".v4." not in ck.asm["ptx"] and not any(a.get("aligned") for a in ck.metadata["args"])
    a, b, c = (np.zeros(1024, np.float32) for _ in range(3))
    aligned = ts.compile(vector_add, a, b, c, target=arch)
    assert ".v4." in aligned.asm["ptx"] and all(s.get("aligned") for s in aligned.metadata["args"])
    with pytest.raises(ts.LaunchError, match="16-byte vector accesses"):
        aligned[(1,)](x, y, out)
    a[:], b[:] = x, y
    aligned.emulate((1,), a, b, c)
    np.testing.assert_array_equal(c, x + y)
    # 1024 f32 is a whole number of 16-byte chunks: the variant tests bounds per run, never per element,
    # and refuses a length that is not (1022: its last run would be half in bounds)
    assert all(s.get("whole_chunks") for s in aligned.metadata["args"])
    assert not re.search(r"ld\.global\.[bf]32\s", aligned.asm["ptx"])
    short = [np.zeros(1022, np.float32) for _ in range(3)]
    with pytest.raises(ts.LaunchError, match="whole number of 16-byte chunks"):
        aligned[(1,)](*short)
    ragged = vector_add[(1,)](*short)        # the kernel itself compiles the per-element variant
    assert not any(s.get("whole_chunks") for s in ragged.metadata["args"])


@needs_ptxas
def test_wgmma_epilogue_into_a_column_major_output():
    """The sm_90a GEMM's direct epilogue with C outside the aligned stride class (column-major): the
    element-by-element path, with bounds (regression: that path referred to an undefined helper)."""
    from tessera.kernels import matmul
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((200, 128)).astype(bf16), rng.standard_normal((128, 264)).astype(bf16)
    c = np.zeros((264, 200), np.float32).T
    ck = ts.compile(matmul, a, b, c, target="sm_90a", BM=128, BN=128, BK=64)
    assert "wgmma" in ck.asm["ptx"] and "st.global.v4" not in ck.asm["ptx"]
    ck.emulate((2, 3), a, b, c)
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-4, atol=1e-3)
