"""`python -m tessera.runtime.check DIR [--bench | --emulate]`: run AOT artifacts on a GPU (no MLIR
needed), compare with the NumPy results computed at compile time, and time each kernel against a
reference measured in the same run (cuBLAS via torch/cupy for GEMM, a device copy for
memory-bound kernels). With `--emulate`, each artifact's PTX runs in tessera's PTX emulator with
its checks instead (no GPU, no CuPy); cases whose inputs are generated on the GPU host (too large
to ship) are skipped."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import numpy as np

from .artifact import load


def _to_f32(a, dtype):
    """Values as f32; bf16 arrays stored as bit patterns (uint16) are decoded, values already in a float
    type (NumPy references are f32 / f64) are not reinterpreted."""
    if dtype == "bfloat16" and a.dtype in (np.uint16, np.int16):
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def _generate(spec, rng):
    """A large input made on the GPU host: zeros or standard normal (bf16 as bit patterns)."""
    import cupy as cp
    shape, dtype = tuple(spec["shape"]), spec["dtype"]
    if spec["generate"] == "zeros":
        return cp.zeros(shape, np.uint16 if dtype == "bfloat16" else dtype)
    x = cp.asarray(rng.standard_normal(shape, dtype=np.float32))
    if dtype == "bfloat16":
        return (x.view(cp.uint32) >> 16).astype(cp.uint16)
    return x.astype(dtype)


def _time(fn, reps=20, warmup=3):
    import cupy as cp
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        s, e = cp.cuda.Event(), cp.cuda.Event()
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(cp.cuda.get_elapsed_time(s, e) * 1e-3)
    return statistics.median(times)


def _reference_fn(kind, dev_args, spec):
    import cupy as cp
    if kind == "matmul":
        a, b = dev_args[0], dev_args[1]
        try:
            import torch
            ta = torch.as_tensor(a, device="cuda").view(torch.bfloat16)
            tb = torch.as_tensor(b, device="cuda").view(torch.bfloat16)
            return "cuBLAS (torch.matmul bf16)", lambda: torch.matmul(ta, tb)
        except Exception:  # noqa: BLE001 - no torch: cuBLAS through CuPy in f16
            a16, b16 = a.view(cp.float16), b.view(cp.float16)
            return "cuBLAS (cupy.matmul f16)", lambda: cp.matmul(a16, b16)
    if kind == "copy":
        src = dev_args[0]
        dst = cp.empty_like(src)
        return "device copy", lambda: dst.__setitem__(Ellipsis, src)
    if kind == "fused_delta":
        fn = _torch_unfused_delta(dev_args, spec)
        return ("unfused torch", fn) if fn is not None else (None, None)
    return None, None


def _torch_unfused_delta(dev_args, spec):
    """The multi-source delta gating as separate torch ops (what runs without fusion)."""
    try:
        import torch
    except ImportError:
        return None
    n = (len(dev_args) - 3) // 2
    as_bf16 = [torch.as_tensor(a, device="cuda").view(torch.bfloat16) for a in dev_args[:2 * n + 1]]
    t, srcs, ws = as_bf16[0], as_bf16[1:n + 1], as_bf16[n + 1:]
    coeffs = torch.as_tensor(dev_args[2 * n + 1], device="cuda")
    scales = [float(np.exp(-0.1 * (n - i))) for i in range(n)]

    def run():
        acc = torch.zeros(t.shape, dtype=torch.float32, device="cuda")
        for i in range(n):
            d = t - srcs[i]
            g = torch.sigmoid(scales[i] * (d @ ws[i]).float())
            acc += coeffs[i] * d.float() * g
        return acc
    return run


def run_case(d, bench):
    import cupy as cp
    with open(os.path.join(d, "case.json")) as f:
        spec = json.load(f)
    k = load(d)
    arrays = np.load(os.path.join(d, "inputs.npz"))
    rng = np.random.default_rng(0)
    dev_args = [cp.asarray(arrays[a["array"]]) if "array" in a else _generate(a, rng) if "generate" in a else a["scalar"]
                for a in spec["args"]]
    grid = tuple(spec["grid"])
    k[grid](*dev_args)
    cp.cuda.runtime.deviceSynchronize()
    row = {"kernel": k.name, "case": os.path.basename(d), "correct": None, "max_err": None}
    if spec["has_expected"]:
        exp = np.load(os.path.join(d, "expected.npz"))
        ok, worst = True, 0.0
        for i, pos in enumerate(spec["outputs"]):
            dtype = spec["args"][pos]["dtype"]
            got = _to_f32(cp.asnumpy(dev_args[pos]), dtype)
            want = _to_f32(exp[f"out{i}"], dtype)
            err = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
            worst = max(worst, err)
            ok &= bool(np.allclose(got, want, rtol=spec["rtol"], atol=spec["atol"]))
        row.update(correct=ok, max_err=worst)
    elif spec["bench"] == "fused_delta":  # check against the unfused torch computation on the GPU
        ref = _torch_unfused_delta(dev_args, spec)
        if ref is not None:
            import torch
            want = ref()
            got = torch.as_tensor(dev_args[spec["outputs"][0]], device="cuda")
            worst = float((got - want).abs().max())
            row.update(correct=worst <= 2e-2 * float(want.abs().max()), max_err=worst)
    elif spec["bench"] == "matmul":  # large GEMM: check against an f32 GEMM on the GPU itself
        def f32(x, dt):
            return (x.astype(cp.uint32) << 16).view(cp.float32) if dt == "bfloat16" else x.astype(cp.float32)
        a = f32(dev_args[0], spec["args"][0]["dtype"])
        b = f32(dev_args[1], spec["args"][1]["dtype"])
        ref = cp.matmul(a, b)
        out = dev_args[spec["outputs"][0]]
        worst = float(cp.abs(out - ref).max())
        scale = float(cp.abs(ref).max())
        row.update(correct=worst <= 1e-2 * scale, max_err=worst)
    if bench:
        t = _time(lambda: k[grid](*dev_args))
        row["seconds"] = t
        nbytes = sum(a.nbytes for a in dev_args if hasattr(a, "nbytes"))
        row["GB/s"] = nbytes / t / 1e9
        name, ref = _reference_fn(spec["bench"], dev_args, spec)
        if ref is not None:
            tr = _time(ref)
            row["reference"] = name
            row["reference_seconds"] = tr
            if spec["bench"] == "copy":
                ref_bw = 2 * dev_args[0].nbytes / tr / 1e9
                row["reference_GB/s"] = ref_bw
                row["ratio"] = row["GB/s"] / ref_bw
            else:
                row["ratio"] = tr / t
            if spec["bench"] == "fused_delta":  # and against the device's copy bandwidth, same run
                src = dev_args[0]
                dst = cp.empty_like(src)
                tc = _time(lambda: dst.__setitem__(Ellipsis, src))
                row["copy_GB/s"] = 2 * src.nbytes / tc / 1e9
                row["fraction_of_copy_bw"] = row["GB/s"] / row["copy_GB/s"]
    return row


def emulate_case(d):
    """One AOT case run from its PTX in the emulator (checks on), compared with expected.npz."""
    from ..errors import SanitizerError, TesseraError
    from .emulator import run_ptx
    with open(os.path.join(d, "case.json")) as f:
        spec = json.load(f)
    k = load(d)
    row = {"kernel": k.name, "case": os.path.basename(d), "correct": None, "max_err": None}
    if any("generate" in a for a in spec["args"]):
        row["skipped"] = "inputs generated on the GPU host (too large to emulate)"
        return row
    with open(os.path.join(d, f"{k.name}.ptx")) as f:
        ptx = f.read()
    arrays = np.load(os.path.join(d, "inputs.npz"))
    args = [arrays[a["array"]].copy() if "array" in a else a["scalar"] for a in spec["args"]]
    try:
        rep = run_ptx(ptx, k.name, k.metadata, k.target, tuple(spec["grid"]), args)
    except SanitizerError as e:
        row.update(correct=False, error=f"SanitizerError {e.kind}: {e.findings[0]}")
        return row
    except TesseraError as e:
        row.update(correct=False, error=f"{type(e).__name__}: {e}")
        return row
    row.update(steps=rep.steps, warp_instructions=rep.warp_instructions, global_requests=rep.global_requests,
               global_sectors=rep.global_sectors, shared_bank_conflicts=rep.shared_bank_conflicts,
               seconds=rep.seconds)
    if spec["has_expected"]:
        exp = np.load(os.path.join(d, "expected.npz"))
        ok, worst = True, 0.0
        for i, pos in enumerate(spec["outputs"]):
            dtype = spec["args"][pos]["dtype"]
            got = _to_f32(args[pos], dtype)
            want = _to_f32(exp[f"out{i}"], dtype)
            err = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
            worst = max(worst, err)
            ok &= bool(np.allclose(got, want, rtol=spec["rtol"], atol=spec["atol"]))
        row.update(correct=ok, max_err=worst)
    return row


def main_emulate(folder, json_out=None):
    with open(os.path.join(folder, "suite.json")) as f:
        suite = json.load(f)
    print(f"PTX emulator, {suite.get('target')} (checks on)")
    rows, failed = [], 0
    for name in suite["cases"]:
        row = emulate_case(os.path.join(folder, name))
        rows.append(row)
        failed += row.get("correct") is False
        if "skipped" in row:
            print(f"{name:28s} skipped: {row['skipped']}")
            continue
        extra = (f"  {row['steps']} steps, {row['global_sectors']}/{row['global_requests']} sectors/requests, "
                 f"{row['shared_bank_conflicts']} bank conflicts, {row['seconds']:.2f} s") if "steps" in row else ""
        print(f"{name:28s} correct={row.get('correct')} max_err={row.get('max_err')}{extra}"
              + (f"  ERROR {row['error']}" if "error" in row else ""))
    if json_out:
        with open(json_out, "w") as f:
            json.dump(rows, f, indent=2)
    return 1 if failed else 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tessera.runtime.check")
    ap.add_argument("folder")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--emulate", action="store_true", help="run the PTX in the emulator (no GPU needed)")
    args = ap.parse_args(argv)
    if args.emulate:
        return main_emulate(args.folder, args.json)
    with open(os.path.join(args.folder, "suite.json")) as f:
        suite = json.load(f)
    import cupy as cp
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    print(f"device: {props['name'].decode()} (sm_{dev.compute_capability}), driver {cp.cuda.runtime.driverGetVersion()}")
    rows, failed = [], 0
    for name in suite["cases"]:
        try:
            row = run_case(os.path.join(args.folder, name), args.bench)
        except Exception as e:  # noqa: BLE001 - report every case, keep going
            row = {"case": name, "correct": False, "error": f"{type(e).__name__}: {e}"}
        rows.append(row)
        failed += row.get("correct") is False
        extra = ""
        if "seconds" in row:
            extra = f"  {row['seconds'] * 1e3:9.3f} ms  {row['GB/s']:8.1f} GB/s"
            if "ratio" in row:
                extra += f"  vs {row['reference']}: {row['ratio']:.2f}x"
            if "fraction_of_copy_bw" in row:
                extra += f"  ({100 * row['fraction_of_copy_bw']:.0f}% of copy bandwidth {row['copy_GB/s']:.0f} GB/s)"
        print(f"{name:28s} correct={row.get('correct')} max_err={row.get('max_err')}{extra}"
              + (f"  ERROR {row['error']}" if "error" in row else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
