"""Launch overhead per call of an empty kernel (issue 5), every launcher measured in one run:

    tessera native prepared   h = k[grid].prepare(x, n); h()      (argument buffer packed once)
    tessera native            k[grid](x, n)                       (binding, key, native launch)
    tessera cupy              k[grid](x, n), TESSERA_LAUNCHER=cupy (same path, CuPy's launcher)
    cupy RawKernel            cp.RawKernel(...)((1,), (128,), (x, n))
    triton                    triton.jit empty[(1,)](x, n)

    # compiling machine: put the sm_90a / sm_80 cubins into a disk cache that travels
    python benchmarks/launch_overhead.py compile --out .gpu-launch
    # GPU host (no MLIR needed: the tessera kernels come from that cache)
    PYTHONPATH=. python3 benchmarks/launch_overhead.py run .gpu-launch [--json launch.json]

Each figure is host wall time per call over N back-to-back launches of a one-program grid, then one
synchronize (asynchronous launches: this is what the host pays; the GPU runs each empty kernel in
about a microsecond). Ratios are to CuPy's RawKernel measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

N_ELEMS = 1024


def empty_kernel():
    import tessera as ts
    from tessera import tile

    @ts.kernel
    def empty(x: tile.Tensor["N", ts.f32], n: int):
        pass
    return empty


def compile_(out):
    os.environ["TESSERA_CACHE_DIR"] = os.path.abspath(os.path.join(out, "cache"))
    import tessera as ts
    k = empty_kernel()
    for target in ("sm_90a", "sm_80"):
        ck = ts.compile(k, np.zeros(N_ELEMS, np.float32), 7, target=target)
        print(f"{target}: {len(ck.asm['cubin'])} byte cubin in {os.environ['TESSERA_CACHE_DIR']}")
    return 0


def _per_call_us(fn, calls, sync):
    fn()
    sync()
    best = float("inf")
    for _ in range(5):  # best of 5 rounds: other load on the host only ever adds time
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1e6


def measure(mode, calls):
    """One launcher's figure, in this process (modes that need a knob run in a child)."""
    import cupy as cp
    sync = cp.cuda.runtime.deviceSynchronize
    x = cp.zeros(N_ELEMS, cp.float32)
    n = 7
    if mode.startswith("tessera"):
        k = empty_kernel()
        launch = k[(1,)]
        ck = launch(x, n)
        if not ck.metadata.get("from_disk_cache"):
            raise SystemExit("the tessera kernel did not come from the carried cache")
        runner = type(ck.runner()).__name__
        if mode == "tessera-native-prepared":
            h = launch.prepare(x, n)
            return _per_call_us(h, calls, sync), runner
        return _per_call_us(lambda: launch(x, n), calls, sync), runner
    if mode == "cupy-rawkernel":
        raw = cp.RawKernel('extern "C" __global__ void empty(float* x, long long n) {}', "empty")
        args = (x, np.int64(n))
        return _per_call_us(lambda: raw((1,), (128,), args), calls, sync), "cupy"
    if mode == "triton":
        import torch
        import triton

        @triton.jit
        def empty(x_ptr, n):
            pass
        t = torch.zeros(N_ELEMS, device="cuda")
        return _per_call_us(lambda: empty[(1,)](t, n), calls, torch.cuda.synchronize), "triton"
    raise SystemExit(f"unknown mode {mode}")


MODES = [("tessera native prepared", "tessera-native-prepared", "native"),
         ("tessera native", "tessera-native", "native"),
         ("tessera through CuPy", "tessera-cupy", "cupy"),
         ("CuPy RawKernel", "cupy-rawkernel", None),
         ("Triton", "triton", None)]


def run(folder, calls, json_path):
    rows = []
    for label, mode, launcher in MODES:
        env = dict(os.environ, TESSERA_CACHE_DIR=os.path.abspath(os.path.join(folder, "cache")))
        if launcher:
            env["TESSERA_LAUNCHER"] = launcher
        r = subprocess.run([sys.executable, __file__, "_one", mode, str(calls)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            rows.append({"launcher": label, "us": None, "error": (r.stderr.strip().splitlines() or ["?"])[-1]})
            continue
        us, runner = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append({"launcher": label, "us": us, "runner": runner})
    ref = next((r["us"] for r in rows if r["launcher"] == "CuPy RawKernel" and r["us"]), None)
    import cupy as cp
    dev = cp.cuda.runtime.getDeviceProperties(0)["name"]
    dev = dev.decode() if isinstance(dev, bytes) else dev
    print(f"launch overhead of an empty kernel, {calls} calls per round, best of 5 — {dev}, "
          f"driver {cp.cuda.runtime.driverGetVersion()}, {time.strftime('%Y-%m-%d')}")
    print(f"{'launcher':26s} {'µs/call':>9s} {'vs RawKernel':>13s}  through")
    for r in rows:
        if r["us"] is None:
            print(f"{r['launcher']:26s} {'failed':>9s}  {r['error']}")
        else:
            ratio = f"{r['us'] / ref:.2f}x" if ref else "-"
            print(f"{r['launcher']:26s} {r['us']:9.2f} {ratio:>13s}  {r['runner']}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"device": dev, "calls": calls, "rows": rows}, f, indent=2)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile")
    c.add_argument("--out", default=".gpu-launch")
    r = sub.add_parser("run")
    r.add_argument("folder")
    r.add_argument("--calls", type=int, default=20000)
    r.add_argument("--json")
    o = sub.add_parser("_one")
    o.add_argument("mode")
    o.add_argument("calls", type=int)
    args = ap.parse_args(argv)
    if args.cmd == "compile":
        return compile_(args.out)
    if args.cmd == "_one":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        print(json.dumps(measure(args.mode, args.calls)))
        return 0
    return run(args.folder, args.calls, args.json)


if __name__ == "__main__":
    sys.exit(main())
