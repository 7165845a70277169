"""Seed 000 `adaptive_gdn_with_early_exit`: layers with delta connections from every earlier output,
stopping when the mean exit probability passes a threshold (from the third layer on).

The seed leaves two names undefined; here a layer is `ExitLayer(weight, gate_params, confidence)`
with `forward(x) = x + silu(x @ weight)` and `confidence_network(h) = h @ confidence` ([B, S]).
The exit decision is data-dependent, so the driver runs eagerly: each step is a compiled graph
(traced once per layer count), the comparison happens on the host."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tessera as ts
from .functions import delta_connection


@dataclass
class ExitLayer:
    weight: object           # [D, D]
    gate_params: list        # [D, D] per earlier output
    confidence: object       # [D, 1]


@ts.function
def exit_layer_step(current_hidden, earlier_outputs: list, gate_params: list, weight, confidence):
    """Delta-enhanced input → layer output, and the exit probability sigmoid(confidence(h)) [B, S, 1]."""
    n = len(earlier_outputs)
    enhanced = current_hidden
    if n:
        deltas = [delta_connection(earlier_outputs[i], current_hidden, gate_params[i], n - i) for i in range(n)]
        enhanced = ts.add(current_hidden, ts.sum(ts.stack(deltas), axis=0))
    layer_output = enhanced + ts.ops.silu(ts.gemm(enhanced, weight))
    return layer_output, ts.sigmoid(ts.gemm(layer_output, confidence))


def adaptive_gdn_with_early_exit(input_sequence, layer_stack, confidence_threshold=0.95, max_layers=None):
    """(final output, exit probabilities [B, L, S]); layers after an early exit get probability 1."""
    max_layers = max_layers or len(layer_stack)
    current = input_sequence
    outputs = [current]
    probs = []
    for layer_idx in range(max_layers):
        layer = layer_stack[layer_idx]
        earlier = outputs[:-1] if layer_idx > 0 else []
        out, p = exit_layer_step(current, earlier, list(layer.gate_params[:len(earlier)]), layer.weight,
                                 layer.confidence)
        outputs.append(out)
        p = p.reshape(p.shape[:-1])
        probs.append(p)
        mean_confidence = float(_host(p).mean())
        if mean_confidence > confidence_threshold and layer_idx >= 2:
            probs += [_ones_like(p) for _ in range(max_layers - layer_idx - 1)]
            break
        current = out
    stack = np.stack if isinstance(probs[0], np.ndarray) else __import__("cupy").stack
    return outputs[-1], stack(probs, axis=1)


def _host(a):
    return a if isinstance(a, np.ndarray) else __import__("cupy").asnumpy(a)


def _ones_like(a):
    return np.ones_like(a) if isinstance(a, np.ndarray) else __import__("cupy").ones_like(a)
