"""Seed 000's "Gradient Flow Optimization": `optimized_delta_backward` (the eager gradient-tape backward pass
through a chain of delta connections) with the `compute_delta_gradient` the seed calls but never defines,
the forward chain it differentiates, and `efficient_gradient_accumulation_kernel` (the seed's @ts.kernel).
NumPy references: tessera.gdn.reference_training.

The chain (documented in docs/gdn.md, "Training components"). Given layer inputs x[0..L-1] (what each layer
contributes before its incoming delta) and gates g[0..L-1]:

    a[0] = x[0],  a[1] = x[1]                          (layer 0 has no incoming connection: the seed's zeros_like)
    c[i] = delta_connection(a[i-1], a[i], g[i], 1)     for i = 1 .. L-1
    a[i+1] = x[i+1] + c[i]                             for i = 1 .. L-2
    y = c[L-1]                                         (the chain's output; `output_gradients` is dy)

`optimized_delta_backward(a, dy, g)` returns (d<dy, y>/dx[i] = the total gradient at a[i], d<dy, y>/dg[i]).
a[i] is the TARGET of c[i] (what the seed's tape differentiates, with the cotangent of a[i+1]) and the SOURCE of
c[i+1]; `compute_delta_gradient` is that second path: the gradient at the source of c[i+1] for c[i+1]'s
cotangent (the accumulated gradient of a[i+2]). The seed's call passes `forward_activations[:layer_idx]`, which
never contains a[i] or a[i+1], and skips layer 0, which is a source too: the three stated fixes (SEED_FIXES)
pass the connection's two activations, its gate and its cotangent, and run the source path for every layer
that has a successor."""
from __future__ import annotations

import numpy as np

import tessera as ts
from tessera import Tensor, autodiff, tile
from .functions import delta_connection


@ts.function
def compute_delta_gradient(activations: list, accumulated_grad, gate_parameters: list):
    """The gradient at the SOURCE of delta_connection(activations[0], activations[1], gate_parameters[0], 1)
    for the cotangent `accumulated_grad` of its output (an in-graph gradient tape). Since the connection
    depends on its delta only, this is minus the target's gradient."""
    source, target = activations
    with autodiff.gradient_tape() as tape:
        tape.watch(source)
        contribution = delta_connection(source, target, gate_parameters[0], 1)
    return tape.gradient(contribution, source, output_gradients=accumulated_grad)


# The seed's text with the stated fixes (tests/test_seed_functions.py applies the same three to the seed file)
SEED_FIXES = [
    ("        if layer_idx > 0:\n            # Add gradient from delta connections",
     "        if layer_idx + 1 < len(forward_activations):\n            # Add gradient from delta connections"),
    ("                forward_activations[:layer_idx],\n                accumulated_grad,\n",
     "                forward_activations[layer_idx:layer_idx + 2],\n"
     "                ([output_gradients] + layer_gradients)[-2],\n"),
    ("                gate_parameters[:layer_idx]\n", "                gate_parameters[layer_idx + 1:layer_idx + 2]\n"),
]


