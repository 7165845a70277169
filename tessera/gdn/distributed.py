"""The GDN seed programs on several processes (tessera.dist, issue 14): seed 000's gradient synchronisation,
seed 001's distributed GDN layer, and data-parallel training of the seed-002 LM (docs/distributed.md,
"The seed programs").

- `optimized_gradient_sync(gradients, mesh)`: seed 000's strategy with its one fix: a large gradient is
  reduce-scattered over "dp" and all-gathered over "dp" again (the seed gathers over "tp", which joins
  the dp-parts of *different* tp ranks and is not the synchronised gradient); a small one is all-reduced
  over "dp". The result is the sum over dp of the ranks' gradients, on every rank.
- `distributed_gdn_layer(x, previous_layers, gate_params, layer_params)`: seed 001's layer: the batch is
  split over "dp", delta connection i is computed on mp rank i % mp only, and one all_reduce over "mp"
  adds them up; the output is this dp rank's rows of the single-process layer.
- `data_parallel_step(...)`: one AdamW step of the LM on a global batch split over "dp", with the gradients
  synchronised by `optimized_gradient_sync` and divided by the dp size (the global batch's mean gradient).
"""
from __future__ import annotations

import math

import numpy as np

import tessera as ts
from tessera import dist

from ..errors import DistributedError
from .functions import delta_connection

SCATTER_MIN_WIDTH = 1024   # the seed's threshold: gradients whose last dim exceeds it are reduce-scattered


def _all_reduce_bucket(grads, axis):
    """One flat all_reduce over `axis` of several gradients of one dtype, cut back into their shapes."""
    sizes = [math.prod(g.shape) for g in grads]
    # one row [1, Σ sizes]: the executor concatenates and slices 2- to 4-d tensors
    flat = dist.all_reduce(ts.concatenate([ts.reshape(g, (1, n)) for g, n in zip(grads, sizes)], axis=1),
                           op="sum", axis=axis)
    out, start = [], 0
    for g, n in zip(grads, sizes):
        out.append(ts.reshape(flat[:, start:start + n], tuple(g.shape)))
        start += n
    return out


def _sync_on_current_mesh(gradients, axis, scatter_min_width, bucket):
    dp = dist.current_mesh().size(axis)
    synced_gradients = [None] * len(gradients)
    buckets = {}
    for i, grad in enumerate(gradients):
        # reduce_scatter needs dim 0 to split evenly over the dp ranks; other large gradients are all-reduced
        large = grad.ndim >= 1 and grad.shape[-1] > scatter_min_width and grad.shape[0] % dp == 0
        if large:
            grad_scattered = dist.reduce_scatter(grad, op="sum", axis=axis)
            # the seed gathers over "tp" here; gathering over the axis just scattered is what makes the
            # pair an all-reduce (each dp rank holds one part of the same sum)
            synced_gradients[i] = dist.all_gather(grad_scattered, axis=axis)
        elif bucket and grad.ndim >= 1:
            buckets.setdefault(str(grad.dtype), []).append(i)
        else:
            synced_gradients[i] = dist.all_reduce(grad, op="sum", axis=axis)
    for members in buckets.values():
        if len(members) == 1:
            synced_gradients[members[0]] = dist.all_reduce(gradients[members[0]], op="sum", axis=axis)
            continue
        for i, g in zip(members, _all_reduce_bucket([gradients[i] for i in members], axis)):
            synced_gradients[i] = g
    return synced_gradients


@ts.function
def optimized_gradient_sync(gradients: list, mesh, axis: str = "dp", scatter_min_width: int = SCATTER_MIN_WIDTH,
                            bucket: bool = True):
    """Seed 000's gradient synchronisation over `mesh` (fixed: see the module docstring): the sum over the
    `axis` ranks of each gradient, on every rank, in the gradient's kind. A @ts.function: its collectives
    are ops of one compiled graph (docs/distributed.md, "Collectives in compiled graphs"). `bucket`: the
    small gradients of one dtype go through one flat all_reduce (the same sums, one collective instead of
    one per gradient)."""
    if axis not in mesh.axes:
        raise DistributedError(f"optimized_gradient_sync: the mesh has no axis {axis!r} (axes {mesh.axes})")
    return dist.distribute(mesh=mesh)(_sync_on_current_mesh)(gradients, axis, scatter_min_width, bucket)


