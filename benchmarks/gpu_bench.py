"""GPU benchmarks of DESIGN/issue 3: bf16 GEMM 4096³ and 8192³ against cuBLAS, and a memory-bound
bf16 kernel against the device's copy bandwidth, measured in one run on the GPU host.

    # compiling machine (no GPU needed)
    python benchmarks/gpu_bench.py compile --out .gpu-bench [--target sm_90a]
    # GPU host (no MLIR needed), prints a table and writes JSON
    PYTHONPATH=. python3 benchmarks/gpu_bench.py run .gpu-bench --json bench.json
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile")
    c.add_argument("--out", default=".gpu-bench")
    c.add_argument("--target", default="sm_90a", choices=["sm_80", "sm_90a"])
    r = sub.add_parser("run")
    r.add_argument("folder")
    r.add_argument("--json")
    args = ap.parse_args(argv)
    if args.cmd == "compile":
        from tessera.tools.cli import main as cli
        return cli(["aot", "--suite", "bench", "--out", args.out, "--target", args.target])
    from tessera.runtime.check import main as check
    return check([args.folder, "--bench"] + (["--json", args.json] if args.json else []))


if __name__ == "__main__":
    sys.exit(main())
