"""Bytes sent per training step of the small GDN LM against the minimum, and step time on 1, 2 and 4 CPU
processes (gloo), for data parallelism and for DistributedGDNTraining's dp / tp / pp meshes.

    python benchmarks/dist_bytes.py --steps 10            # data_parallel_step; itself under `tessera run --nproc N`
    python benchmarks/dist_bytes.py --steps 10 --trainer  # DistributedGDNTraining.train_step, TRAINER_MESHES

A step is tessera.gdn.data_parallel_step (value_and_grad on this rank's rows of the global batch,
optimized_gradient_sync, AdamW). The bytes are counted by wrapping torch.distributed's collective entry points
(what tessera.dist calls): for each call the payload tensor's bytes, and what one rank sends for it under a
ring algorithm (all_reduce 2(n-1)/n·B, all_gather (n-1)/n·B_out, broadcast B from the source). "shape checks"
are tessera.dist's agreement all_gathers (each collective first exchanges shape and dtype). The minimum is a
ring all-reduce of the gradients: 2(n-1)/n · gradient bytes. Three modes: "default" (the seed's threshold: no
gradient of this model is wider than 1024, so all are all-reduced, bucketed into one flat all_reduce),
"per-tensor" (the same without bucketing: one all_reduce per gradient) and "scatter" (scatter_min_width=0: every
gradient whose dim 0 splits is reduce-scattered then all-gathered; on gloo tessera's reduce_scatter is a full
all_reduce plus a slice, so that path costs an extra all_gather). `--trainer`: the same counts summed over
all ranks (point-to-point sends count their bytes, their shape headers apart), against trainer_minimum.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH, SEQ = 8, 32        # the global batch of every step
sys.path.insert(0, str(ROOT))

COUNTS = {}   # kind -> [calls, payload bytes, ring bytes sent by this rank]


def _count(kind, nbytes, sent):
    c = COUNTS.setdefault(kind, [0, 0, 0.0])
    c[0] += 1
    c[1] += nbytes
    c[2] += sent


def _wrap_torch():
    """Wrap torch.distributed's entry points tessera.dist calls; the shape checks are int64 gathers of one row."""
    import torch.distributed as tdist

    def nbytes(t):
        return t.numel() * t.element_size()

    def group_size(group):
        return tdist.get_world_size(group)

    orig_all_reduce = tdist.all_reduce

    def all_reduce(t, op=tdist.ReduceOp.SUM, group=None, async_op=False):
        n = group_size(group)
        _count("all_reduce", nbytes(t), 2 * (n - 1) / n * nbytes(t))
        return orig_all_reduce(t, op=op, group=group, async_op=async_op)
    tdist.all_reduce = all_reduce

    for name in ("all_gather_single", "all_gather_into_tensor"):
        orig = getattr(tdist, name, None)
        if orig is None:
            continue

        def gather(out, t, group=None, async_op=False, _orig=orig):
            n = group_size(group)
            kind = "shape checks" if str(t.dtype) == "torch.int64" and t.dim() == 1 and t.numel() == 14 \
                else "all_gather"
            _count(kind, nbytes(out), (n - 1) / n * nbytes(out))
            return _orig(out, t, group=group, async_op=async_op)
        setattr(tdist, name, gather)

    orig_send = tdist.send

    def send(t, dst=None, *args, **kwargs):
        header = str(t.dtype) == "torch.int64" and t.dim() == 1 and t.numel() == 14
        _count("send headers" if header else "send", nbytes(t), nbytes(t))
        return orig_send(t, dst, *args, **kwargs)
    tdist.send = send

    orig_broadcast = tdist.broadcast

    def broadcast(t, *args, **kwargs):
        _count("broadcast", nbytes(t), nbytes(t))
        return orig_broadcast(t, *args, **kwargs)
    tdist.broadcast = broadcast


