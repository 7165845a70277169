"""Seed 000's training strategies over the seed-002 causal LM (tessera.gdn.model): `ProgressiveDeltaTraining`
(its `@ts.jit @autodiff` step, the delta mask, and the model and regularisers the seed calls but leaves
undefined), `adaptive_delta_loss`, `adaptive_loss_with_exit_penalty` and `gradient_checkpointing_strategy`
as the seed writes them. NumPy references: tessera.gdn.reference_training. The definitions chosen where the
seed says nothing are in docs/gdn.md ("Training components"):

- `MaskedDeltaLM.forward_with_masked_deltas(batch, delta_mask)`: the seed-002 LM in which the delta connection
  from layer i's output to layer j is used iff delta_mask[i, j] (and j − i ≤ config.max_delta_distance, the
  connections that have parameters). A masked-off contribution is multiplied by 0 and left out of the
  aggregation (the mean divides by the number of enabled ones; the attention softmax gives it weight 0).
- `compute_delta_regularization(mask)` = Σ over enabled connections of ‖c‖₂ / √numel(c), c the contribution
  on this batch (a group-lasso penalty: it drives whole connections to zero, "sparse usage").
- `compute_gating_entropy_regularization()` = −Σ over enabled connections of mean H(g), H the binary entropy
  of each sigmoid gate of the delta network (minimising it keeps gates away from 0/1, "diverse gating")."""
from __future__ import annotations

import contextlib
import math

import numpy as np

import tessera as ts
from tessera import Tensor, autodiff
from .model import GDNConfig, TRANSFORMER_PARAMS, causal_mask, init_params, linear, param_names, rms_norm, silu, \
    transformer_block


# -- the model the seed's trainer drives ---------------------------------------------------------------------

@ts.function
def delta_network_with_gate(source_hidden, target_hidden, layer_distance: int, p):
    """tessera.gdn.model.delta_network, also returning the sigmoid gate (before the 1 / (1 + 0.1·d) scale)."""
    delta = ts.subtract(target_hidden, source_hidden)
    delta_transformed = linear(delta, p["delta_proj_w"], p["delta_proj_b"])
    gate_input = ts.add(source_hidden, target_hidden) / 2.0
    gate = ts.sigmoid(linear(silu(linear(gate_input, p["gate1_w"], p["gate1_b"])), p["gate2_w"], p["gate2_b"]))
    scaled = gate * (1.0 / (1.0 + 0.1 * layer_distance))
    return linear(ts.multiply(delta_transformed, scaled), p["output_proj_w"], p["output_proj_b"]), gate


def mask_entry(delta_mask, source: int, target: int, dtype):
    """delta_mask[source, target] as a 0-d value of `dtype` (1.0 on, 0.0 off). A [1, 1] slice, not an element:
    two extracted elements in one elementwise group do not run yet (see the module's report)."""
    return ts.sum(ts.cast(delta_mask[source:source + 1, target:target + 1], dtype))


