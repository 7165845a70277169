"""Forward + backward step of the GDN causal LM in PyTorch: the tessera-backed GDNForCausalLM
(tessera.integrations.hf: the forward and backward are tessera-compiled graphs inside a torch custom op, CPU
backend) against the same LM in plain torch ops with torch autograd (tests/torch_gdn_reference.py), same
weights, same batch, both on the CPU. A step is zero_grad, the forward with labels (the HF shifted
cross-entropy) and loss.backward(); no optimizer. Median of --steps steps of each, alternated, after --warmup
steps of each (the first tessera step compiles); the ratio is measured in the same run. The losses and
gradients of the two are checked equal (1e-5) before timing.

    python benchmarks/torch_step.py [--steps 20] [--warmup 2] [--batch 8] [--seq 32] [--threads 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))


def main(argv=None):
    import torch
    from tessera.gdn.model import init_params
    from tessera.gdn.train import small_config
    from tessera.integrations.hf import GDNConfig, GDNForCausalLM
    import torch_gdn_reference as reference

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: tessera's CPU backend runs its kernels on one core)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    # The config of benchmarks/training_step.py (python -m tessera.gdn.train) with its 25-character vocabulary.
    c = small_config(25)
    model = GDNForCausalLM(GDNConfig(**{f: getattr(c, f) for f in c.__dataclass_fields__}))
    with torch.no_grad():
        for p, value in zip(model.tessera_params(), init_params(c, seed=0)):
            p.copy_(torch.from_numpy(value))
    ref_params = [p.detach().clone().requires_grad_() for p in model.tessera_params()]
    ids = torch.randint(0, c.vocab_size, (a.batch, a.seq), generator=torch.Generator().manual_seed(0))

    def tessera_step():
        model.zero_grad(set_to_none=True)
        loss = model(ids, labels=ids).loss
        loss.backward()
        return loss

    def torch_step():
        for p in ref_params:
            p.grad = None
        loss = reference.shifted_cross_entropy(reference.causal_lm_forward(ids, ref_params, c), ids)
        loss.backward()
        return loss

    t0 = time.perf_counter()
    loss_ts = tessera_step()
    first_step = time.perf_counter() - t0
    loss_ref = torch_step()
    torch.testing.assert_close(loss_ts, loss_ref, rtol=1e-5, atol=1e-5)
    for p, q in zip(model.tessera_params(), ref_params):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5)
    for _ in range(a.warmup - 1):
        tessera_step()
    for _ in range(a.warmup):
        torch_step()

    times = {"tessera": [], "torch": []}
    for _ in range(a.steps):
        for name, step in (("tessera", tessera_step), ("torch", torch_step)):
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    n_params = sum(p.numel() for p in model.parameters())
    row = {"config": {**{f: getattr(c, f) for f in c.__dataclass_fields__}, "params": n_params},
           "batch": a.batch, "seq": a.seq, "steps": a.steps, "warmup": a.warmup,
           "median_s": med, "first_tessera_step_s": first_step, "loss": float(loss_ref.detach()),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    print(f"forward + backward step, GDN LM ({n_params} parameters, batch {a.batch} x {a.seq} tokens), CPU, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), median of {a.steps}")
    print("| | step | ratio |")
    print("|---|---|---|")
    print(f"| GDNForCausalLM (tessera op, CPU backend) | {med['tessera'] * 1e3:.1f} ms | 1 |")
    ratio = med["tessera"] / med["torch"]
    print(f"| plain torch + autograd | {med['torch'] * 1e3:.1f} ms | "
          f"{'torch is ' + format(ratio, '.1f') + '× faster' if ratio >= 1 else 'tessera is ' + format(1 / ratio, '.1f') + '× faster'} |")
    print(f"first tessera step (trace, differentiate, compile forward and backward): {first_step:.1f} s; "
          f"loss {float(loss_ref.detach()):.4f} (equal on both, gradients equal to 1e-5)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(row, f, indent=1)
    return row


if __name__ == "__main__":
    main()
