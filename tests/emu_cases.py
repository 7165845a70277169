"""The kernels the emulator suite runs on sm_80 and sm_90a (compared with the CPU backend): the
NVIDIA compile suite, the smoke and bench suites at small shapes, the GDN kernels. Each case is
(name, kernel, grid, make_args(rng), constexprs)."""
import ml_dtypes
import numpy as np

import test_control_flow as cf
import test_elementwise as ew
import test_matmul_gating as mg
import test_memory as mem
import test_reductions as red
from tessera.gdn import gating_function_kernel
from tessera.gdn.generated import fused_delta_gating
from tessera.kernels import matmul, row_softmax, scale, vector_add

bf16 = ml_dtypes.bfloat16


def R(rng, shape, dt=np.float32):
    return rng.standard_normal(shape).astype(dt)


def Z(shape, dt=np.float32):
    return np.zeros(shape, dt)


def _fused(n, residual, sparse):
    k = fused_delta_gating(n, residual, sparse, "tensor")
    ce = {f"D{i}": float(n - i) for i in range(n)}
    ce.update({f"C{i}": i for i in range(n)}, BLOCK_R=32, RESIDUAL=residual, SPARSE=sparse)
    if sparse:
        ce["THRESH"] = 0.5

    def make(r):
        return ([R(r, (128, 64), bf16) for _ in range(n + 1)] + [(R(r, (64, 64)) * 0.1).astype(bf16) for _ in range(n)]
                + [np.array([0.9, 0.1, 0.7, 0.3][:n], np.float32), Z((128, 64))])
    return k, make, ce


def cases():
    out = [
        ("vector_add", ew.vector_add, (2,), lambda r: [R(r, 100), R(r, 100), Z(100)], {}),
        ("operators", ew.operators, (1,), lambda r: [R(r, 32), R(r, 32) + 3, Z((15, 32))], {}),
        ("broadcast", ew.bcast, (1,), lambda r: [R(r, 8), R(r, 16), Z((8, 16))], {}),
        ("casts", ew.casts, (1,), lambda r: [R(r, 13, bf16), R(r, 13, np.float16),
                                             r.integers(-50, 50, 13).astype(np.int32), Z(13, bf16), Z(13),
                                             Z(13, np.int64)], {}),
        ("scalars", ew.scalars, (1,), lambda r: [R(r, 16), Z(16), 1.5, 3, 7, True], {}),
        ("scalars_false", ew.scalars, (1,), lambda r: [R(r, 16), Z(16), 1.5, 3, 7, False], {}),
        ("copy2d_strided", mem.copy2d, (2, 2), lambda r: [R(r, (30, 40))[::2, ::3],
                                                          np.zeros((40, 30), np.float32).T[:15, :14]], {}),
        ("copy2d_negstride", mem.copy2d, (2, 2), lambda r: [R(r, (9, 11))[::-1, ::-1], Z((9, 11))], {}),
        ("masked", mem.masked, (1,), lambda r: [R(r, 20), Z(20), 0.0], {}),
        ("scalar_io", mem.scalar_io, (4,), lambda r: [R(r, 10), np.array([3, 0, 9, 4], np.int32), Z(4)], {}),
        ("blocks", mem.blocks, (2, 2), lambda r: [R(r, (2, 13, 6)), Z((2, 13, 6))], {}),
        ("shared_pipeline", mem.shared_pipeline, (2,), lambda r: [R(r, (20, 10), bf16), Z((20, 10))], {}),
        ("views_of_views", mem.views_of_views, (3,), lambda r: [R(r, (3, 10)), Z((3, 10))], {}),
        ("bool_io", mem.bool_io, (1,), lambda r: [R(r, 16), r.random(16) > 0.5, Z(16, bool)], {}),
        ("reductions", red.reduce_all, (1,), lambda r: [R(r, (11, 13)), Z((6, 13)), Z(3)], {}),
        ("row_softmax", red.row_softmax, (7,), lambda r: [R(r, (7, 50)), Z((7, 50))], {}),
        ("int_reduce", red.int_reduce, (1,), lambda r: [r.integers(-100, 100, 25).astype(np.int32),
                                                        Z(3, np.int32)], {}),
        ("axis_reduce", red.axis_reduce, (1,), lambda r: [R(r, (5, 1000)), Z(5), Z(5), Z(1000)], {}),
        ("loops", cf.loops, (1,), lambda r: [R(r, 20), Z(5), 20], {}),
        ("constexpr_if", cf.constexpr_if, (1,), lambda r: [R(r, 16), Z(16)], {"MODE": "neg"}),
        ("tile_carry", cf.tile_carry, (1,), lambda r: [R(r, (10, 16)), Z(16)], {}),
        ("nested", cf.nested, (1,), lambda r: [Z((3, 20), np.int32)], {}),
        ("matmul_bf16", mg.matmul, (3, 2), lambda r: [R(r, (70, 37), bf16), R(r, (37, 45), bf16), Z((70, 45))], {}),
        ("matmul_smem_f16", mg.matmul_smem, (3, 2), lambda r: [R(r, (40, 30), np.float16), R(r, (30, 20), np.float16),
                                                               Z((40, 20), np.float16)], {}),
        ("gating_function_kernel", mg.gating_function_kernel, (2, 1),
         lambda r: [R(r, (2, 50, 32), bf16), (R(r, (32, 32)) * 0.2).astype(bf16), 3, Z((2, 50, 32), bf16)], {}),
        ("smoke.vector_add", vector_add, (10,), lambda r: [R(r, 10007), R(r, 10007), Z(10007)], {}),
        ("smoke.row_softmax", row_softmax, (33,), lambda r: [R(r, (33, 1000)), Z((33, 1000))], {}),
        ("smoke.matmul_bf16_ragged", matmul, (4, 3), lambda r: [R(r, (200, 77), bf16), R(r, (77, 130), bf16),
                                                                Z((200, 130))], {}),
        ("smoke.matmul_bf16_128x128x64", matmul, (2, 3), lambda r: [R(r, (200, 200), bf16), R(r, (200, 264), bf16),
                                                                    Z((200, 264))], dict(BM=128, BN=128, BK=64)),
        ("smoke.gating_function_kernel", gating_function_kernel, (2, 3),
         lambda r: [R(r, (2, 300, 64), bf16), (R(r, (64, 64)) * 0.1).astype(bf16), 2, Z((2, 300, 64), bf16)], {}),
        ("bench.scale_bf16", scale, (4,), lambda r: [R(r, 8192, bf16), Z(8192, bf16), 2.0], {}),
        ("bench.gemm_bf16_small", matmul, (2, 2), lambda r: [R(r, (256, 256), bf16), R(r, (256, 256), bf16),
                                                             Z((256, 256))], dict(BM=128, BN=128, BK=64)),
    ]
    out.append(("fp8_roundtrip", ew.fp8_roundtrip, (5,), lambda r: [
        np.concatenate([np.array([0, 1, -1, 448, 470, 1e9, -1e9, 2 ** -9, np.nan, -0.0], np.float32),
                        (r.standard_normal(290) * np.exp(r.uniform(-9, 7, 290))).astype(np.float32)]),
        Z(300, ml_dtypes.float8_e4m3fn), Z(300)], {}))
    for n, res, sp in ((1, False, False), (2, True, True), (4, False, False), (2, True, False), (3, False, True)):
        k, make, ce = _fused(n, res, sp)
        out.append((f"gdn.fused_delta_{n}{'_res' if res else ''}{'_sparse' if sp else ''}", k, (4,), make, ce))
    # 64-row blocks, as the graph plan launches it on sm_90a: the gating GEMMs run on wgmma there
    k, make, ce = _fused(2, True, True)
    out.append(("gdn.fused_delta_2_res_sparse_r64", k, (2,), make, dict(ce, BLOCK_R=64)))
    return out + template_cases()


