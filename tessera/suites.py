"""AOT suites: kernels with their inputs, NumPy references, tolerances and the reference each is
timed against on a GPU (`tessera aot --suite NAME`, then `python -m tessera.runtime.check`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Case:
    name: str
    kernel: object
    inputs: Callable          # rng -> list of arguments (arrays and scalars)
    grid: tuple
    outputs: list             # argument positions written by the kernel
    reference: Callable       # inputs -> list of expected outputs (NumPy)
    rtol: float = 1e-5
    atol: float = 1e-6
    bench: str | None = None  # "matmul" (cuBLAS via cupy.matmul) | "copy" (device copy bandwidth)
    constexprs: dict = field(default_factory=dict)


def _bf16():
    import ml_dtypes
    return ml_dtypes.bfloat16


def _smoke():
    from .kernels import vector_add, row_softmax, matmul
    from .gdn import gating_function_kernel, gating_function_reference
    bf16 = _bf16()

    def softmax_ref(a):
        e = np.exp(a[0] - a[0].max(1, keepdims=True))
        return [e / e.sum(1, keepdims=True)]
    return [
        Case("vector_add", vector_add, lambda r: [r.standard_normal(10007).astype(np.float32),
                                                  r.standard_normal(10007).astype(np.float32),
                                                  np.zeros(10007, np.float32)],
             (10, 1, 1), [2], lambda a: [a[0] + a[1]], bench="copy"),
        Case("row_softmax", row_softmax, lambda r: [r.standard_normal((33, 1000)).astype(np.float32),
                                                    np.zeros((33, 1000), np.float32)],
             (33, 1, 1), [1], softmax_ref),
        Case("matmul_bf16_ragged", matmul, lambda r: [r.standard_normal((200, 77)).astype(bf16),
                                                      r.standard_normal((77, 130)).astype(bf16),
                                                      np.zeros((200, 130), np.float32)],
             (4, 3, 1), [2], lambda a: [a[0].astype(np.float32) @ a[1].astype(np.float32)], 1e-3, 1e-3),
        Case("matmul_bf16_128x128x64", matmul, lambda r: [r.standard_normal((200, 200)).astype(bf16),
                                                          r.standard_normal((200, 264)).astype(bf16),
                                                          np.zeros((200, 264), np.float32)],
             (2, 3, 1), [2], lambda a: [a[0].astype(np.float32) @ a[1].astype(np.float32)], 1e-3, 1e-3,
             constexprs=dict(BM=128, BN=128, BK=64)),
        Case("gating_function_kernel", gating_function_kernel,
             lambda r: [r.standard_normal((2, 300, 64)).astype(bf16), (r.standard_normal((64, 64)) * 0.1).astype(bf16),
                        2, np.zeros((2, 300, 64), bf16)],
             (2, 3, 1), [3], lambda a: [gating_function_reference(a[0], a[1], a[2])], 2e-2, 2e-2),
    ]


def _bench():
    from .kernels import matmul, scale
    bf16 = _bf16()
    cases = []
    for n in (4096, 8192):
        cases.append(Case(f"gemm_bf16_{n}", matmul, lambda r, n=n: [r.standard_normal((n, n)).astype(bf16),
                                                                   r.standard_normal((n, n)).astype(bf16),
                                                                   np.zeros((n, n), np.float32)],
                          (n // 128, n // 128, 1), [2], None, 1e-2, 1e-1, bench="matmul",
                          constexprs=dict(BM=128, BN=128, BK=64)))
    n = 1 << 26
    cases.append(Case("scale_bf16_64M", scale, lambda r: [r.standard_normal(n).astype(bf16), np.zeros(n, bf16), 2.0],
                      (n // 2048, 1, 1), [1], lambda a: [(a[0].astype(np.float32) * 2.0).astype(bf16)], 1e-2, 1e-2,
                      bench="copy"))
    cases.append(_fused_delta_case(rows=1 << 20, d=64))  # 4 sources, bf16, rows·D = 2^26
    return cases


def _fused_delta_case(rows, d, sources=4):
    """Issue 4's benchmark: fused delta gating over `sources` bf16 sources (one kernel) against the
    unfused torch sequence and the device copy bandwidth, in the same run."""
    from .gdn.generated import fused_delta_gating
    bf16 = _bf16()
    k = fused_delta_gating(sources, False, False, "tensor")

    def inputs(r):
        t = [r.standard_normal((rows, d)).astype(bf16) for _ in range(sources + 1)]
        w = [(r.standard_normal((d, d)) * 0.1).astype(bf16) for _ in range(sources)]
        return t + w + [r.uniform(0.2, 1.0, sources).astype(np.float32), np.zeros((rows, d), np.float32)]
    ce = {f"D{i}": float(sources - i) for i in range(sources)}
    ce.update({f"C{i}": i for i in range(sources)}, BLOCK_R=32)
    return Case(f"fused_delta_gating_{sources}x{rows}x{d}", k, inputs, (rows // 32, 1, 1), [2 * sources + 2], None,
                2e-2, 2e-2, bench="fused_delta", constexprs=ce)


SUITES = {"smoke": _smoke, "bench": _bench}


def suite(name):
    if name == "all":
        return [c for f in SUITES.values() for c in f()]
    if name not in SUITES:
        raise KeyError(f"unknown suite '{name}' (known: {', '.join(SUITES)}, all)")
    return SUITES[name]()
