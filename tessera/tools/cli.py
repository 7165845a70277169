"""`tessera` command line: `tessera aot --suite NAME --out DIR [--target sm_90a]`."""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ..errors import TesseraError


BIG_INPUT = 4 << 20


def aot(args):
    import tessera as ts
    from ..suites import suite
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    index = []
    for case in suite(args.suite):
        inputs = case.inputs(rng)
        ck = ts.compile(case.kernel, *inputs, target=args.target, **case.constexprs)
        d = os.path.join(args.out, case.name)
        ck.save(d)
        # large inputs are regenerated on the GPU host (the artifact folder travels, 64 MiB at most)
        big = {i for i, a in enumerate(inputs) if isinstance(a, np.ndarray) and a.nbytes > BIG_INPUT}
        arrays = {f"arg{i}": a for i, a in enumerate(inputs) if isinstance(a, np.ndarray) and i not in big}
        np.savez(os.path.join(d, "inputs.npz"), **{k: _storable(v) for k, v in arrays.items()})
        expected = case.reference(inputs) if case.reference is not None and not big else None
        if expected is not None:
            np.savez(os.path.join(d, "expected.npz"), **{f"out{i}": _storable(e) for i, e in enumerate(expected)})
        spec = {"args": [({"generate": "zeros" if not a.any() else "normal", "shape": list(a.shape), "dtype": str(a.dtype)}
                          if i in big else {"array": f"arg{i}", "dtype": str(a.dtype)})
                         if isinstance(a, np.ndarray) else {"scalar": a} for i, a in enumerate(inputs)],
                "grid": list(case.grid), "outputs": case.outputs, "rtol": case.rtol, "atol": case.atol,
                "bench": case.bench, "has_expected": expected is not None}
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(spec, f, indent=2)
        index.append(case.name)
        print(f"{case.name:28s} {args.target}  regs={ck.metadata.get('registers')}  smem={ck.metadata.get('shared_bytes')} B")
    with open(os.path.join(args.out, "suite.json"), "w") as f:
        json.dump({"suite": args.suite, "target": args.target, "cases": index}, f, indent=2)


def _storable(a):
    """bf16/fp8 arrays are stored as their bit patterns (the GPU host may lack ml_dtypes)."""
    a = np.asarray(a)
    if a.dtype.kind == "V" or a.dtype.name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        return a.view(np.uint16 if a.itemsize == 2 else np.uint8)
    return a


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tessera")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("aot", help="compile a suite of kernels to cubins with their inputs")
    p.add_argument("--suite", default="smoke")
    p.add_argument("--out", required=True)
    p.add_argument("--target", default="sm_90a", choices=["sm_80", "sm_90a"])
    p.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        aot(args)
    except TesseraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
