"""Every kernel of the CPU suite compiles for sm_80 and sm_90a through ptxas (no GPU needed)."""
import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera.backends.nvidia.ptxas import find_ptxas
from tessera.errors import BackendUnavailable

import test_control_flow as cf
import test_elementwise as ew
import test_matmul_gating as mg
import test_memory as mem
import test_reductions as red

bf16 = ml_dtypes.bfloat16


def z(shape, dt=np.float32):
    return np.zeros(shape, dt)


SUITE = {
    "vector_add": (ew.vector_add, lambda: (z(100), z(100), z(100)), {}),
    "operators": (ew.operators, lambda: (z(32), z(32), z((15, 32))), {}),
    "broadcast": (ew.bcast, lambda: (z(8), z(16), z((8, 16))), {}),
    "casts": (ew.casts, lambda: (z(13, bf16), z(13, np.float16), z(13, np.int32), z(13, bf16), z(13), z(13, np.int64)), {}),
    "scalars": (ew.scalars, lambda: (z(16), z(16), 1.5, 3, 7, True), {}),
    "copy2d": (mem.copy2d, lambda: (z((30, 40)), z((30, 40))), {}),
    "masked": (mem.masked, lambda: (z(20), z(20), 0.0), {}),
    "scalar_io": (mem.scalar_io, lambda: (z(10), z(4, np.int32), z(4)), {}),
    "blocks": (mem.blocks, lambda: (z((2, 13, 6)), z((2, 13, 6))), {}),
    "shared_pipeline": (mem.shared_pipeline, lambda: (z((20, 10), bf16), z((20, 10))), {}),
    "views_of_views": (mem.views_of_views, lambda: (z((3, 10)), z((3, 10))), {}),
    "bool_io": (mem.bool_io, lambda: (z(16), z(16, bool), z(16, bool)), {}),
    "reductions": (red.reduce_all, lambda: (z((11, 13)), z((6, 13)), z(3)), {}),
    "row_softmax": (red.row_softmax, lambda: (z((7, 50)), z((7, 50))), {}),
    "int_reduce": (red.int_reduce, lambda: (z(25, np.int32), z(3, np.int32)), {}),
    "loops": (cf.loops, lambda: (z(20), z(5), 20), {}),
    "constexpr_if": (cf.constexpr_if, lambda: (z(16), z(16)), {"MODE": "neg"}),
    "tile_carry": (cf.tile_carry, lambda: (z((10, 16)), z(16)), {}),
    "nested": (cf.nested, lambda: (z((3, 20), np.int32),), {}),
    "matmul_bf16": (mg.matmul, lambda: (z((70, 37), bf16), z((37, 45), bf16), z((70, 45))), {}),
    "matmul_smem_f16": (mg.matmul_smem, lambda: (z((40, 30), np.float16), z((30, 20), np.float16), z((40, 20), np.float16)), {}),
    "gating_function_kernel": (mg.gating_function_kernel, lambda: (z((2, 50, 32), bf16), z((32, 32), bf16), 3, z((2, 50, 32), bf16)), {}),
}


