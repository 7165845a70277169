"""`make run`: the GDN demo. A multi-scale delta aggregation (seed 001) over L source layers is
compiled as a @ts.function — the passes fuse the L gated delta connections into one kernel and,
with the attention weights bound, prune the negligible ones — run, checked against NumPy, and
timed per kernel against the unfused graph. Then its gradient (autodiff) and a short training run of the
seed-002 causal LM, the seed gating kernel and a tiled bf16 matmul.
With a visible GPU (CuPy installed) everything runs through the NVIDIA backend; otherwise, or if
the GPU run fails (said loudly), on the CPU backend."""
from __future__ import annotations

import time

import numpy as np


def _cupy():
    try:
        import cupy as cp
        return cp if cp.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:  # noqa: BLE001 - no CuPy or no driver: the CPU backend runs the demo
        return None


def _cases(rng):
    import ml_dtypes
    from tessera.gdn import gating_function_kernel, gating_function_reference
    from tessera.kernels import matmul
    bf16 = ml_dtypes.bfloat16
    B, S, D, dist = 2, 200, 64, 2
    delta = rng.standard_normal((B, S, D)).astype(bf16)
    w = (rng.standard_normal((D, D)) * 0.1).astype(bf16)
    M, N, K = 200, 150, 100
    a = rng.standard_normal((M, K)).astype(bf16)
    b = rng.standard_normal((K, N)).astype(bf16)
    return [
        ("gating_function_kernel (seed 001)", f"B={B} S={S} D={D}", gating_function_kernel, (B, -(-S // 128)),
         [delta, w, dist, np.zeros_like(delta)], {}, 3, gating_function_reference(delta, w, dist), 2e-2),
        ("tiled bf16 matmul", f"{M}x{N}x{K}", matmul, (-(-M // 32), -(-N // 32)),
         [a, b, np.zeros((M, N), np.float32)], dict(BM=32, BN=32, BK=32), 2,
         a.astype(np.float32) @ b.astype(np.float32), 1e-3),
    ]


def _to_device(cp, x):
    """CuPy has no bfloat16: bf16 arrays travel as their 16-bit patterns."""
    return cp.asarray(x.view(np.uint16) if x.dtype.name == "bfloat16" else x)


def _run(cases, cp):
    rows = []
    for name, shape, kernel, grid, args, ce, out_pos, ref, tol in cases:
        dev = [_to_device(cp, x) if cp is not None and isinstance(x, np.ndarray) else x for x in args]
        t0 = time.perf_counter()
        kernel[grid](*dev, **ce)
        if cp is not None:
            cp.cuda.runtime.deviceSynchronize()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        kernel[grid](*dev, **ce)
        if cp is not None:
            cp.cuda.runtime.deviceSynchronize()
        run = time.perf_counter() - t0
        out = cp.asnumpy(dev[out_pos]).view(args[out_pos].dtype) if cp is not None else dev[out_pos]
        err = float(np.abs(out.astype(np.float32) - ref).max())
        rows.append((name, shape, first, run, err, err < tol))
    return rows


def _aggregation_inputs(rng, L, B, S, D):
    """bf16 sources, target and gate matrices, and attention weights, for the multi-scale aggregation."""
    import ml_dtypes
    bf16 = ml_dtypes.bfloat16
    srcs = [rng.standard_normal((B, S, D)).astype(bf16) for _ in range(L)]
    tgt = rng.standard_normal((B, S, D)).astype(bf16)
    ws = [(rng.standard_normal((D, D)) * 0.1).astype(bf16) for _ in range(L)]
    return srcs, tgt, ws, rng.uniform(0.2, 1.0, (L + 1, L + 1)).astype(bf16)


def _gdn(cp):
    """Compile, show what the passes did, run fused vs unfused, check against NumPy."""
    import ml_dtypes
    import tessera as ts
    from tessera import gdn
    bf16 = ml_dtypes.bfloat16
    L, B, S, D = 4, 2, 512, 64
    srcs, tgt, ws, A = _aggregation_inputs(np.random.default_rng(1), L, B, S, D)
    A = A.astype(np.float32)
    A[1, -1] = 0.004  # negligible: pruned when the weights are bound
    A = A.astype(bf16)
    args = [srcs, tgt, ws, A]
    dev = [[_to_device(cp, x) for x in a] if isinstance(a, list) else _to_device(cp, a) for a in args] \
        if cp is not None else args
    fn = gdn.multi_scale_delta_aggregation
    fused = ts.compile(fn, *args, params={"attention_weights": A})
    unfused = ts.compile(fn, *args, params={"attention_weights": A},  # the same pruning, no fusion
                         pipeline="canonicalize,tessera-prune-sparse-deltas{threshold=0.01},canonicalize,cse")
    print(f"GDN multi-scale delta aggregation: L={L} sources, B={B} S={S} D={D}, bf16")
    print(f"  as written: {fused.asm['ts'].count('ts.gating_function')} gated delta connections")
    for r in fused.metadata["remarks"]:
        print(f"  prune: {r}")
    print(f"  fuse:   {fused.asm['ts.opt'].count('ts.fused_delta_gating')} ts.fused_delta_gating, "
          f"{fused.metadata['kernels']} kernel (unfused graph: {unfused.metadata['kernels']} kernels)")
    ref = gdn.reference.multi_scale_delta_aggregation(srcs, tgt, ws, A, threshold=0.01)
    run_args = dev[:3] + [dev[3]]
    out = fused(*run_args)
    out = cp.asnumpy(out) if cp is not None else out
    err = float(np.abs(np.asarray(out, np.float32) - ref).max())
    rows = [("fused", *r) for r in fused.profile(*run_args)] + [("unfused", *r) for r in unfused.profile(*run_args)]
    print(f"\n  {'graph':8s} {'kernel':28s} {'time':>10s} {'bytes':>10s} {'GB/s':>8s}")
    totals = {}
    for graph, label, name, sec, nbytes in rows:
        totals[graph] = totals.get(graph, 0.0) + sec
        print(f"  {graph:8s} {name[:28]:28s} {sec * 1e3:8.2f}ms {nbytes / 1e6:8.2f}MB {nbytes / sec / 1e9:8.2f}")
    print(f"  fused total {totals['fused'] * 1e3:.2f} ms vs unfused {totals['unfused'] * 1e3:.2f} ms "
          f"({totals['unfused'] / totals['fused']:.1f}x); max error vs NumPy {err:.2e}\n")
    return err < 2e-2


def _training():
    """Gradients of the fused aggregation (kernel counts forward and forward + backward), then a short
    training run of the seed-002 causal LM with tessera's autodiff and AdamW (python -m tessera.gdn.train)."""
    import tessera as ts
    from tessera import autodiff, gdn
    from tessera.gdn import train
    rng = np.random.default_rng(2)
    L, B, S, D = 4, 2, 128, 64
    srcs, tgt, ws, A = _aggregation_inputs(rng, L, B, S, D)
    probe = rng.standard_normal((B, S, D)).astype(np.float32)

    @ts.function
    def aggregation_loss(srcs, tgt, ws, A, probe):
        return ts.sum(gdn.multi_scale_delta_aggregation(srcs, tgt, ws, A) * probe)
    fwd = ts.compile(aggregation_loss, srcs, tgt, ws, A, probe)
    both = ts.compile(autodiff.grad(aggregation_loss, argnums=(1, 2)), srcs, tgt, ws, A, probe)
    dt, dws = both(srcs, tgt, ws, A, probe)
    print(f"Training. Gradient of the fused delta aggregation (L={L}, B={B} S={S} D={D}, bf16) w.r.t. the target "
          f"and the {L} gate matrices:")
    labels = [st.label for st in both.plan.steps]
    print(f"  forward {fwd.metadata['kernels']} kernels ({fwd.asm['ts.opt'].count('ts.fused_delta_gating')} fused "
          f"aggregation); gradient graph {both.metadata['kernels']} kernels, of which "
          f"{labels.count('fused_delta_gating_grad')} is the whole fused aggregation's backward pass "
          f"(the rest: casts, the loss's cotangent); gradients {dt.dtype} {list(dt.shape)}, "
          f"{len(dws)} x {list(dws[0].shape)}")
    print("  the seed-002 causal LM, small config, on the generated corpus (python -m tessera.gdn.train):")
    first, last, trainer = train.train(steps=40)
    print(f"  loss {first:.3f} -> {last:.3f} in {trainer.step} AdamW steps\n")
    return last < first - 0.5


def main() -> int:
    rng = np.random.default_rng(0)
    cp = _cupy()
    rows = None
    if cp is not None:
        from tessera.runtime.cuda import device_arch
        print(f"tessera demo — NVIDIA backend ({device_arch()}, through CuPy)\n")
        try:
            rows = _run(_cases(rng), cp)
        except Exception as e:  # noqa: BLE001 - report and fall back, never hide it
            print(f"GPU RUN FAILED: {type(e).__name__}: {e}\nfalling back to the CPU backend\n")
    if rows is None:
        cp = None
        print("tessera demo — CPU backend (MLIR → LLVM JIT)\n")
        rows = _run(_cases(np.random.default_rng(0)), None)
    gdn_ok = _gdn(cp)
    print(f"{'kernel':36s} {'shape':18s} {'compile+run':>12s} {'run':>10s} {'max err':>10s}  ok")
    for name, shape, first, run, err, ok in rows:
        print(f"{name:36s} {shape:18s} {first * 1e3:10.1f}ms {run * 1e3:8.2f}ms {err:10.2e}  {'yes' if ok else 'NO'}")
    ok = all(r[-1] for r in rows) and gdn_ok
    print("\nall results match NumPy\n" if ok else "\nMISMATCH against NumPy\n")
    train_ok = _training()   # last: `make run` ends with a training run
    if not train_ok:
        print("the training run's loss did not fall")
    ok = ok and train_ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
