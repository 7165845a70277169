"""The seeds' checkpointed GDN layers: seed 000's `memory_efficient_gdn_layer` and seed 001's
`delta_layer_with_checkpointing`, as written there, on `ts.ops.transformer_layer` (the seed-002 decoder layer)
with `@ts.checkpoint` and `ts.checkpoint_scope()`: in a gradient graph the marked regions are recomputed in the
backward pass instead of stored (docs/training.md). NumPy references: tessera.gdn.reference_training.

What the seeds leave open:
- `layer_params` (a "Tensor" in the seeds) is the transformer layer's parameters: a dict with the keys of
  tessera.gdn.model.TRANSFORMER_PARAMS, or a list of those arrays in that order (a list is a graph argument,
  so gradients can be taken with respect to it; a dict of arrays is a Python value).
- seed 001's `ts.ops.learned_attention_weights()` is undefined: the learned weights are a parameter,
  `attention_weights` ([L + 1, L + 1], column −1 weighs each previous layer's connection as in
  multi_scale_delta_aggregation).
- seed 001 computes `delta_contributions` in a loop (every other one in a checkpoint_scope) and never uses
  them (the aggregation recomputes the connections, weighted). The graph pipeline does not remove unused ts
  ops (they would run), so that loop is left out here; the seed's text, loop included, gives the same values
  and gradients (tests/test_seed_functions.py)."""
from __future__ import annotations

import tessera as ts
from tessera import Tensor
from .functions import delta_connection, multi_scale_delta_aggregation
from .model import TRANSFORMER_PARAMS


def transformer_params(layer_params):
    """layer_params as ts.ops.transformer_layer takes it: a dict (a list in TRANSFORMER_PARAMS order is zipped)."""
    if isinstance(layer_params, (list, tuple)):
        return dict(zip(TRANSFORMER_PARAMS, layer_params))
    return layer_params


@ts.checkpoint
def memory_efficient_gdn_layer(
    x: Tensor["B", "S", "D", ts.bf16],
    previous_activations: list[Tensor],
    layer_params: Tensor,
    gate_params: list[Tensor],
    checkpoint_every_n: int = 2
) -> Tensor["B", "S", "D", ts.bf16]:
    """
    Memory-efficient GDN layer with selective checkpointing (seed 000).
    """
    layer_params = transformer_params(layer_params)

    # Main layer computation (always checkpointed)
    with ts.checkpoint_scope():
        main_output = ts.ops.transformer_layer(x, layer_params)

    # Delta contributions with selective checkpointing
    delta_contributions = []

    for i, (prev_act, gate_param) in enumerate(zip(previous_activations, gate_params)):
        if i % checkpoint_every_n == 0:
            # Checkpoint this delta computation
            with ts.checkpoint_scope():
                delta_contrib = delta_connection(
                    prev_act, main_output, gate_param, len(previous_activations) - i
                )
        else:
            # Don't checkpoint - will recompute in backward pass
            delta_contrib = delta_connection(
                prev_act, main_output, gate_param, len(previous_activations) - i
            )

        delta_contributions.append(delta_contrib)

    # Aggregate delta contributions
    if delta_contributions:
        total_delta = ts.sum(ts.stack(delta_contributions), axis=0)
        final_output = ts.add(main_output, total_delta)
    else:
        final_output = main_output

    return final_output


@ts.checkpoint
def delta_layer_with_checkpointing(
    x: Tensor["B", "S", "D", ts.bf16],
    previous_layers: list[Tensor],
    layer_params: Tensor,
    gate_params: list[Tensor],
    attention_weights: Tensor["L", "L", ts.bf16]
) -> Tensor["B", "S", "D", ts.bf16]:
    """
    Memory-efficient delta layer with gradient checkpointing (seed 001; its
    ts.ops.learned_attention_weights() is the `attention_weights` parameter, its unused loop is left out).
    """
    layer_params = transformer_params(layer_params)

    # Main layer computation
    layer_output = ts.ops.transformer_layer(x, layer_params)

    # (the seed's loop computing delta_contributions, every other one in a checkpoint_scope, is left out:
    # the seed never uses them, and the graph pipeline does not remove unused ts ops)

    # Aggregate delta contributions
    total_delta = multi_scale_delta_aggregation(
        previous_layers, layer_output, gate_params,
        attention_weights
    )

    # Combine main output with delta contributions
    final_output = ts.add(layer_output, total_delta)

    return final_output
