"""Seed 000's `DistributedGDNTraining`: the seed-002 GDN LM trained on a ("dp", "tp", "pp") mesh
(docs/distributed.md, "DistributedGDNTraining").

The seed sketches the step and leaves the model undefined; what tessera makes of each piece:

- the model (`create_distributed_model`) is the seed-002 LM of tessera.gdn.model, with its parameters;
- `get_stage_layers(stage)`: the layers are split into `pp` contiguous runs, as even as possible (the first
  stages take one more). Stage 0 also holds the embedding, the last stage the final norm, the lm_head and the
  loss;
- `layer.forward` is the model's transformer block, and the delta parameters the seed indexes as
  `model.gate_params[prev][stage]` are the DeltaNetwork of connection i of layer l
  (`layers.{l}.delta.{i}.*`);
- the activations that cross a stage boundary are the last min(l, max_delta_distance) layer outputs (at
  least one: the hidden state), not only the hidden state the seed sends. Layer l's delta connections read
  the outputs of the layers before it, and those may live on the previous stage;
- tensor parallelism is over delta connections, as in the seed. Connection i is computed only on tp rank
  i % tp, so only that rank holds its parameters. With mean aggregation the ranks' partial sums are
  all-reduced over tp (the seed's `all_reduce(sum(stack(contribs)))`). With attention aggregation, which
  needs every contribution, the ranks' contributions are all-gathered over tp, each exactly once; the seed
  gathers copies, because its device_assignment block runs on every rank. The transformer blocks are
  replicated over tp;
- data parallelism: every rank passes the same global batch, `dist.shard` gives each dp rank its rows,
  and the loss is all-reduced with "mean" over dp inside the last stage's graph (as in the seed);
- `targets` are token ids [B, S] (causal_lm_loss's), not the seed's one-hot [B, S, V].

The seed's `@ts.jit @autodiff` step needs gradients through the pipeline's point-to-point sends, which are
not graph ops. Each stage is therefore one @ts.function (its tp collectives and the dp loss reduction are ops
of that graph, differentiated by tessera.autodiff), and the backward is a pipeline of its own. The last stage
runs `value_and_grad` of its loss and sends the cotangents of the activations it received back one stage.
Every other stage takes the gradient of Σ⟨its outputs, received cotangents⟩, which recomputes its forward,
and does the same. Under autodiff's "sum over ranks" convention the tp copies of the loss are counted tp
times. So the gradients of the parameters replicated over tp are summed over tp, all gradients are summed
over dp (`optimized_gradient_sync`), and the result is divided by dp·tp. That is the global batch's
mean-loss gradient, for the parameters this rank holds.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

import tessera as ts
from tessera import dist

from ..errors import DistributedError
from .distributed import optimized_gradient_sync
from .model import (TRANSFORMER_PARAMS, _aggregate, causal_mask, delta_network, init_params, linear, param_names,
                    param_shapes, rms_norm, transformer_block)

AXES = ("dp", "tp", "pp")


def stage_layers(num_layers: int, stages: int, stage: int) -> range:
    """The layers of pipeline stage `stage`: contiguous runs as even as possible, the first stages one longer."""
    base, extra = divmod(num_layers, stages)
    start = stage * base + min(stage, extra)
    return range(start, start + base + (stage < extra))


def _history_length(layer: int, max_delta_distance: int) -> int:
    """How many layer outputs cross into a stage that starts at `layer`: what its delta connections read."""
    return max(1, min(layer, max_delta_distance))


def _delta_prefix(layer, i):
    return f"layers.{layer}.delta.{i}."


@dataclass(frozen=True)
class StagePlan:
    """What one rank's stage graph computes: its layers [first_layer, end_layer), whether it embeds the ids
    and/or ends in the loss, its tp rank of `tp`, the dp size the loss is averaged over, and the names of the
    parameters it takes, in order."""
    first_layer: int
    end_layer: int
    embeds: bool
    ends: bool
    tp: int
    tp_rank: int
    dp: int
    names: tuple

    def owns_connection(self, i: int) -> bool:
        return i % self.tp == self.tp_rank

    def replicated_over_tp(self, name: str) -> bool:
        return ".delta." not in name


def plan_stage(config, tp, pp, dp, tp_rank, stage) -> StagePlan:
    layers = stage_layers(config.num_hidden_layers, pp, stage)
    names = ["embed_tokens"] if stage == 0 else []
    for layer in layers:
        names += [f"layers.{layer}.{k}" for k in TRANSFORMER_PARAMS]
        for i in range(min(layer, config.max_delta_distance)):
            if i % tp == tp_rank:
                names += [n for n in param_names(config) if n.startswith(_delta_prefix(layer, i))]
    if stage == pp - 1:
        names += ["norm", "lm_head"]
    return StagePlan(layers.start, layers.stop, stage == 0, stage == pp - 1, tp, tp_rank, dp, tuple(names))


def _tp_delta(hidden, own, n, config, plan):
    """The aggregated delta of a layer with n connections, of which this rank computed `own` ({i: contribution}).
    A rank that owns none still joins the collective, with hidden·0: every tp rank's graph then has the same
    collectives, forward and backward (a constant would take the op out of the differentiated graph)."""
    if plan.tp == 1:
        return _aggregate(hidden, [own[i] for i in range(n)], config.use_attention_deltas)
    nothing = hidden * 0.0
    if not config.use_attention_deltas or n == 1:
        partial = nothing
        for c in own.values():
            partial = partial + c
        return dist.all_reduce(partial, op="sum", axis="tp") * (1.0 / n)
    per_rank = -(-n // plan.tp)
    slots = [own.get(plan.tp_rank + j * plan.tp, nothing) for j in range(per_rank)]
    gathered = dist.all_gather(ts.stack(slots, axis=0), axis="tp", dim=0)     # slot (t, j) holds connection t + j·tp
    return _aggregate(hidden, [gathered[(i % plan.tp) * per_rank + i // plan.tp] for i in range(n)], True)


def _stage(inputs, params, targets, config, plan):
    """The stage's outputs: the activations for the next stage (a tuple), or the last stage's loss."""
    P = dict(zip(plan.names, params))
    if plan.embeds:
        hidden, outputs = ts.ops.embedding(inputs[0], P["embed_tokens"]), []
    else:
        outputs = list(inputs)
        hidden = outputs[-1]
    mask = causal_mask(hidden.shape[1])
    for layer in range(plan.first_layer, plan.end_layer):
        hidden = transformer_block(hidden, {k: P[f"layers.{layer}.{k}"] for k in TRANSFORMER_PARAMS},
                                   config.num_attention_heads, config.rms_eps, mask)
        n = min(layer, config.max_delta_distance)
        if n:
            own = {}
            for i in range(n):
                if plan.owns_connection(i):
                    q = _delta_prefix(layer, i)
                    own[i] = delta_network(outputs[-(i + 1)], hidden, i + 1,
                                           {k[len(q):]: v for k, v in P.items() if k.startswith(q)})
            hidden = hidden + _tp_delta(hidden, own, n, config, plan)
        outputs.append(hidden)
    if not plan.ends:
        return tuple(outputs[-_history_length(plan.end_layer, config.max_delta_distance):])
    logits = linear(rms_norm(hidden, P["norm"], config.rms_eps), P["lm_head"])
    loss = ts.ops.cross_entropy_loss(logits, ts.ops.one_hot(targets, config.vocab_size, logits.dtype))
    return dist.all_reduce(loss, op="mean", axis="dp") if plan.dp > 1 else loss


@ts.function
def stage_forward(inputs: list, params: list, targets, config, plan: StagePlan):
    """One pipeline stage of DistributedGDNTraining as a graph (inputs: [ids] on stage 0, else the history)."""
    return _stage(inputs, params, targets, config, plan)


@ts.function
def stage_cotangent_product(inputs: list, params: list, cotangents: list, targets, config, plan: StagePlan):
    """Σ_k ⟨output_k, cotangent_k⟩ of a stage that is not the last: its gradient is the stage's VJP."""
    total = None
    for out, ct in zip(_stage(inputs, params, targets, config, plan), cotangents):
        term = ts.sum(out * ct)
        total = term if total is None else total + term
    return total


