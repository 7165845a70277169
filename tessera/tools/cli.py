"""`tessera` command line: `tessera aot --suite NAME --out DIR [--target sm_90a]`, `tessera emulate DIR`,
`tessera cache list|info [KEY]|verify [--dry-run]|clear`, `tessera run --nproc N script.py [args]` (tessera.dist),
`tessera bench --out DIR` (GDNBenchmarkSuite), `tessera serve PACKAGE` (tessera.serve)."""
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


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def cache_cmd(args):
    import time
    from ..runtime import cache
    from ..runtime.tuning_db import TuningDB
    db = TuningDB()
    if args.action == "list":
        entries = cache.entries()
        print(f"{'key':14s} {'kernel':32s} {'target':7s} {'size':>10s}  compiled")
        for e in entries:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["mtime"]))
            status = "CORRUPT" if e.get("corrupt") else when
            print(f"{e['key'][:12]:14s} {str(e.get('name', '?'))[:32]:32s} {str(e.get('target', '?')):7s} "
                  f"{_size(e['size']):>10s}  {status}")
        rows = db.rows()
        if rows:
            print(f"\nautotune results ({db.file}):")
            for name, key, device, _, config, ms, status, _ in rows:
                what = f"{ms:.4f} ms" if ms is not None else status
                print(f"  {name:24s} {key:40s} {device[:28]:28s} {config:40s} {what}")
        print(f"\n{len(entries)} compiled kernel(s), {len(rows)} autotune result(s)")
    elif args.action == "info":
        if args.key:
            matches = [e for e in cache.entries() if e["key"].startswith(args.key)]
            if len(matches) != 1:
                print(f"error: {len(matches)} entries match '{args.key}'", file=sys.stderr)
                return 1
            e = matches[0]
            ok = cache.load(e["key"]) is not None
            print(json.dumps({**e, "checksums": "ok" if ok else "corrupt (removed)"}, indent=2, sort_keys=True,
                             default=str))
            return 0
        entries = cache.entries()
        print(f"cache directory : {cache.root()}")
        print(f"compiled kernels: {len(entries)} ({_size(sum(e['size'] for e in entries))})")
        print(f"autotune db     : {db.file} ({len(db.rows())} result(s))")
    elif args.action == "verify":
        from ..runtime.cache_verify import format_report, verify
        rep = verify(dry_run=args.dry_run)
        print(format_report(rep))
        return 0 if rep.healthy else 1
    elif args.action == "clear":
        n = cache.clear()
        m = db.clear()
        print(f"removed {n} compiled kernel(s) and {m} autotune result(s) from {cache.root().parent}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tessera")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("aot", help="compile a suite of kernels to cubins with their inputs")
    p.add_argument("--suite", default="smoke")
    p.add_argument("--out", required=True)
    p.add_argument("--target", default="sm_90a", choices=["sm_80", "sm_90a"])
    p.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("cache", help="inspect, verify (and repair) or clear the compile cache and the autotune database")
    c.add_argument("action", choices=["list", "info", "verify", "clear"])
    c.add_argument("key", nargs="?", help="for info: a cache key (or a unique prefix)")
    c.add_argument("--dry-run", action="store_true", help="for verify: report what is wrong, change nothing")
    e = sub.add_parser("emulate", help="run an AOT folder's PTX in the PTX emulator with its checks (no GPU)")
    e.add_argument("folder")
    e.add_argument("--json", help="write the per-case results here")
    r = sub.add_parser("run", help="run a script on N processes (torchrun; gloo on CPUs, NCCL on GPUs) for tessera.dist")
    r.add_argument("--nproc", type=int, required=True, help="number of processes (ranks) on this host")
    r.add_argument("script")
    r.add_argument("script_args", nargs=argparse.REMAINDER)
    from ..production import bench_cli
    bench_cli.add_parser(sub)
    s = sub.add_parser("serve", help="serve a deployment package over HTTP (POST /v1/infer, GET /health, GET /metrics)")
    from ..serve.cli import add_arguments as serve_arguments   # argparse only; no fastapi at import
    serve_arguments(s)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "bench":
            return bench_cli.main(args)
        if args.cmd == "serve":
            from ..serve.cli import run as serve_run
            return serve_run(args)
        if args.cmd == "cache":
            return cache_cmd(args)
        if args.cmd == "run":
            from ..dist.launch import run
            return run(args.nproc, args.script, args.script_args)
        if args.cmd == "emulate":
            from ..runtime.check import main_emulate
            return main_emulate(args.folder, args.json)
        aot(args)
    except TesseraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
