"""Static and emulated cost of tessera's GPU code per kernel, without a GPU: registers and spills
(ptxas), PTX lines, and the PTX emulator's counters for one launch (warp instructions issued, global
requests and 32-byte sectors per request, shared-memory bank conflicts). The proxy the GPU
code-generation work is measured with (issue 10); a Triton column is still to come.

    python benchmarks/codegen_counters.py [--target sm_80|sm_90a] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import tessera as ts

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import emu_cases  # noqa: E402

KERNELS = ("smoke.vector_add", "bench.scale_bf16", "smoke.row_softmax", "graph.row_sum", "graph.elementwise",
           "smoke.matmul_bf16_ragged", "bench.gemm_bf16_small", "smoke.gating_function_kernel", "gdn.fused_delta_4")


def measure(target):
    rows = []
    for name, kernel, grid, make, ce in emu_cases.cases():
        if name not in KERNELS:
            continue
        args = make(np.random.default_rng(1))
        ck = ts.compile(kernel, *args, target=target, **ce)
        rep = ck.emulate(grid, *args, **ce)
        rows.append({"kernel": name, "target": target, "registers": ck.metadata.get("registers"),
                     "spill_bytes": ck.metadata.get("spill_stores"),
                     "ptx_lines": len(ck.asm["ptx"].splitlines()), "warp_instructions": rep.warp_instructions,
                     "global_requests": rep.global_requests, "sectors_per_request": round(rep.sectors_per_request, 2),
                     "shared_bank_conflicts": rep.shared_bank_conflicts})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="sm_80", choices=["sm_80", "sm_90a"])
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = measure(args.target)
    print(f"{'kernel':30s} {'regs':>5s} {'spill':>6s} {'PTX':>6s} {'warp instr':>11s} {'requests':>9s} "
          f"{'sect/req':>8s} {'bank confl':>10s}")
    for r in rows:
        print(f"{r['kernel']:30s} {str(r['registers']):>5s} {str(r['spill_bytes']):>6s} {r['ptx_lines']:6d} "
              f"{r['warp_instructions']:11d} {r['global_requests']:9d} {r['sectors_per_request']:8.2f} "
              f"{r['shared_bank_conflicts']:10d}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
