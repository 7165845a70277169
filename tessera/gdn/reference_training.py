"""NumPy references of the training components (tessera.gdn.training, delta_backward, checkpointing): each
forward, and each gradient (analytic where it is short, central finite differences of the forward where the
forward is a whole model). f64 math unless the stored dtypes say otherwise."""
from __future__ import annotations

import math

import numpy as np

from .model import TRANSFORMER_PARAMS, param_names
from .model_reference import _delta_network, _rms, transformer_layer


def _f(x):
    return np.asarray(x, np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# -- the delta chain of optimized_delta_backward -----------------------------------------------------------

def delta_connection_f64(src, tgt, w, d):
    delta = _f(tgt) - _f(src)
    return delta * _sigmoid(math.exp(-0.1 * d) * (delta @ _f(w)))


def delta_connection_vjp(src, tgt, w, d, ct):
    """(d/dsrc, d/dtgt, d/dW) of <ct, delta_connection(src, tgt, W, d)>, by hand. With c = δ ⊙ σ(k·δW):
    dδ = ct ⊙ σ + k·(ct ⊙ δ ⊙ σ(1−σ)) Wᵀ, dW = k·δᵀ (ct ⊙ δ ⊙ σ(1−σ)), dsrc = −dδ."""
    delta, w, ct, k = _f(tgt) - _f(src), _f(w), _f(ct), math.exp(-0.1 * d)
    s = _sigmoid(k * (delta @ w))
    z = ct * delta * s * (1 - s)
    d_delta = ct * s + k * (z @ w.T)
    d_w = k * delta.reshape(-1, delta.shape[-1]).T @ z.reshape(-1, z.shape[-1])
    return -d_delta, d_delta, d_w


def delta_chain_forward(layer_inputs, gates):
    """(activations a[0..L-1], output y) of the chain in tessera.gdn.delta_backward."""
    a, y = [_f(layer_inputs[0])], np.zeros_like(_f(layer_inputs[0]))
    for i in range(1, len(layer_inputs)):
        a.append(_f(layer_inputs[i]) + (y if i > 1 else 0.0))
        y = delta_connection_f64(a[i - 1], a[i], gates[i], 1)
    return a, y


def optimized_delta_backward(activations, output_gradients, gates):
    """(layer gradients, gate gradients) of <dy, y> for the chain whose activations are given: the reverse
    sweep with both paths of every activation (target of c[i], source of c[i+1])."""
    L = len(activations)
    grad_a = [np.zeros_like(_f(a)) for a in activations] + [_f(output_gradients)]   # grad_a[L] is dy
    grad_g = [np.zeros_like(_f(g)) for g in gates]
    for i in reversed(range(1, L)):
        d_src, d_tgt, d_w = delta_connection_vjp(activations[i - 1], activations[i], gates[i], 1, grad_a[i + 1])
        grad_a[i] += d_tgt
        grad_a[i - 1] += d_src
        grad_g[i] = d_w
    return grad_a[:L], grad_g


# -- the gradient accumulation kernel ----------------------------------------------------------------------

def efficient_gradient_accumulation(layer_gradients, delta_gradients, gate_gradients):
    out = sum(np.asarray(g, np.float32) for g in layer_gradients)
    for d, g in zip(delta_gradients, gate_gradients):
        out = out + np.asarray(d, np.float32) * np.float32(np.ravel(g)[0])
    return np.asarray(out, np.float32)


# -- the seed-000 losses -------------------------------------------------------------------------------------

def cross_entropy(logits, targets):
    z = _f(logits) - _f(logits).max(-1, keepdims=True)
    lsm = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-(_f(targets) * lsm).sum(-1).mean())


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def adaptive_delta_loss(predictions, targets, delta_contributions, gate_weights, training_progress=0.0):
    sparsity = sum(np.sqrt((_f(d) ** 2).sum()) for d in delta_contributions)
    diversity = 0.0
    for g in gate_weights:
        p = _softmax(_f(g))
        diversity -= -(p * np.log(p + 1e-8)).sum()
    return (cross_entropy(predictions, targets) + 0.1 * training_progress * sparsity
            + 0.01 * (1.0 - training_progress) * diversity)


def adaptive_loss_with_exit_penalty(predictions, targets, exit_probabilities, target_exit_layer=None):
    e = _f(exit_probabilities)
    L = e.shape[1]
    main = cross_entropy(predictions, targets)
    if target_exit_layer is not None:
        efficiency = -np.log(e[:, target_exit_layer, :] + 1e-8).mean()
        late = sum(e[:, i, :].mean() for i in range(target_exit_layer + 1, L))
        return main + 0.1 * efficiency + 0.05 * late
    w = _softmax(-np.arange(L, dtype=np.float32).astype(np.float64))
    return main - 0.1 * sum(w[i] * e[:, i, :].mean() for i in range(L))


