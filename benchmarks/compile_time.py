"""Compile time against kernel length (issue 16): a kernel of N straight-line statements on a 16×64 f32
tile (elementwise ops, a load every 20th statement, a store every 25th, a row reduction every 100th),
compiled per target, and one elementwise kernel on a 65,536-element tile. Every case is compiled in a
fresh process with the on-disk cache off, after a warm-up compile (MLIR's import is not counted).
Reported: the stage table's times (tile → gpu → llvm → ptx → cubin; `jit` is the CPU ExecutionEngine's
LLVM code generation) and seconds per statement.

    python benchmarks/compile_time.py [--quick] [--sizes 100,200] [--targets cpu,sm_80,sm_90a]
        [--tile 65536] [--passes] [--profile] [--check] [--timeout 900] [--json out.json]

--passes adds each pass's time (summed over stages) for the largest case per target; --profile the
top Python functions under cProfile; --check runs each CPU kernel and compares it with NumPy.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

SIZES = (100, 200, 400, 800, 1600)
QUICK_SIZES = (25, 50, 100)
TARGETS = ("cpu", "sm_80", "sm_90a")
BM, BN = 16, 64

# v = previous value, w = the one three statements back (so values have several uses, as in real code)
OPS = ("{v} * a + b",
       "T.maximum({v}, {w}) - a * 0.5",
       "T.exp({v} * 0.01) - {w} * 0.25",
       "T.where({v} > {w}, {v}, b)",
       "{v} / (T.abs({w}) + 1.0)",
       "T.tanh({v}) + {w} * 0.5")


def body(n):
    """The kernel's N statements (source lines) and the number of output slots they store."""
    lines, names, slot = [], ["a", "b"], 0
    for i in range(n - 1):
        v, w = names[-1], names[-3] if len(names) >= 3 else names[0]
        if i % 25 == 24:
            lines.append(f"T.store(out[{slot}, r0:r0 + BM, 0:BN], {v})")
            slot += 1
            continue
        if i % 100 == 49:
            expr = f"{v} - T.max({v}, axis=1, keepdims=True)"
        elif i % 20 == 9:
            expr = f"T.load(y[r0:r0 + BM, 0:BN]) * 0.5 + {v}"
        else:
            expr = OPS[i % len(OPS)].format(v=v, w=w)
        lines.append(f"v{i} = {expr}")
        names.append(f"v{i}")
    lines.append(f"T.store(out[{slot}, r0:r0 + BM, 0:BN], {names[-1]})")
    return lines, slot + 1


def long_source(n):
    lines, _ = body(n)
    return "\n".join([
        "import tessera as ts", "from tessera import tile as T", "", "",
        "@ts.kernel",
        'def long_kernel(x: T.Tensor["M", "N", ts.f32], y: T.Tensor["M", "N", ts.f32],',
        '                out: T.Tensor["S", "M", "N", ts.f32], BM: ts.constexpr = 16, BN: ts.constexpr = 64):',
        "    r0 = T.program_id(0) * BM",
        "    a = T.load(x[r0:r0 + BM, 0:BN])",
        "    b = T.load(y[r0:r0 + BM, 0:BN])",
        *("    " + s for s in lines), ""])


TILE_SOURCE = '''import tessera as ts
from tessera import tile as T


@ts.kernel
def big_tile(x: T.Tensor["N", ts.f32], y: T.Tensor["N", ts.f32], out: T.Tensor["N", ts.f32],
             BLOCK: ts.constexpr = 65536):
    s = T.program_id(0) * BLOCK
    a = T.load(x[s:s + BLOCK])
    b = T.load(y[s:s + BLOCK])
    c = a * b + 1.0
    d = T.maximum(c, a) - b
    T.store(out[s:s + BLOCK], d * 0.5)
'''


class NumpyTile:
    """The tile calls of `body` on NumPy arrays: the reference for --check."""
    import numpy as np
    maximum, exp, tanh, abs, where = np.maximum, np.exp, np.tanh, np.abs, np.where

    @staticmethod
    def load(v):
        return v.copy()

    @staticmethod
    def store(dst, v):
        dst[...] = v

    @staticmethod
    def max(v, axis, keepdims):
        return v.max(axis=axis, keepdims=keepdims)


def reference(n, x, y, out, programs):
    lines, _ = body(n)
    code = compile("\n".join(lines), "<reference>", "exec")
    for pid in range(programs):
        r0 = pid * BM
        env = {"T": NumpyTile, "x": x, "y": y, "out": out, "r0": r0, "BM": BM, "BN": BN,
               "a": x[r0:r0 + BM, 0:BN].copy(), "b": y[r0:r0 + BM, 0:BN].copy()}
        exec(code, env)


def _time_passes(sink):
    """Time every pass of every pipeline the compiler runs (the registry's print-after-all hook marks
    each pass's end); seconds per pass name are summed into `sink`."""
    import tessera.passes as passes
    build = passes.build_pass_manager

    def timed(text, **kwargs):
        marks = []

        def after(label, _op):
            now = time.perf_counter()
            name = label if label.startswith("gpu.module(") else label.split("{")[0]
            sink[name] = sink.get(name, 0.0) + now - marks[-1]
            marks.append(time.perf_counter())
        pm = build(text, print_after_all=after)

        class Timed:
            def run(self, op):
                marks.append(time.perf_counter())
                pm.run(op)
        return Timed()
    passes.build_pass_manager = timed


