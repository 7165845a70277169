"""Compile time per kernel per NVIDIA target (no GPU needed): the smoke suite compiled for sm_80
and sm_90a with the cache disabled, stage by stage, plus ptxas' register and shared-memory report.

    python benchmarks/compile_nvidia.py [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform

os.environ["TESSERA_CACHE"] = "0"

import numpy as np  # noqa: E402

import tessera as ts  # noqa: E402
from tessera.suites import suite  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    cases = suite("smoke")
    ts.compile(cases[0].kernel, *cases[0].inputs(rng), target="sm_80")  # import MLIR once, outside the timings
    for target in ("sm_80", "sm_90a"):
        for case in cases:
            case.kernel._compiled.clear()
            ck = ts.compile(case.kernel, *case.inputs(rng), target=target, **case.constexprs)
            st = ck.metadata["compile_seconds"]
            rows.append({"kernel": case.name, "target": target, **{k: v * 1e3 for k, v in st.items()},
                         "total_ms": sum(st.values()) * 1e3, "registers": ck.metadata.get("registers"),
                         "spill_stores": ck.metadata.get("spill_stores"), "shared_bytes": ck.metadata.get("shared_bytes")})
    print(f"machine: {platform.node()} ({os.cpu_count()} CPUs), cache disabled, times in ms")
    stages = ["tile", "gpu", "llvm", "ptx", "cubin"]
    print(f"{'kernel':26s} {'target':7s} " + " ".join(f"{s:>7s}" for s in stages) + f" {'total':>8s} {'regs':>5s} {'spill':>6s} {'smem':>7s}")
    for r in rows:
        print(f"{r['kernel']:26s} {r['target']:7s} " + " ".join(f"{r[s]:7.1f}" for s in stages)
              + f" {r['total_ms']:8.1f} {r['registers']:5d} {r['spill_stores']:6d} {r['shared_bytes']:7d}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