@ts.function
def _masked_lm(batch, params: list, config: GDNConfig, delta_mask):
    """(logits, connections): the forward of masked_causal_lm_forward and, per delta connection, a dict of
    source, target, distance, enabled (0-d), contribution and gate. Inlined into a caller's trace."""
    c = config
    P = dict(zip(param_names(c), params))
    S = batch.shape[1]
    mask = causal_mask(S)
    hidden = batch if batch.dtype.is_float else ts.ops.embedding(batch, P["embed_tokens"])
    layer_outputs, connections = [], []
    for layer in range(c.num_hidden_layers):
        p = f"layers.{layer}."
        hidden = transformer_block(hidden, {k: P[p + k] for k in TRANSFORMER_PARAMS}, c.num_attention_heads,
                                   c.rms_eps, mask)
        n = min(layer, c.max_delta_distance)
        if n:
            contributions, enabled = [], []
            for i in range(n):
                q = f"{p}delta.{i}."
                dp = {k[len(q):]: v for k, v in P.items() if k.startswith(q)}
                out, gate = delta_network_with_gate(layer_outputs[-(i + 1)], hidden, i + 1, dp)
                on = mask_entry(delta_mask, layer - i - 1, layer, hidden.dtype)
                connections.append(dict(source=layer - i - 1, target=layer, distance=i + 1, enabled=on,
                                        contribution=out, gate=gate))
                contributions.append(out)
                enabled.append(on)
            count = enabled[0]
            for on in enabled[1:]:
                count = count + on
            if not c.use_attention_deltas or n == 1:
                total = contributions[0] * enabled[0]
                for out, on in zip(contributions[1:], enabled[1:]):
                    total = total + out * on
                agg = total / ts.maximum(count, 1.0)
            else:
                B, S, D = hidden.shape
                scores = ts.stack([ts.sum(hidden * out, axis=-1) * (1.0 / math.sqrt(D)) + (on - 1.0) * 1e9
                                   for out, on in zip(contributions, enabled)], axis=-1)
                weights = ts.reshape(ts.ops.softmax(scores), (B * S, 1, n))
                stacked = ts.reshape(ts.stack(contributions, axis=2), (B * S, n, D))
                agg = ts.reshape(ts.gemm(weights, stacked), (B, S, D)) * ts.minimum(count, 1.0)
            hidden = hidden + agg
        layer_outputs.append(hidden)
    return linear(rms_norm(hidden, P["norm"], c.rms_eps), P["lm_head"]), connections


@ts.function
def masked_causal_lm_forward(batch, params: list, config: GDNConfig, delta_mask):
    """logits [B, S, vocab] of the seed-002 LM whose delta connection from layer i to layer j is on where
    delta_mask[i, j] ([L, L] bool). `batch` is token ids [B, S] or input embeddings [B, S, D] (float)."""
    return _masked_lm(batch, params, config, delta_mask)[0]


class MaskedDeltaLM:
    """The seed-002 causal LM as the object ProgressiveDeltaTraining drives: `num_layers`, `params` (a flat
    list of arrays in param_names(config) order, updated in place by an optimiser) and
    `forward_with_masked_deltas(batch, delta_mask)`, which also keeps this trace's connections
    (`last_connections`) for the regularisers."""

    def __init__(self, config: GDNConfig, params=None, seed=0, dtype=np.float32):
        self.config = config
        self.params = list(params) if params is not None else init_params(config, seed, dtype)
        self.num_layers = config.num_hidden_layers
        self.last_connections = []
        self._traced_params = None

    @contextlib.contextmanager
    def parameters(self, params):
        """Inside, forward passes read `params` (the traced arguments of a gradient) instead of self.params."""
        before, self._traced_params = self._traced_params, params
        try:
            yield
        finally:
            self._traced_params = before

    def forward_with_masked_deltas(self, batch, delta_mask):
        params = self._traced_params if self._traced_params is not None else self.params
        logits, self.last_connections = _masked_lm(batch, params, self.config, delta_mask)
        return logits


class _method:
    """Binds a graph function defined in a class body to the instance, as a method (`self` becomes a
    Python value of the trace: the object's arrays are constants of that graph)."""

    def __init__(self, gf):
        self.gf = gf

    def __get__(self, obj, cls=None):
        if obj is None:
            return self.gf
        return lambda *args, **kwargs: self.gf(obj, *args, **kwargs)