def template_cases():
    """The graph level's kernel templates (tessera.graph.kernels), launched as the plan launches them."""
    import tessera.graph.kernels as gk
    ew = gk.elementwise([("x", "full"), ("b", "row")], [], ["y = tile.exp(v_x) * v_b - 0.5"], [("out", "y")])
    out = [
        ("graph.elementwise", ew, (3, 1), lambda r: [R(r, (10, 40)), R(r, (1, 40)), Z((10, 40))], {}),
        ("graph.gemm", gk.gemm(False, False), (2, 2), lambda r: [R(r, (40, 24)), R(r, (24, 50)), Z((40, 50))], {}),
        ("graph.gemm_epilogue_scaled", gk.gemm(True, True), (2, 2),
         lambda r: [R(r, (40, 24)), R(r, (24, 50)), Z((40, 50)), R(r, (40, 50)), np.array([0.7], np.float32)], {}),
        ("graph.batched_gemm", gk.batched_gemm(), (1, 2, 3),
         lambda r: [R(r, (3, 17, 8)), R(r, (3, 8, 40)), Z((3, 17, 40))], {}),
        ("graph.strided_copy3", gk.strided_copy(3), (6,), lambda r: [R(r, (2, 3, 20)).transpose(1, 0, 2)[:, :, ::2],
                                                                     Z((3, 2, 10))], {}),
        ("graph.embedding", gk.embedding(), (5,), lambda r: [np.array([3, 0, 7, 7, 1], np.int64), R(r, (8, 48)),
                                                             Z((5, 48))], {}),
        ("graph.dropout", gk.dropout(), (4,), lambda r: [R(r, (4, 200)), Z((4, 200))], dict(P=0.25, SEED=7)),
    ]
    for kind in ("sum", "mean", "max", "min", "softmax", "l2"):
        shape_out = (6, 90) if kind == "softmax" else (6, 1)
        out.append((f"graph.row_{kind}", gk.row_op(kind), (6,), lambda r, o=shape_out: [R(r, (6, 90)), Z(o)], {}))
    for product, pair in ((False, False), (True, False), (True, True)):
        k = gk.gating(product, pair)
        ins = (lambda r: [R(r, (50, 16)), R(r, (50, 16))]) if pair else (lambda r: [R(r, (50, 16))])
        out.append((f"graph.{k.__name__}", k, (2,),
                    lambda r, ins=ins: ins(r) + [(R(r, (16, 16)) * 0.3), Z((50, 16))], dict(DIST=2.0)))
    return out


def tolerance(args):
    """Per-dtype tolerance (relative to |reference| + 1): exact math is compared bit for bit by the
    caller; bf16 / f16 inputs or outputs allow one 16-bit rounding step, f32 accumulation order 1e-5."""
    low = any(isinstance(a, np.ndarray) and a.dtype in (bf16, np.float16) for a in args)
    return 2e-2 if low else 1e-5


# Cases whose math is exact (copies, casts, integer ops, single roundings): compared bit for bit.
EXACT = {"vector_add", "broadcast", "casts", "scalars", "scalars_false", "copy2d_strided", "copy2d_negstride",
         "masked", "scalar_io", "blocks", "shared_pipeline", "views_of_views", "bool_io", "int_reduce",
         "constexpr_if", "nested", "smoke.vector_add", "bench.scale_bf16", "fp8_roundtrip", "graph.strided_copy3",
         "graph.embedding", "graph.dropout"}
