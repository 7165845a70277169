"""One rank of tests/test_dist_gdn.py's runs of the GDN seed programs on 4 processes (issue 14, item 3).

`dist_gdn_worker.py OUT SCENARIO` (under `tessera run --nproc 4`): every rank writes OUT/rank<R>.npz with what
it computed; the test compares against single-process results. The inputs are functions of the rank (and
of fixed seeds) that the test imports to recompute them. Scenarios:
- grad_sync (mesh dp×tp = 2×2): seed 000's `optimized_gradient_sync` cut from the seed text, verbatim, and
  tessera.gdn's fixed one;
- gdn_layer (mesh dp×mp = 2×2): seed 001's `distributed_gdn_layer` cut from the seed text with SEED001_FIXES,
  and tessera.gdn's; each output gathered over dp;
- dp_train (mesh dp = 4): TRAIN_STEPS of tessera.gdn.data_parallel_step on the tiny LM;
- gdn_training DPxTPxPP mean|attention (dp·tp·pp processes): seed 000's DistributedGDNTraining on the 4-layer
  LM of distributed_training_setup: the forward loss, the gradients of this rank's parameters, TRAIN_STEPS
  clipped AdamW steps and the whole model's parameters after them.
"""
import os
import sys

import numpy as np

N_PROCS = 4
LARGE_WIDTH = 1040   # > the seed's 1024: reduce-scattered
TRAIN_STEPS, TRAIN_BATCH, TRAIN_SEQ, TRAIN_LR, TRAIN_CLIP = 3, 8, 8, 3e-3, 1.0
D, S, N_PREV = 8, 4, 3

# Seed 001's distributed_gdn_layer, and what must change for its result to be the single-process layer's:
SEED001_FIXES = [
    # ts.stack / ts.sum / ts.add / ts.ops.* exist only inside a @ts.function: the seed's function has
    # only @ts.distribute (the collectives then break the graph and the body runs eagerly)
    ("@ts.distribute(mesh=mesh)\ndef", "@ts.distribute(mesh=mesh)\n@ts.function\ndef"),
    # ts.ops.transformer_layer needs the layer's weights, which the seed never passes
    ("    gate_params: list[Tensor]\n) ->", "    gate_params: list[Tensor],\n    layer_params: dict\n) ->"),
    ("ts.ops.transformer_layer(x_sharded)", "ts.ops.transformer_layer(x_sharded, layer_params)"),
    # x is split over dp but the previous layers are not: [B/dp, S, D] against [B, S, D] rows
    ("prev_layer, x_sharded, gate_param", "dist.shard(prev_layer, axis=0, mesh_axis=\"dp\"), x_sharded, gate_param"),
    # device_assignment's block runs on every mp rank, so all mp ranks hold the same delta_contrib: the
    # all_gather would concatenate mp copies along the batch; broadcasting the assigned rank's keeps one
    ('dist.all_gather(delta_contrib, axis="mp")', 'dist.broadcast(delta_contrib, src=mp_rank, axis="mp")'),
]


def rank_gradients(rank):
    """This rank's gradients: a large [4, LARGE_WIDTH] (reduce-scattered), a small [3, 5] (all-reduced)."""
    rng = np.random.default_rng(100 + rank)
    return [rng.standard_normal((4, LARGE_WIDTH)).astype(np.float32),
            rng.standard_normal((3, 5)).astype(np.float32)]


def tp_replicated_gradients(dp_rank):
    """Gradients equal on the tp ranks of a dp rank (a replicated parameter's: what data parallelism gives)."""
    return rank_gradients(10 + dp_rank)


def layer_inputs():
    """(x [4, S, D], previous layers, gate params, transformer layer params), all f32."""
    from tessera.gdn.model import TRANSFORMER_PARAMS
    rng = np.random.default_rng(7)
    f = np.float32
    x = rng.standard_normal((4, S, D)).astype(f)
    prev = [rng.standard_normal((4, S, D)).astype(f) for _ in range(N_PREV)]
    gates = [(0.3 * rng.standard_normal((D, D))).astype(f) for _ in range(N_PREV)]
    shapes = {"mlp_up": (D, 2 * D), "mlp_down": (2 * D, D), "input_layernorm": (D,), "post_attention_layernorm": (D,)}
    params = {}
    for k in TRANSFORMER_PARAMS:
        shape = shapes.get(k, (D, D))
        params[k] = (1 + 0.1 * rng.standard_normal(shape) if len(shape) == 1 else rng.standard_normal(shape) / 4).astype(f)
    return x, prev, gates, params


def train_setup():
    """(config, params, batches): the tiny LM and TRAIN_STEPS global batches of (inputs, targets)."""
    from tessera.gdn.model import GDNConfig, init_params
    config = GDNConfig(vocab_size=16, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, max_delta_distance=1, delta_hidden_size=8, gating_hidden_size=4,
                       use_attention_deltas=False)
    rng = np.random.default_rng(5)
    windows = rng.integers(0, config.vocab_size, (TRAIN_STEPS, TRAIN_BATCH, TRAIN_SEQ + 1)).astype(np.int32)
    return config, init_params(config, seed=3), [(w[:, :-1], w[:, 1:]) for w in windows]