@ts.function
def optimized_delta_backward(
    forward_activations: list[Tensor],
    output_gradients: Tensor["B", "S", "D", ts.bf16],
    gate_parameters: list[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """Optimized backward pass for delta connections with gradient accumulation and flow control (seed 000;
    it returns lists, so it runs eagerly and its tape records the compiled calls)."""
    layer_gradients = []
    gate_gradients = []

    # Accumulate gradients for each layer
    accumulated_grad = output_gradients

    for layer_idx in reversed(range(len(forward_activations))):
        layer_activation = forward_activations[layer_idx]
        gate_param = gate_parameters[layer_idx]

        # Compute local gradients
        with ts.autodiff.gradient_tape() as tape:
            tape.watch([layer_activation, gate_param])

            # Recompute forward pass for this layer
            if layer_idx > 0:
                delta_contrib = delta_connection(
                    forward_activations[layer_idx - 1],
                    layer_activation,
                    gate_param,
                    1
                )
            else:
                delta_contrib = ts.zeros_like(layer_activation)

        # Compute gradients
        local_grads = tape.gradient(
            delta_contrib,
            [layer_activation, gate_param],
            output_gradients=accumulated_grad
        )

        layer_grad, gate_grad = local_grads

        # Accumulate layer gradient
        if layer_idx + 1 < len(forward_activations):            # fix: every layer that is a source
            # Add gradient from delta connections
            delta_grad = compute_delta_gradient(
                forward_activations[layer_idx:layer_idx + 2],   # fix: the connection a[i] -> a[i+1]
                ([output_gradients] + layer_gradients)[-2],     # fix: its cotangent, the gradient of a[i+2]
                gate_parameters[layer_idx + 1:layer_idx + 2]    # fix: its gate
            )
            layer_grad = ts.add(layer_grad, delta_grad)

        layer_gradients.append(layer_grad)
        gate_gradients.append(gate_grad)

        # Update accumulated gradient for next layer
        accumulated_grad = layer_grad

    # Reverse to match forward order
    layer_gradients.reverse()
    gate_gradients.reverse()

    return layer_gradients, gate_gradients


def _chain(layer_inputs, gate_parameters):
    L = len(layer_inputs)
    activations = [layer_inputs[0]]
    output = ts.zeros_like(layer_inputs[0])
    for i in range(1, L):
        activations.append(layer_inputs[i] if i == 1 else ts.add(layer_inputs[i], output))
        output = delta_connection(activations[i - 1], activations[i], gate_parameters[i], 1)
    return activations, output


@ts.function
def delta_chain_forward(layer_inputs: list, gate_parameters: list):
    """The chain `optimized_delta_backward` differentiates: (a[0], ..., a[L-1], y) as a tuple."""
    activations, output = _chain(layer_inputs, gate_parameters)
    return tuple(activations) + (output,)


@ts.function
def delta_chain_loss(layer_inputs: list, gate_parameters: list, output_gradients):
    """<dy, y>: its gradients with respect to the layer inputs and the gates are what optimized_delta_backward
    returns (autodiff.grad(delta_chain_loss, argnums=(0, 1)))."""
    _, output = _chain(layer_inputs, gate_parameters)
    return ts.sum(ts.multiply(output, output_gradients))


@ts.kernel
def efficient_gradient_accumulation_kernel(
    layer_gradients: list[tile.Tensor],
    delta_gradients: list[tile.Tensor],
    gate_gradients: list[tile.Tensor],
    output: tile.Tensor["B", "S", "D", ts.f32]
):
    """Efficient kernel for gradient accumulation across delta paths (seed 000, as written): output[b, s] =
    Σ layer_gradients[k][b, s] + Σ delta_gradients[k][b, s] · gate_gradients[k][0]; one program per (batch,
    128-row block); gate gradients are one-element tensors."""
    ctx = tile.context()

    # Shared memory for gradient accumulation
    BLOCK_SIZE = 128
    smem_accumulator = tile.alloc_shared([BLOCK_SIZE, ctx.D], ts.f32, swizzle="xor")

    # Thread and block identification
    batch_idx = tile.program_id(0)
    seq_start = tile.program_id(1) * BLOCK_SIZE

    # Initialize accumulator
    tile.fill(smem_accumulator, 0.0)

    # Accumulate gradients from all delta paths
    for grad_idx in tile.range(len(layer_gradients)):
        # Load gradient block
        grad_block = tile.load_block(
            layer_gradients[grad_idx],
            batch_idx, seq_start, 1, BLOCK_SIZE
        )

        # Convert to f32 for accumulation
        grad_f32 = tile.cast(grad_block, ts.f32)

        # Accumulate with memory coalescing
        tile.accumulate(smem_accumulator, grad_f32)

    # Add delta-specific gradients
    for delta_idx in tile.range(len(delta_gradients)):
        delta_grad_block = tile.load_block(
            delta_gradients[delta_idx],
            batch_idx, seq_start, 1, BLOCK_SIZE
        )

        delta_grad_f32 = tile.cast(delta_grad_block, ts.f32)

        # Weight by gate importance
        gate_weight = tile.load_scalar(gate_gradients[delta_idx])
        weighted_grad = tile.multiply(delta_grad_f32, gate_weight)

        tile.accumulate(smem_accumulator, weighted_grad)

    # Store accumulated gradient
    tile.store_block(output, smem_accumulator, batch_idx, seq_start)


def accumulate_gradients(layer_gradients, delta_gradients, gate_gradients):
    """Launch efficient_gradient_accumulation_kernel over [B, S, D] gradients: a new f32 array."""
    B, S, D = np.shape(layer_gradients[0])
    out = np.zeros((B, S, D), np.float32)
    efficient_gradient_accumulation_kernel[(B, -(-S // 128))](list(layer_gradients), list(delta_gradients),
                                                             list(gate_gradients), out)
    return out