def numerical_gradient(f, arrays, index, eps=1e-6):
    """Central differences of the scalar f(arrays) with respect to arrays[index][...] (every element)."""
    arrays = [np.array(_f(a)) for a in arrays]
    x = arrays[index]
    g = np.zeros_like(x)
    for k in range(x.size):
        old = x.flat[k]
        x.flat[k] = old + eps
        hi = f(arrays)
        x.flat[k] = old - eps
        lo = f(arrays)
        x.flat[k] = old
        g.flat[k] = (hi - lo) / (2 * eps)
    return g


# -- ProgressiveDeltaTraining --------------------------------------------------------------------------------

def create_delta_mask(num_layers, max_distance):
    mask = np.zeros((num_layers, num_layers), bool)
    for i in range(num_layers):
        mask[i, i + 1:min(i + max_distance + 1, num_layers)] = True
    return mask


def _delta_network_with_gate(src, tgt, d, p):
    gate = _sigmoid(_silu((src + tgt) / 2.0 @ p["gate1_w"] + p["gate1_b"]) @ p["gate2_w"] + p["gate2_b"])
    return _delta_network(src, tgt, d, p), gate


def _silu(x):
    return x / (1 + np.exp(-x))


def masked_causal_lm_forward(batch, params, c, delta_mask, dtype=np.float64):
    """(logits, connections) of tessera.gdn.training.masked_causal_lm_forward; connections are dicts with
    source, target, enabled, contribution and gate."""
    P = dict(zip(param_names(c), [np.asarray(x, dtype) for x in params]))
    batch = np.asarray(batch)
    hidden = batch.astype(dtype) if batch.dtype.kind == "f" else P["embed_tokens"][batch]
    outs, connections = [], []
    for layer in range(c.num_hidden_layers):
        p = f"layers.{layer}."
        hidden = transformer_layer(hidden, {k: P[p + k] for k in TRANSFORMER_PARAMS}, c.num_attention_heads, c.rms_eps)
        n = min(layer, c.max_delta_distance)
        if n:
            contribs, on = [], []
            for i in range(n):
                q = f"{p}delta.{i}."
                out, gate = _delta_network_with_gate(outs[-(i + 1)], hidden, i + 1,
                                                     {k[len(q):]: v for k, v in P.items() if k.startswith(q)})
                m = float(delta_mask[layer - i - 1, layer])
                connections.append(dict(source=layer - i - 1, target=layer, enabled=m, contribution=out, gate=gate))
                contribs.append(out)
                on.append(m)
            if not c.use_attention_deltas or n == 1:
                agg = sum(m * x for m, x in zip(on, contribs)) / max(sum(on), 1.0)
            elif sum(on) == 0:
                agg = 0.0
            else:
                s = np.stack([(hidden * x).sum(-1) / math.sqrt(hidden.shape[-1]) + (m - 1.0) * 1e9
                              for m, x in zip(on, contribs)], -1)
                w = _softmax(s)
                agg = sum(w[..., i:i + 1] * contribs[i] for i in range(n))
            hidden = hidden + agg
        outs.append(hidden)
    return _rms(hidden, P["norm"], c.rms_eps) @ P["lm_head"], connections


def progressive_training_loss(params, config, batch, targets, epoch, num_epochs_per_stage=10, dtype=np.float64):
    """ProgressiveDeltaTraining.progressive_training_step: cross-entropy + 0.01 · delta_reg + 0.001 · gate_reg."""
    stage = epoch // num_epochs_per_stage
    max_distance = min(stage + 1, config.num_hidden_layers // 2)
    mask = create_delta_mask(config.num_hidden_layers, max_distance)
    logits, connections = masked_causal_lm_forward(batch, params, config, mask, dtype)
    delta_reg = sum(k["enabled"] * np.sqrt((k["contribution"] ** 2).sum()) / math.sqrt(k["contribution"].size)
                    for k in connections)
    gate_reg = 0.0
    for k in connections:
        g = k["gate"]
        gate_reg -= k["enabled"] * (-(g * np.log(g + 1e-8) + (1 - g) * np.log(1 - g + 1e-8))).mean()
    return cross_entropy(logits, targets) + 0.01 * delta_reg + 0.001 * gate_reg


# -- the checkpointed layers ----------------------------------------------------------------------------------

def _layer_params(layer_params):
    if isinstance(layer_params, (list, tuple)):
        layer_params = dict(zip(TRANSFORMER_PARAMS, layer_params))
    return {k: _f(v) for k, v in layer_params.items()}


def memory_efficient_gdn_layer(x, previous_activations, layer_params, gate_params):
    main = transformer_layer(_f(x), _layer_params(layer_params))
    L = len(previous_activations)
    return main + sum((delta_connection_f64(p, main, g, L - i)
                       for i, (p, g) in enumerate(zip(previous_activations, gate_params))), np.zeros_like(main))


def delta_layer_with_checkpointing(x, previous_layers, layer_params, gate_params, attention_weights):
    main = transformer_layer(_f(x), _layer_params(layer_params))
    L, a = len(previous_layers), _f(attention_weights)
    return main + sum((a[i, -1] * delta_connection_f64(p, main, g, L - i)
                       for i, (p, g) in enumerate(zip(previous_layers, gate_params))), np.zeros_like(main))