@ts.function
def transformer_layer(x, layer_params: dict, num_heads: int = 1):
    """ts.ops.transformer_layer as a graph (the op only exists inside a @ts.function)."""
    return ts.ops.transformer_layer(x, layer_params, num_heads)


@ts.function
def _add(a, b):
    return ts.add(a, b)


def distributed_gdn_layer(x, previous_layers, gate_params, layer_params, mesh=None, num_heads=1):
    """Seed 001's distributed GDN layer on a ("dp", "mp") mesh (default: the current mesh): this dp rank's
    rows (x split over "dp" along the batch) of transformer_layer(x) + Σ_i delta_connection(prev_i, x, W_i,
    L − i). Delta connection i is computed only on mp rank i % mp (device_assignment + is_assigned_rank);
    one all_reduce over "mp" adds the ranks' partial sums. Gather the result over "dp" (dim 0) for the
    whole batch."""
    mesh = dist.current_mesh() if mesh is None else mesh
    for axis in ("dp", "mp"):
        if axis not in mesh.axes:
            raise DistributedError(f"distributed_gdn_layer needs a mesh with axes 'dp' and 'mp', got {mesh.axes}")
    if len(previous_layers) != len(gate_params):
        raise DistributedError(f"distributed_gdn_layer: {len(previous_layers)} previous layers but "
                               f"{len(gate_params)} gate parameters")

    @dist.distribute(mesh=mesh)
    def layer():
        x_sharded = dist.shard(x, axis=0, mesh_axis="dp")
        partial_delta = np.zeros(x_sharded.shape, np.result_type(x_sharded.dtype, np.float32))
        for i, (prev_layer, gate_param) in enumerate(zip(previous_layers, gate_params)):
            with dist.device_assignment(i % mesh.size("mp"), axis="mp"):
                if dist.is_assigned_rank():   # the other mp ranks skip this connection's work
                    prev_sharded = dist.shard(prev_layer, axis=0, mesh_axis="dp")
                    contrib = delta_connection(prev_sharded, x_sharded, gate_param, len(previous_layers) - i)
                    partial_delta = partial_delta + np.asarray(contrib, partial_delta.dtype)
        total_delta = dist.all_reduce(partial_delta.astype(x_sharded.dtype), op="sum", axis="mp")
        return _add(transformer_layer(x_sharded, layer_params, num_heads), total_delta)
    return layer()


_LOSS_AND_GRADS = {}


def _lm_loss_and_grads():
    if "fn" not in _LOSS_AND_GRADS:
        from ..autodiff import value_and_grad
        from .model import causal_lm_loss
        _LOSS_AND_GRADS["fn"] = value_and_grad(causal_lm_loss, argnums=2)
    return _LOSS_AND_GRADS["fn"]


def data_parallel_step(input_ids, targets, params, config, optimizer, mesh=None, axis="dp", max_grad_norm=None,
                       scatter_min_width=SCATTER_MIN_WIDTH, bucket=True):
    """One data-parallel training step of the seed-002 LM: every rank passes the same global batch
    (input_ids, targets: [B, S] ids, B divisible by the `axis` size) and its replica of `params`; it computes
    causal_lm_loss and its gradients on its rows, `optimized_gradient_sync` sums them over `axis`, the sum
    divided by the axis size is the global batch's mean gradient (the shards are equal), optionally clipped
    to `max_grad_norm` (the same global norm on every rank), and `optimizer` (a tessera.optim optimiser over
    `params`) steps. Returns the global batch's loss (the mean of the ranks' losses), a float."""
    from .. import optim
    mesh = dist.current_mesh() if mesh is None else mesh
    ranks = mesh.size(axis)
    ids = dist.shard(np.asarray(input_ids), axis=0, mesh_axis=axis)
    tgt = dist.shard(np.asarray(targets), axis=0, mesh_axis=axis)
    loss, grads = _lm_loss_and_grads()(ids, tgt, params, config)
    grads = optimized_gradient_sync(list(grads), mesh, axis, scatter_min_width, bucket)
    grads = [np.asarray(g) / np.float32(ranks) for g in grads]
    global_loss = dist.distribute(mesh=mesh)(dist.all_reduce)(np.asarray(loss, np.float32).reshape(1), "mean", axis)
    if max_grad_norm is not None:
        optim.clip_grad_norm_(grads, max_norm=max_grad_norm)
    optimizer.step(grads)
    return float(np.asarray(global_loss)[0])