class ProgressiveDeltaTraining:
    """
    Progressive training strategy for GDNs that gradually
    introduces delta connections during training.
    """

    def __init__(self, model, num_epochs_per_stage=10):
        self.model = model
        self.num_epochs_per_stage = num_epochs_per_stage
        self.current_stage = 0
        self.max_delta_distance = 1
        self._value_and_grad = None

    @_method
    @ts.jit @autodiff
    def progressive_training_step(
        self,
        batch: Tensor["B", "S", "D", ts.bf16],
        targets: Tensor["B", "S", "V", ts.bf16],
        epoch: int
    ) -> Tensor[(), ts.f32]:
        """
        Training step with progressive delta connection introduction.
        """

        # Determine current training stage
        stage = epoch // self.num_epochs_per_stage
        max_distance = min(stage + 1, self.model.num_layers // 2)

        # Enable delta connections up to current distance
        delta_mask = self.create_delta_mask(max_distance)

        # Forward pass with masked delta connections
        output = self.model.forward_with_masked_deltas(batch, delta_mask)

        # Loss computation with progressive regularization
        main_loss = ts.ops.cross_entropy_loss(output, targets)

        # Delta regularization term (encourages sparse usage)
        delta_reg = self.compute_delta_regularization(delta_mask)

        # Gating entropy regularization (encourages diverse gating)
        gate_reg = self.compute_gating_entropy_regularization()

        # Combined loss
        total_loss = (
            main_loss +
            0.01 * delta_reg +
            0.001 * gate_reg
        )

        return total_loss

    def create_delta_mask(self, max_distance: int) -> Tensor:
        """Create mask for delta connections based on maximum distance."""
        num_layers = self.model.num_layers
        mask = ts.zeros([num_layers, num_layers], dtype=ts.bool)

        for i in range(num_layers):
            for j in range(i + 1, min(i + max_distance + 1, num_layers)):
                mask = mask.at[i, j].set(True)

        return mask

    def compute_delta_regularization(self, delta_mask):
        """Σ over the last forward's connections enabled in delta_mask of ‖contribution‖₂ / √numel."""
        total = 0.0
        for conn in self.model.last_connections:
            c = conn["contribution"]
            on = mask_entry(delta_mask, conn["source"], conn["target"], c.dtype)
            total = total + on * ts.ops.l2_norm(c) * (1.0 / math.sqrt(float(np.prod(c.shape))))
        return total

    def compute_gating_entropy_regularization(self):
        """−Σ over the last forward's enabled connections of the mean binary entropy of their gates."""
        total = 0.0
        for conn in self.model.last_connections:
            g = conn["gate"]
            entropy = -(g * ts.log(g + 1e-8) + (1.0 - g) * ts.log(1.0 - g + 1e-8))
            total = total - conn["enabled"] * ts.mean(entropy)
        return total

    # -- training: the step's loss as a function of the model's parameters ------------------------------------
    def value_and_grad(self, batch, targets, epoch: int):
        """(loss, gradients in param order) of progressive_training_step at the model's parameters: the seed's
        body traced with the parameters as the differentiated argument. The body reads `epoch` only through
        its stage (epoch // num_epochs_per_stage), so it is traced with the stage's first epoch: one graph per
        stage, not one per epoch."""
        if self._value_and_grad is None:
            step, trainer = type(self).progressive_training_step.fn, self

            def progressive_loss(params: list, batch, targets, epoch: int):
                with trainer.model.parameters(params):
                    return step(trainer, batch, targets, epoch)
            self._value_and_grad = autodiff.value_and_grad(ts.function(progressive_loss), argnums=0)
        first = (epoch // self.num_epochs_per_stage) * self.num_epochs_per_stage
        return self._value_and_grad(self.model.params, batch, targets, first)

    def train_step(self, optimizer, batch, targets, epoch: int, max_grad_norm=None):
        """One step: loss and gradients, optional clip_grad_norm_, optimizer.step (over self.model.params,
        updated in place). Returns the loss as a float."""
        from tessera import optim
        loss, grads = self.value_and_grad(batch, targets, epoch)
        if max_grad_norm is not None:
            optim.clip_grad_norm_(grads, max_grad_norm)
        optimizer.step(grads)
        self.current_stage = epoch // self.num_epochs_per_stage
        self.max_delta_distance = min(self.current_stage + 1, self.model.num_layers // 2)
        return float(loss)


# -- seed 000's losses and checkpointing strategy, as written ---------------------------------------------------

@ts.function
def adaptive_delta_loss(
    predictions: Tensor["B", "S", "V", ts.bf16],
    targets: Tensor["B", "S", "V", ts.bf16],
    delta_contributions: list[Tensor],
    gate_weights: list[Tensor]
) -> Tensor[(), ts.f32]:
    """
    Adaptive loss function that balances main task performance
    with delta connection efficiency.
    """

    # Main task loss
    main_loss = ts.ops.cross_entropy_loss(predictions, targets)

    # Delta sparsity loss (encourage selective delta usage)
    delta_sparsity_loss = 0.0
    for delta_contrib in delta_contributions:
        delta_norm = ts.ops.l2_norm(delta_contrib)
        delta_sparsity_loss += ts.ops.l1_regularization(delta_norm)

    # Gate diversity loss (prevent gate collapse)
    gate_diversity_loss = 0.0
    for gate_weight in gate_weights:
        # Compute entropy of gate weights
        gate_probs = ts.ops.softmax(gate_weight)
        gate_entropy = -ts.sum(gate_probs * ts.log(gate_probs + 1e-8))
        gate_diversity_loss -= gate_entropy  # Negative because we want high entropy

    # Adaptive weighting based on training progress
    training_progress = ts.ops.get_training_progress()  # 0.0 to 1.0

    sparsity_weight = 0.1 * training_progress  # Increase sparsity pressure over time
    diversity_weight = 0.01 * (1.0 - training_progress)  # Decrease diversity pressure

    total_loss = (
        main_loss +
        sparsity_weight * delta_sparsity_loss +
        diversity_weight * gate_diversity_loss
    )

    return total_loss


@ts.function
def adaptive_loss_with_exit_penalty(
    predictions: Tensor["B", "S", "V", ts.bf16],
    targets: Tensor["B", "S", "V", ts.bf16],
    exit_probabilities: Tensor["B", "L", "S", ts.bf16],
    target_exit_layer: int = None
) -> Tensor[(), ts.f32]:
    """
    Loss function that encourages efficient early exit behavior.
    """

    # Main task loss
    main_loss = ts.ops.cross_entropy_loss(predictions, targets)

    # Exit efficiency loss
    if target_exit_layer is not None:
        # Encourage exiting at target layer
        target_layer_probs = exit_probabilities[:, target_exit_layer, :]
        efficiency_loss = -ts.mean(ts.log(target_layer_probs + 1e-8))

        # Penalize late exits
        late_exit_penalty = 0.0
        for layer_idx in range(target_exit_layer + 1, exit_probabilities.shape[1]):
            layer_probs = exit_probabilities[:, layer_idx, :]
            late_exit_penalty += ts.mean(layer_probs)

        total_loss = main_loss + 0.1 * efficiency_loss + 0.05 * late_exit_penalty
    else:
        # General efficiency loss - encourage earlier exits
        layer_weights = ts.arange(exit_probabilities.shape[1], dtype=ts.f32)
        layer_weights = ts.softmax(-layer_weights)  # Higher weight for earlier layers

        weighted_exit_loss = 0.0
        for layer_idx in range(exit_probabilities.shape[1]):
            layer_probs = exit_probabilities[:, layer_idx, :]
            weight = layer_weights[layer_idx]
            weighted_exit_loss += weight * ts.mean(layer_probs)

        total_loss = main_loss - 0.1 * weighted_exit_loss  # Negative to encourage early exit

    return total_loss


@ts.function
def gradient_checkpointing_strategy(
    layer_index: int,
    total_layers: int,
    available_memory: float,
    memory_per_layer: float
) -> bool:
    """
    Decide whether to checkpoint based on memory constraints and layer position.
    """

    # Calculate memory pressure
    memory_usage_ratio = (total_layers * memory_per_layer) / available_memory

    if memory_usage_ratio < 0.8:
        # Low memory pressure - checkpoint key layers only
        return layer_index % 4 == 0
    elif memory_usage_ratio < 1.2:
        # Medium memory pressure - checkpoint every other layer
        return layer_index % 2 == 0
    else:
        # High memory pressure - checkpoint all layers
        return True