def _load(workdir, name, source):
    """The module of a generated source file (kernels need one)."""
    import importlib.util
    path = os.path.join(workdir, name + ".py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("bench_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def child(case, n, target, workdir, passes, profile, check):
    """One compile in this (fresh) process; prints a JSON line."""
    import numpy as np
    import tessera as ts
    warm = _load(workdir, "warm", TILE_SOURCE)
    z = np.zeros(128, np.float32)
    ts.compile(warm.big_tile, z, z, z.copy(), target=target, BLOCK=64)
    mod = _load(workdir, f"{case}_{n}_{target}", long_source(n) if case == "long" else TILE_SOURCE)
    rng = np.random.default_rng(0)
    if case == "long":
        programs, slots = 3, body(n)[1]
        x = rng.standard_normal((programs * BM, BN)).astype(np.float32)
        y = rng.standard_normal((programs * BM, BN)).astype(np.float32)
        args, kern, extra = (x, y, np.zeros((slots, programs * BM, BN), np.float32)), mod.long_kernel, {}
    else:
        x = rng.standard_normal(2 * n).astype(np.float32)
        args, kern, extra = (x, x.copy(), np.zeros_like(x)), mod.big_tile, {"BLOCK": n}
    per_pass = {}
    if passes:
        _time_passes(per_pass)
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    ck = ts.compile(kern, *args, target=target, **extra)
    total = time.perf_counter() - t0
    if prof is not None:
        import io
        import pstats
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(20)
        print(s.getvalue(), file=sys.stderr)
    res = {"case": case, "n": n, "target": target, "total": total,
           "stages": dict(ck.metadata["compile_seconds"]), "passes": per_pass,
           "registers": ck.metadata.get("registers"), "spill_stores": ck.metadata.get("spill_stores")}
    if check and target == "cpu" and case == "long":
        got = args[2]
        kern[(programs,)](*args)
        want = np.zeros_like(got)
        reference(n, x, y, want, programs)
        res["max_abs_err"] = float(np.max(np.abs(got - want)))
        res["check"] = bool(np.allclose(got, want, rtol=1e-4, atol=1e-5))
    print(json.dumps(res))


def run_case(case, n, target, args):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, TESSERA_CACHE="0", TESSERA_CACHE_DIR=os.path.join(d, "cache"))
        cmd = [sys.executable, __file__, "--child", f"{case}:{n}:{target}", "--workdir", d]
        cmd += [f for f, on in (("--passes", args.passes), ("--profile", args.profile), ("--check", args.check)) if on]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return {"case": case, "n": n, "target": target, "timeout": args.timeout}
    if args.profile:
        print(r.stderr, file=sys.stderr)
    if r.returncode:
        return {"case": case, "n": n, "target": target, "error": next((ln for ln in reversed(r.stderr.splitlines()) if "Error" in ln), "?")}
    return json.loads(r.stdout.strip().splitlines()[-1])


def show(r):
    label = f"{r['n']} statements" if r["case"] == "long" else f"{r['n']}-element tile"
    head = f"{label:22s} {r['target']:7s}"
    if "timeout" in r:
        return f"{head} > {r['timeout']} s (timed out)"
    if "error" in r:
        return f"{head} error: {r['error']}"
    stages = " ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
    per = f"  {r['total'] / r['n'] * 1e3:.2f} ms/statement" if r["case"] == "long" else ""
    extra = f"  check {'ok' if r['check'] else 'FAILED'} (max |err| {r['max_abs_err']:.2g})" if "check" in r else ""
    regs = f"  regs {r['registers']} spill {r['spill_stores']} B" if r.get("registers") is not None else ""
    return f"{head} {r['total']:8.2f} s{per}  [{stages}]{regs}{extra}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} and a 16,384-element tile")
    ap.add_argument("--sizes")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--tile", type=int, help="elements of the big-tile case (0: skip; default 65536)")
    ap.add_argument("--passes", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        case, n, target = args.child.split(":")
        child(case, int(n), target, args.workdir, args.passes, args.profile, args.check)
        return
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    tile = args.tile if args.tile is not None else (16384 if args.quick else 65536)
    targets = args.targets.split(",")
    print(f"machine: {platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()})")
    print("times in seconds; stages in order, jit = the CPU ExecutionEngine")
    rows = []
    for target in targets:
        for n in sizes:
            rows.append(run_case("long", n, target, args))
            print(show(rows[-1]), flush=True)
        if tile:
            rows.append(run_case("tile", tile, target, args))
            print(show(rows[-1]), flush=True)
        if args.passes:
            top = max((r for r in rows if r["target"] == target and r.get("passes")), key=lambda r: r["total"], default=None)
            if top:
                print(f"  passes of the slowest {target} case (s):")
                for name, s in sorted(top["passes"].items(), key=lambda kv: -kv[1])[:12]:
                    print(f"    {s:8.3f}  {name}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
