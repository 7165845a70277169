"""One training step of the seed-002 causal LM (the small config of `python -m tessera.gdn.train`): tessera on
the CPU backend (autodiff.value_and_grad of causal_lm_loss, one compiled forward + backward graph, then an AdamW
step, one compiled launch) against the same model, loss, gradient and AdamW in plain NumPy (benchmarks/numpy_lm.py,
whose gradient equals tessera's to 1e-15 in f64) and in PyTorch eager (tests/torch_gdn_reference.py, torch autograd
and torch.optim.AdamW, on --torch-threads intra-op threads: 1 by default; tessera's CPU backend uses
TESSERA_CPU_THREADS threads for launches large enough to split). Median of --steps steps after one warm-up step (which compiles); the ratios are measured in the same run. Also the kernel counts: forward, forward + backward, and the
graph's op count (what an unfused executor would launch: one kernel per op).

    python benchmarks/training_step.py [--steps 20] [--batch 8] [--seq 32] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))


def _numpy_adamw(params, grads, state, lr=3e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.01):
    state["t"] += 1
    t = state["t"]
    for i, (p, g) in enumerate(zip(params, grads)):
        m, v = state["m"][i], state["v"][i]
        p *= 1 - lr * wd
        m += (1 - b1) * (g - m)
        v *= b2
        v += (1 - b2) * g * g
        p -= lr / (1 - b1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)


def _ops(asm):
    return sum(1 for line in asm.splitlines() if " = " in line and ('"ts.' in line or "arith." in line or "math." in line)
               and "arith.constant" not in line)


def main(argv=None):
    import tessera as ts
    from tessera import autodiff, optim
    from tessera.gdn import causal_lm_loss, init_params
    from tessera.gdn.train import CharTokenizer, corpus, small_config
    import numpy_lm
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    import torch
    import torch_gdn_reference
    torch.set_num_threads(a.torch_threads)
    text = corpus()
    tok = CharTokenizer(text)
    c = small_config(tok.vocab_size)
    tokens = tok.encode(text)
    rng = np.random.default_rng(0)

    def batch():
        s = rng.integers(0, len(tokens) - a.seq - 1, a.batch)
        w = np.stack([tokens[i:i + a.seq + 1] for i in s])
        return w[:, :-1], w[:, 1:]

    params_ts = init_params(c, seed=0)
    params_np = [p.copy() for p in params_ts]
    params_pt = [torch.from_numpy(p.copy()).requires_grad_() for p in params_ts]
    opt_pt = torch.optim.AdamW(params_pt, lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    vg = autodiff.value_and_grad(causal_lm_loss, argnums=2)
    opt = optim.AdamW(params_ts, lr=3e-3, weight_decay=0.01)
    state = {"t": 0, "m": [np.zeros_like(p) for p in params_np], "v": [np.zeros_like(p) for p in params_np]}

    def ts_step(x, y):
        loss, grads = vg(x, y, params_ts, c)
        opt.step(grads)
        return float(loss)

    def np_step(x, y):
        loss, grads = numpy_lm.loss_and_grads(x, y, params_np, c)
        _numpy_adamw(params_np, grads, state)
        return loss

    def pt_step(x, y):
        opt_pt.zero_grad()
        logits = torch_gdn_reference.causal_lm_forward(torch.from_numpy(x), params_pt, c)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c.vocab_size), torch.from_numpy(y).long().reshape(-1))
        loss.backward()
        opt_pt.step()
        return loss.item()

    t0 = time.perf_counter()
    x, y = batch()
    ts_step(x, y)
    warm = time.perf_counter() - t0
    np_step(x, y)
    pt_step(x, y)
    t_ts, t_np, t_pt, losses = [], [], [], []
    for _ in range(a.steps):
        x, y = batch()
        t0 = time.perf_counter()
        lt = ts_step(x, y)
        t_ts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ln = np_step(x, y)
        t_np.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lp = pt_step(x, y)
        t_pt.append(time.perf_counter() - t0)
        losses.append((lt, ln, lp))
    fwd = ts.compile(causal_lm_loss, x, y, params_ts, c)
    both = ts.compile(autodiff.grad(causal_lm_loss, argnums=2), x, y, params_ts, c)
    med_ts, med_np, med_pt = statistics.median(t_ts), statistics.median(t_np), statistics.median(t_pt)
    row = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor()}",
        "config": {"hidden": c.hidden_size, "layers": c.num_hidden_layers, "vocab": c.vocab_size,
                   "batch": a.batch, "seq": a.seq, "params": int(sum(p.size for p in params_ts))},
        "tessera_step_ms": med_ts * 1e3, "numpy_step_ms": med_np * 1e3, "numpy_over_tessera": med_np / med_ts,
        "torch_step_ms": med_pt * 1e3, "torch_threads": a.torch_threads, "torch_over_tessera": med_pt / med_ts,
        "warmup_s": warm, "loss_first_last": [losses[0], losses[-1]],
        "kernels_forward": fwd.metadata["kernels"], "kernels_forward_backward": both.metadata["kernels"],
        "graph_ops_forward_backward": _ops(both.asm["ts.opt"]),
    }
    print(f"training step, small GDN LM ({row['config']['params']} parameters, batch {a.batch} x {a.seq} tokens), "
          f"median of {a.steps}:")
    print(f"  tessera CPU backend {med_ts * 1e3:8.1f} ms   NumPy {med_np * 1e3:8.1f} ms   "
          f"NumPy / tessera = {med_np / med_ts:.2f}")
    print(f"  PyTorch eager ({a.torch_threads} thread(s)) {med_pt * 1e3:8.1f} ms   torch / tessera = {med_pt / med_ts:.2f}")
    print(f"  kernels: forward {row['kernels_forward']}, forward + backward {row['kernels_forward_backward']} "
          f"(the graph has {row['graph_ops_forward_backward']} ops: one kernel each, unfused)")
    print("  losses (tessera, NumPy, torch) first " + " ".join(f"{v:.4f}" for v in losses[0]) + ", last "
          + " ".join(f"{v:.4f}" for v in losses[-1]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(row, f, indent=1)
    return row


if __name__ == "__main__":
    main()