def _have_ptxas():
    try:
        find_ptxas()
        return True
    except BackendUnavailable:
        return False


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (CUDA toolkit or nvidia-cuda-nvcc)")
@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
@pytest.mark.parametrize("name", sorted(SUITE))
def test_suite_kernel_compiles_to_cubin(name, target):
    kernel, args, constexprs = SUITE[name]
    ck = ts.compile(kernel, *args(), target=target, **constexprs)
    assert list(ck.asm) == ["tile", "gpu", "llvm", "ptx", "cubin"]
    assert f".target {target}" in ck.asm["ptx"]
    assert ck.asm["cubin"][:4] == b"\x7fELF"
    assert ck.metadata["registers"] and ck.metadata["registers"] <= 255
    assert ck.metadata["shared_bytes"] >= 0


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found")
def test_shared_memory_over_budget_is_out_of_resources():
    from tessera import tile

    @ts.kernel
    def too_big(x: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 65536):
        buf = tile.alloc_shared([BLOCK], ts.f32)  # OVER-BUDGET
        tile.fill(buf, 1.0)
        tile.store(x[0:16], 1.0)

    with pytest.raises(ts.OutOfResources) as ei:
        ts.compile(too_big, z(16), target="sm_90a")
    e = ei.value
    assert e.budget == 227 * 1024 and e.required > e.budget
    assert "OVER-BUDGET" in str(e) and "shared memory" in str(e)
    ck = ts.compile(too_big, z(16), target="sm_90a", BLOCK=1024)  # the suggested smaller config fits
    assert ck.metadata["shared_bytes"] < 227 * 1024


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found")
def test_exchange_area_over_budget_names_the_exchanging_line():
    """A 256x256 f32 tile reduced along an axis needs 256 KiB of shared memory to exchange it between
    threads, with no shared buffer of the kernel's own: the error points at the reduction and asks for
    smaller tiles (it used to name the largest of no buffers, "0 bytes")."""
    from tessera import tile

    @ts.kernel
    def rowsum(x: tile.Tensor["M", "N", ts.f32], y: tile.Tensor["M", ts.f32], B: ts.constexpr = 256):
        t = tile.load(x[0:B, 0:B])
        tile.store(y[0:B], tile.sum(t, axis=1))  # EXCHANGE

    with pytest.raises(ts.OutOfResources) as ei:
        ts.compile(rowsum, z((256, 256)), z(256), target="sm_80")
    e = ei.value
    assert e.required > e.budget and "smaller tiles" in str(e) and "0 bytes)" not in str(e)
    src = open(__file__).read().splitlines()
    assert e.filename == __file__ and "# EXCHANGE" in src[e.line - 1], str(e)
    assert ts.compile(rowsum, z((256, 256)), z(256), target="sm_80", B=64).metadata["shared_bytes"] < e.budget


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found")
def test_sm90a_gemm_takes_the_tma_wgmma_path():
    from tessera.kernels import matmul
    a, b, c = z((200, 200), bf16), z((200, 264), bf16), z((200, 264))
    ck = ts.compile(matmul, a, b, c, target="sm_90a", BM=128, BN=128, BK=64, num_stages=3)
    assert ck.metadata["tma"] == [[0, 128, 64], [1, 64, 64]]
    ptx = ck.asm["ptx"]
    assert "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16" in ptx
    assert "cp.async.bulk.tensor.2d" in ptx and "mbarrier.try_wait.parity" in ptx
    assert ck.metadata["shared_bytes"] >= 3 * 32768
    # a B whose rows are not 16-byte multiples cannot be described by TMA: the generic path is used
    ck2 = ts.compile(matmul, a, z((200, 260), bf16), z((200, 260)), target="sm_90a", BM=128, BN=128, BK=64)
    assert ck2.metadata["tma"] == [] and "wgmma" not in ck2.asm["ptx"]
    # sm_80 has no TMA/WGMMA: the same kernel uses mma.sync
    ck3 = ts.compile(matmul, a, b, c, target="sm_80", BM=128, BN=128, BK=64)
    assert "mma.sync.aligned.m16n8k16" in ck3.asm["ptx"] and "wgmma" not in ck3.asm["ptx"]


@pytest.mark.gpu
@pytest.mark.parametrize("bm,bn,bk", [(128, 128, 64), (32, 32, 16)])
def test_matmul_on_gpu(bm, bn, bk):
    import cupy as cp
    from tessera.kernels import matmul
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 200)).astype(bf16)
    b = rng.standard_normal((200, 264)).astype(bf16)
    c = cp.zeros((200, 264), np.float32)
    matmul[(-(-200 // bm), -(-264 // bn))](cp.asarray(a.view(np.uint16)), cp.asarray(b.view(np.uint16)), c,
                                          BM=bm, BN=bn, BK=bk)
    np.testing.assert_allclose(cp.asnumpy(c), a.astype(np.float32) @ b.astype(np.float32), rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found")
def test_cp_async_of_a_column_uses_the_element_path():
    """A window whose last base dim is indexed (a column) is not contiguous: no 16-byte cp.async."""
    from tessera import tile

    @ts.kernel
    def column(x: tile.Tensor["M", "N", ts.bf16], out: tile.Tensor["M", ts.bf16], j: int):
        buf = tile.alloc_shared([64], ts.bf16)
        tile.cp_async(buf, x[0:64, j])
        tile.cp_commit_group()
        tile.cp_wait_group(0)
        tile.barrier()
        tile.store(out[0:64], buf)

    ck = ts.compile(column, z((64, 8), bf16), z(64, bf16), 3, target="sm_80")
    assert "nvgpu.device_async_copy" not in ck.asm["gpu"]
    row = ts.compile(mem.shared_pipeline, z((20, 16), bf16), z((20, 16)), target="sm_80")
    assert "nvgpu.device_async_copy" in row.asm["gpu"]
