"""Target descriptions (no mlir import): what the resource checks and pipelines need."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str            # "sm_80" | "sm_90a"
    chip: str            # nvvm-attach-target chip
    cc: int              # compute capability ×10
    smem_per_block: int  # max dynamic shared memory per CTA with the opt-in, bytes
    regs_per_thread: int = 255
    regs_per_block: int = 65536
    max_threads: int = 1024


TARGETS = {
    "sm_80": Target("sm_80", "sm_80", 80, 163 * 1024),
    "sm_90a": Target("sm_90a", "sm_90a", 90, 227 * 1024),
}
