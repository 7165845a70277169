"""`from tessera import target_ir`: what each compile target offers (no mlir import).

    target_ir.describe("sm_90a").shared_memory_per_block   # 232448
    target_ir.describe("sm_90a").features                  # ("mma.sync", "cp.async", ..., "wgmma", "tma", ...)
    target_ir.available()                                  # ["cpu"] here, plus the GPU's target where there is one

GPU figures are the per-CTA limits the resource checks use before launch (tessera.backends.nvidia.targets);
the CPU's are this machine's (cores, SIMD flags from /proc/cpuinfo)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from .backends.nvidia.targets import TARGETS as _GPU

_GPU_FEATURES = {
    "sm_80": ("mma.sync", "cp.async", "ldmatrix", "bf16", "tf32"),
    "sm_90a": ("mma.sync", "cp.async", "ldmatrix", "bf16", "tf32", "fp8", "wgmma", "tma", "mbarrier",
               "thread_block_clusters", "setmaxnreg"),
}


@dataclass(frozen=True)
class TargetDescription:
    name: str
    kind: str                        # "cpu" | "gpu"
    features: tuple
    shared_memory_per_block: int | None = None
    registers_per_thread: int | None = None
    registers_per_block: int | None = None
    max_threads_per_block: int | None = None
    compute_capability: int | None = None
    cores: int | None = None


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(x for x in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16",
                                             "amx_bf16", "neon", "asimd") if x in flags)
    except OSError:
        pass
    return ()


def describe(name: str) -> TargetDescription:
    from .errors import TesseraError
    name = "sm_90a" if name == "sm_90" else name
    if name == "cpu":
        return TargetDescription("cpu", "cpu", _cpu_flags(), cores=os.cpu_count())
    if name not in _GPU:
        raise TesseraError(f"target_ir: unknown target {name!r} (cpu, sm_80, sm_90a)")
    t = _GPU[name]
    return TargetDescription(name, "gpu", _GPU_FEATURES[name], t.smem_per_block, t.regs_per_thread,
                             t.regs_per_block, t.max_threads, t.cc)


def available() -> list:
    """The targets that can run here: "cpu", plus the attached GPU's."""
    out = ["cpu"]
    try:
        from .runtime.cuda import device_arch
        out.append(device_arch())
    except Exception:   # no CuPy / GPU / supported arch
        pass
    return out


TARGETS = ("cpu", "sm_80", "sm_90a")