_GRADS = {}


def _gradient_of(fn, with_value, argnums):
    key = (fn.__name__, with_value, argnums)
    if key not in _GRADS:
        from ..autodiff import grad, value_and_grad
        _GRADS[key] = (value_and_grad if with_value else grad)(fn, argnums=argnums)
    return _GRADS[key]


def _on_own_mesh(method):
    """The trainer's mesh is the current mesh while the method runs (its collectives' default)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        return dist.distribute(mesh=self.mesh)(method)(self, *args, **kwargs)
    return run


class DistributedGDNTraining:
    """Seed 000's distributed training of the GDN LM on a mesh with axes ("dp", "tp", "pp") (default: the
    current mesh, e.g. the one `@ts.distribute(mesh=...)` sets, as in the seed). Every rank passes
    the same global batch (input_ids, targets: [B, S] token ids, B divisible by the dp size).

        trainer = gdn.DistributedGDNTraining(config, mesh)
        opt = optim.AdamW(trainer.parameters(), lr=3e-3)           # this rank's parameters
        loss = trainer.train_step(input_ids, targets, opt, max_grad_norm=1.0)

    `params` (all of the LM's, in param_names order; default init_params(config, seed)) must be the same on
    every rank; each rank keeps the ones its stage and tp rank use (`parameter_names()`)."""

    def __init__(self, model_config, mesh=None, params=None, seed=0):
        self.mesh = dist.current_mesh() if mesh is None else mesh
        missing = [a for a in AXES if a not in self.mesh.axes]
        if missing:
            raise DistributedError(f"DistributedGDNTraining needs a mesh with axes {AXES}; this one has "
                                   f"{self.mesh.axes} (give a missing axis size 1)")
        self.config = model_config
        if self.mesh.size("pp") > model_config.num_hidden_layers:
            raise DistributedError(f"DistributedGDNTraining: {self.mesh.size('pp')} pipeline stages but only "
                                   f"{model_config.num_hidden_layers} layers")
        self.stage = self.mesh.rank("pp")
        self.plan = plan_stage(model_config, self.mesh.size("tp"), self.mesh.size("pp"), self.mesh.size("dp"),
                               self.mesh.rank("tp"), self.stage)
        self.model = self.create_distributed_model(model_config, params, seed)

    # -- the pieces the seed leaves undefined ------------------------------------------------------------
    def create_distributed_model(self, model_config, params=None, seed=0) -> dict:
        """{name: array} of the parameters this rank holds (its stage's layers; its own delta connections)."""
        full = init_params(model_config, seed) if params is None else list(params)
        names = param_names(model_config)
        if len(full) != len(names):
            raise DistributedError(f"DistributedGDNTraining: {len(full)} parameters given, the model has {len(names)}")
        by_name = dict(zip(names, full))
        return {n: np.array(by_name[n], copy=True) for n in self.plan.names}

    def get_stage_layers(self, stage_idx: int) -> range:
        return stage_layers(self.config.num_hidden_layers, self.mesh.size("pp"), stage_idx)

    def parameter_names(self) -> list:
        return list(self.plan.names)

    def parameters(self) -> list:
        """This rank's parameter arrays, in parameter_names() order (updated in place by an optimiser)."""
        return [self.model[n] for n in self.plan.names]

    # -- the step ------------------------------------------------------------------------------------------
    def _shards(self, input_ids, targets):
        ids = dist.shard(np.asarray(input_ids), axis=0, mesh_axis="dp") if self.plan.embeds else None
        tgt = dist.shard(np.asarray(targets), axis=0, mesh_axis="dp") if self.plan.ends else None
        return ids, tgt

    def _receive_history(self):
        n = _history_length(self.plan.first_layer, self.config.max_delta_distance)
        return [dist.recv(self.stage - 1, axis="pp") for _ in range(n)]

    def _send(self, arrays, stage):
        for a in arrays:
            dist.send(np.ascontiguousarray(a), stage, axis="pp")

    def _loss_on_every_stage(self, loss):
        last = self.mesh.size("pp") - 1
        value = np.asarray(loss if self.plan.ends else 0.0, np.float32).reshape(1)
        return float(np.asarray(dist.broadcast(value, src=last, axis="pp"))[0])

    @_on_own_mesh
    def distributed_training_step(self, input_ids, targets) -> float:
        """The global batch's mean next-token loss (forward only), on every rank."""
        ids, tgt = self._shards(input_ids, targets)
        inputs = [ids] if self.plan.embeds else self._receive_history()
        out = stage_forward(inputs, self.parameters(), tgt, self.config, self.plan)
        if not self.plan.ends:
            self._send(out, self.stage + 1)
        return self._loss_on_every_stage(out if self.plan.ends else None)

    @_on_own_mesh
    def loss_and_gradients(self, input_ids, targets):
        """(the global batch's loss on every rank, the gradients of that loss for parameters(), in order)."""
        ids, tgt = self._shards(input_ids, targets)
        inputs = [ids] if self.plan.embeds else self._receive_history()
        params = self.parameters()
        argnums = 1 if self.plan.embeds else (0, 1)
        if self.plan.ends:
            loss, grads = _gradient_of(stage_forward, True, argnums)(inputs, params, tgt, self.config, self.plan)
        else:
            outputs = stage_forward(inputs, params, tgt, self.config, self.plan)
            self._send(outputs, self.stage + 1)
            cts = [dist.recv(self.stage + 1, axis="pp") for _ in outputs]
            loss = None
            grads = _gradient_of(stage_cotangent_product, False, argnums)(inputs, params, cts, tgt, self.config,
                                                                           self.plan)
        if self.plan.embeds:
            param_grads = grads
        else:
            input_grads, param_grads = grads
            self._send(input_grads, self.stage - 1)
        return self._loss_on_every_stage(loss), self._synchronise(list(param_grads))

    def _synchronise(self, grads):
        replicated = [i for i, n in enumerate(self.plan.names) if self.plan.replicated_over_tp(n)]
        if self.plan.tp > 1:
            summed = optimized_gradient_sync([grads[i] for i in replicated], self.mesh, "tp")
            for i, g in zip(replicated, summed):
                grads[i] = g
        if self.plan.dp > 1:
            grads = optimized_gradient_sync(grads, self.mesh, "dp")
        scale = np.float32(1.0 / (self.plan.dp * self.plan.tp))
        return [np.asarray(g) * scale.astype(np.asarray(g).dtype) for g in grads]

    @_on_own_mesh
    def clip_grad_norm_(self, grads, max_norm) -> float:
        """torch's clip_grad_norm_ over the whole model's gradients (each parameter counted once, on its
        owner: tp rank 0 for one replicated over tp), scaling this rank's `grads` in place."""
        from ..optim.clip import grad_groups, scale_, total_norm
        counted = [g for n, g in zip(self.plan.names, grads) if self.plan.tp_rank == 0 or
                   not self.plan.replicated_over_tp(n)]
        local = total_norm(grad_groups(counted, "clip_grad_norm_")) ** 2 if counted else 0.0
        square = np.array([local], np.float64)
        for axis in ("tp", "pp"):
            square = np.asarray(dist.all_reduce(square, op="sum", axis=axis))
        total = math.sqrt(float(square[0]))
        coef = float(max_norm) / (total + 1e-6)
        if not coef >= 1.0:
            scale_(grad_groups(grads, "clip_grad_norm_"), coef)
        return total

    def train_step(self, input_ids, targets, optimizer, max_grad_norm=None) -> float:
        """loss_and_gradients, optional global-norm clipping, `optimizer.step`; returns the step's loss."""
        loss, grads = self.loss_and_gradients(input_ids, targets)
        if max_grad_norm is not None:
            self.clip_grad_norm_(grads, max_grad_norm)
        optimizer.step(grads)
        return loss

    @_on_own_mesh
    def full_parameters(self) -> list:
        """Every parameter of the LM, in param_names order, on every rank (summed from their holders)."""
        names = param_names(self.config)
        shapes = dict(param_shapes(self.config))
        sizes = [math.prod(shapes[n]) for n in names]
        flat = np.zeros(sum(sizes), np.float32)
        offsets = np.cumsum([0] + sizes)
        for n, a in self.model.items():
            if self.plan.tp_rank == 0 or not self.plan.replicated_over_tp(n):
                i = names.index(n)
                flat[offsets[i]:offsets[i + 1]] = np.asarray(a, np.float32).ravel()
        for axis in ("tp", "pp"):
            flat = np.asarray(dist.all_reduce(flat, op="sum", axis=axis))
        return [flat[offsets[i]:offsets[i + 1]].reshape(shapes[n]) for i, n in enumerate(names)]