def distributed_training_setup(attention):
    """(config, params, batches) for DistributedGDNTraining: 4 layers (2 per stage at pp = 2, two layer outputs
    crossing the boundary), up to 3 delta connections per layer (at tp = 2 rank 0 computes two of layer 3's and
    rank 1 none of layer 1's), mean or attention aggregation; TRAIN_STEPS global batches of 4 × TRAIN_SEQ."""
    from tessera.gdn.model import GDNConfig, init_params
    config = GDNConfig(vocab_size=16, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                       intermediate_size=32, max_delta_distance=3, delta_hidden_size=8, gating_hidden_size=4,
                       use_attention_deltas=attention)
    windows = np.random.default_rng(6).integers(0, 16, (TRAIN_STEPS, 4, TRAIN_SEQ + 1)).astype(np.int32)
    return config, init_params(config, seed=4), [(w[:, :-1], w[:, 1:]) for w in windows]


def single_process_training(config, params, batches):
    """The per-step losses of TRAIN_STEPS steps on one process over the global batches (value_and_grad, clip,
    AdamW: tessera.gdn.train's step); `params` are updated in place."""
    from tessera import optim
    from tessera.autodiff import value_and_grad
    from tessera.gdn.model import causal_lm_loss
    opt = optim.AdamW(params, lr=TRAIN_LR, weight_decay=0.01)
    loss_and_grads = value_and_grad(causal_lm_loss, argnums=2)
    losses = []
    for ids, tgt in batches:
        loss, grads = loss_and_grads(ids, tgt, params, config)
        optim.clip_grad_norm_(grads, max_norm=TRAIN_CLIP)
        opt.step(grads)
        losses.append(float(loss))
    return np.array(losses)


def gdn_training(out, shape, aggregation):
    from tessera import dist, gdn, optim
    mesh = dist.mesh(axes=("dp", "tp", "pp"), shape=tuple(int(n) for n in shape.split("x")))
    config, params, batches = distributed_training_setup(aggregation == "attention")
    trainer = gdn.DistributedGDNTraining(config, mesh, params)
    out["forward_loss"] = trainer.distributed_training_step(*batches[0])
    loss, grads = trainer.loss_and_gradients(*batches[0])
    out["loss"] = loss
    for name, g in zip(trainer.parameter_names(), grads):
        out["grad:" + name] = g
    opt = optim.AdamW(trainer.parameters(), lr=TRAIN_LR, weight_decay=0.01)
    out["losses"] = np.array([trainer.train_step(ids, tgt, opt, max_grad_norm=TRAIN_CLIP) for ids, tgt in batches])
    for i, p in enumerate(trainer.full_parameters()):
        out[f"param_{i}"] = p


def seed_function(seed, name, env, fixes=()):
    import seed_text
    return seed_text.load(seed, name, env=env, fixes=fixes)


def grad_sync(out):
    from tessera import dist, gdn
    mesh = dist.mesh(axes=("dp", "tp"), shape=(2, 2))
    rank = mesh.rank()
    seed_sync = seed_function("000", "optimized_gradient_sync", {"dist": dist})
    for name, grads in (("own", rank_gradients(rank)), ("replicated", tp_replicated_gradients(mesh.rank("dp")))):
        for i, g in enumerate(seed_sync(grads, mesh)):
            out[f"seed_{name}_{i}"] = g
        for i, g in enumerate(gdn.optimized_gradient_sync(grads, mesh)):
            out[f"fixed_{name}_{i}"] = g
    uneven = [np.full((3, LARGE_WIDTH), rank, np.float32)]   # dim 0 does not split over dp: all-reduced
    out["fixed_uneven"] = gdn.optimized_gradient_sync(uneven, mesh)[0]


def gdn_layer(out):
    from tessera import dist, gdn
    mesh = dist.mesh(axes=("dp", "mp"), shape=(2, 2))
    x, prev, gates, params = layer_inputs()
    seed_layer = seed_function("001", "distributed_gdn_layer",
                               {"dist": dist, "mesh": mesh, "delta_connection": gdn.delta_connection},
                               SEED001_FIXES)
    out["seed_shard"] = np.asarray(seed_layer(x, prev, gates, params))
    out["seed_gathered"] = dist.all_gather(out["seed_shard"], axis="dp", dim=0)
    out["lib_shard"] = gdn.distributed_gdn_layer(x, prev, gates, params, mesh)
    out["lib_gathered"] = dist.all_gather(out["lib_shard"], axis="dp", dim=0)


def dp_train(out):
    from tessera import dist, gdn, optim
    mesh = dist.mesh(axes=("dp",), shape=(N_PROCS,))
    config, params, batches = train_setup()
    opt = optim.AdamW(params, lr=TRAIN_LR, weight_decay=0.01)
    losses = [gdn.data_parallel_step(ids, tgt, params, config, opt, mesh, max_grad_norm=TRAIN_CLIP)
              for ids, tgt in batches]
    out["losses"] = np.array(losses, np.float64)
    for i, p in enumerate(params):
        out[f"param_{i}"] = p


if __name__ == "__main__":
    OUT, SCENARIO = sys.argv[1], sys.argv[2]
    results = {}
    {"grad_sync": grad_sync, "gdn_layer": gdn_layer, "dp_train": dp_train,
     "gdn_training": gdn_training}[SCENARIO](results, *sys.argv[3:])
    np.savez(os.path.join(OUT, f"rank{os.environ['RANK']}.npz"), **{k: np.asarray(v) for k, v in results.items()})