def rank_main(steps, mode, out):
    from tessera import dist, gdn, optim
    from tessera.gdn.model import init_params, param_shapes
    world = int(os.environ.get("WORLD_SIZE", "1"))
    mesh = dist.mesh(axes=("dp",), shape=(world,))
    if mesh.distributed:
        _wrap_torch()
    width = 0 if mode == "scatter" else gdn.distributed.SCATTER_MIN_WIDTH
    params = opt = None
    times = []
    for k, (config, ids, tgt) in enumerate(_batches(steps)):
        if params is None:
            params = init_params(config, seed=0)
            opt = optim.AdamW(params, lr=3e-3, weight_decay=0.01)
        if k == 1:
            COUNTS.clear()          # step 0 compiles (and creates the groups): not counted
        t0 = time.perf_counter()
        gdn.data_parallel_step(ids, tgt, params, config, opt, mesh, max_grad_norm=1.0, scatter_min_width=width,
                               bucket=mode != "per-tensor")
        times.append(time.perf_counter() - t0)
    grad_bytes = sum(int(np.prod(s)) * 4 for _, s in param_shapes(config))
    if mesh.rank() == 0:
        Path(out).write_text(json.dumps({"world": world, "mode": mode, "step_s": float(np.median(times[1:])),
                                         "grad_bytes": grad_bytes,
                                         "per_step": {k: [v[0] / steps, v[1] / steps, v[2] / steps]
                                                      for k, v in COUNTS.items()}}))


def _batches(steps, seed=1):
    from tessera.gdn.train import CharTokenizer, corpus, small_config
    text = corpus()
    tok = CharTokenizer(text)
    tokens = tok.encode(text)
    rng = np.random.default_rng(seed)
    for _ in range(steps + 1):
        starts = rng.integers(0, len(tokens) - SEQ - 1, BATCH)
        windows = np.stack([tokens[s:s + SEQ + 1] for s in starts])
        yield small_config(tok.vocab_size), windows[:, :-1], windows[:, 1:]


def trainer_minimum(trainer):
    """The bytes this rank must send per step for DistributedGDNTraining's scheme (no shape checks, no
    recomputation, nothing but what the scheme moves; ring algorithms):
    - its gradients over dp, 2(dp−1)/dp · held, and the tp-replicated ones over tp, 2(tp−1)/tp · replicated;
    - per layer of its stage with delta connections, at tp > 1: the forward collective and its adjoint,
      an all_reduce of one activation A (mean aggregation) or an all_gather / reduce_scatter of tp·k·A
      (attention; k = ⌈n/tp⌉ connections per rank);
    - at a stage boundary: the layer outputs sent forward, and their cotangents sent back."""
    from tessera.gdn.distributed_training import _history_length
    plan, c = trainer.plan, trainer.config
    dp, tp = plan.dp, plan.tp
    params = dict(zip(plan.names, trainer.parameters()))
    held = sum(p.nbytes for p in params.values())
    replicated = sum(p.nbytes for n, p in params.items() if plan.replicated_over_tp(n))
    act = BATCH // dp * SEQ * c.hidden_size * 4
    need = 2 * (dp - 1) / dp * held + 2 * (tp - 1) / tp * replicated
    for layer in range(plan.first_layer, plan.end_layer):
        n = min(layer, c.max_delta_distance)
        if tp > 1 and n:
            need += 2 * (2 * (tp - 1) / tp * act if not c.use_attention_deltas or n == 1 else (tp - 1) * -(-n // tp) * act)
    if not plan.ends:
        need += _history_length(plan.end_layer, c.max_delta_distance) * act
    if not plan.embeds:
        need += _history_length(plan.first_layer, c.max_delta_distance) * act
    return need


def trainer_main(steps, shape, out):
    """DistributedGDNTraining.train_step on a dp × tp × pp mesh; every rank writes its counts."""
    from tessera import dist, gdn, optim
    from tessera.gdn.model import init_params
    mesh = dist.mesh(axes=("dp", "tp", "pp"), shape=shape)
    if mesh.distributed:
        _wrap_torch()
    trainer = opt = None
    times = []
    for k, (config, ids, tgt) in enumerate(_batches(steps)):
        if trainer is None:
            trainer = gdn.DistributedGDNTraining(config, mesh, init_params(config, seed=0))
            opt = optim.AdamW(trainer.parameters(), lr=3e-3, weight_decay=0.01)
        if k == 1:
            COUNTS.clear()
        t0 = time.perf_counter()
        trainer.train_step(ids, tgt, opt, max_grad_norm=1.0)
        times.append(time.perf_counter() - t0)
    Path(f"{out}.rank{mesh.rank()}").write_text(json.dumps({
        "shape": list(shape), "step_s": float(np.median(times[1:])), "minimum": trainer_minimum(trainer),
        "per_step": {k: [v[0] / steps, v[1] / steps, v[2] / steps] for k, v in COUNTS.items()}}))


def launch(nproc, steps, mode, out):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TESSERA_DIST_TIMEOUT="120")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    script = [str(Path(__file__).resolve()), "--rank-main", "--steps", str(steps), "--mode", mode, "--out", out]
    cmd = [sys.executable] + script if nproc == 1 else \
        [sys.executable, "-m", "tessera.tools.cli", "run", "--nproc", str(nproc)] + script
    subprocess.run(cmd, env=env, check=True, timeout=900)
    if mode.startswith("mesh="):
        return [json.loads(Path(f"{out}.rank{r}").read_text()) for r in range(nproc)]
    return json.loads(Path(out).read_text())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--mode", default="default", help="default | per-tensor | scatter (data_parallel_step) or mesh=DxTxP "
                    "(DistributedGDNTraining on that dp x tp x pp mesh)")
    ap.add_argument("--trainer", action="store_true", help="the DistributedGDNTraining table (dp / tp / pp meshes)")
    ap.add_argument("--rank-main", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.rank_main:
        if a.mode.startswith("mesh="):
            trainer_main(a.steps, tuple(int(n) for n in a.mode[5:].split("x")), a.out)
        else:
            rank_main(a.steps, a.mode, a.out)
        return 0
    if a.trainer:
        return trainer_table(a.steps)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc, mode in ((1, "default"), (2, "default"), (4, "default"), (4, "per-tensor"), (4, "scatter")):
            runs.append(launch(nproc, a.steps, mode, os.path.join(tmp, f"{nproc}_{mode}.json")))
    base = runs[0]["step_s"]
    print("| processes | sync | step (ms, median) | vs 1 process | collective calls | payload KiB | ring KiB sent "
          "(gradients + loss) | shape-check KiB | minimum KiB (2(n-1)/n · gradients) | sent / minimum |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        n, per = r["world"], r["per_step"]
        data = {k: v for k, v in per.items() if k != "shape checks"}
        calls = sum(v[0] for v in per.values())
        payload = sum(v[1] for v in data.values()) / 1024
        ring = sum(v[2] for v in data.values()) / 1024
        checks = per.get("shape checks", [0, 0, 0])[2] / 1024
        minimum = 2 * (n - 1) / n * r["grad_bytes"] / 1024
        ratio = f"{(ring + checks) / minimum:.3f}" if minimum else "-"
        print(f"| {n} | {r['mode']} | {r['step_s'] * 1e3:.1f} | {r['step_s'] / base:.2f}× | {calls:.0f} | "
              f"{payload:.1f} | {ring:.1f} | {checks:.1f} | {minimum:.1f} | {ratio} |")
    return 0


TRAINER_MESHES = ((1, 1, 1), (4, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 1), (1, 2, 2))


def trainer_table(steps):
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in TRAINER_MESHES:
            tag = "x".join(map(str, shape))
            runs.append((shape, launch(int(np.prod(shape)), steps, f"mesh={tag}", os.path.join(tmp, tag))))
    base = runs[0][1][0]["step_s"]
    print("| dp × tp × pp | processes | step (ms, median of rank 0) | vs 1 process | collective calls (all ranks) | "
          "KiB sent (all ranks, ring) | of which shape checks and headers | minimum KiB | sent / minimum |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape, ranks in runs:
        overhead_kinds = ("shape checks", "send headers")
        calls = sum(v[0] for r in ranks for v in r["per_step"].values())
        sent = sum(v[2] for r in ranks for v in r["per_step"].values()) / 1024
        overhead = sum(v[2] for r in ranks for k, v in r["per_step"].items() if k in overhead_kinds) / 1024
        minimum = sum(r["minimum"] for r in ranks) / 1024
        ratio = f"{sent / minimum:.3f}" if minimum else "-"
        print(f"| {' × '.join(map(str, shape))} | {len(ranks)} | {ranks[0]['step_s'] * 1e3:.1f} | "
              f"{ranks[0]['step_s'] / base:.2f}× | {calls:.0f} | {sent:.1f} | {overhead:.1f} | {minimum:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
