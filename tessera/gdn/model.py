"""The seed-002 GDN causal language model as @ts.function graphs: embedding, GDN layers (pre-norm
attention + SiLU MLP, DeltaNetworks over up to `max_delta_distance` previous layer outputs, mean or
attention aggregation), final RMSNorm and lm_head. Parameters are a flat list of arrays in the order
of `param_names(config)`; `init_params` makes a seeded set. NumPy reference: tessera.gdn.model_reference."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import tessera as ts


@dataclass(frozen=True)
class GDNConfig:
    vocab_size: int = 32000
    hidden_size: int = 4096
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    intermediate_size: int = 11008
    max_delta_distance: int = 4
    delta_hidden_size: int = 512
    gating_hidden_size: int = 256
    use_attention_deltas: bool = True
    delta_dropout: float = 0.1
    rms_eps: float = 1e-6


def param_shapes(c: GDNConfig):
    D, F, Dh, G = c.hidden_size, c.intermediate_size, c.delta_hidden_size, c.gating_hidden_size
    out = [("embed_tokens", (c.vocab_size, D))]
    for layer in range(c.num_hidden_layers):
        p = f"layers.{layer}."
        out += [(p + "input_layernorm", (D,)), (p + "wq", (D, D)), (p + "wk", (D, D)), (p + "wv", (D, D)),
                (p + "wo", (D, D)), (p + "post_attention_layernorm", (D,)), (p + "mlp_up", (D, F)),
                (p + "mlp_down", (F, D))]
        for i in range(min(layer, c.max_delta_distance)):
            q = f"{p}delta.{i}."
            out += [(q + "delta_proj_w", (D, Dh)), (q + "delta_proj_b", (Dh,)), (q + "gate1_w", (D, G)),
                    (q + "gate1_b", (G,)), (q + "gate2_w", (G, Dh)), (q + "gate2_b", (Dh,)),
                    (q + "output_proj_w", (Dh, D)), (q + "output_proj_b", (D,))]
    out += [("norm", (D,)), ("lm_head", (D, c.vocab_size))]
    return out


def param_names(c):
    return [n for n, _ in param_shapes(c)]


def init_params(c: GDNConfig, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    params = []
    for name, shape in param_shapes(c):
        if name.endswith("layernorm") or name == "norm":
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 1:
            a = 0.1 * rng.standard_normal(shape)
        else:
            a = rng.standard_normal(shape) / math.sqrt(shape[0])
        params.append(a.astype(dtype))
    return params


# -- building blocks (inlined into the forward graph): shared with ts.nn ---------------------------------
from ..nn.functional import attention, linear, rms_norm, silu  # noqa: E402,F401 - re-exported


TRANSFORMER_PARAMS = ("input_layernorm", "wq", "wk", "wv", "wo", "post_attention_layernorm", "mlp_up", "mlp_down")


def transformer_block(x, p, heads: int, eps: float, mask):
    """The seed-002 decoder layer (pre-norm): x + attention(rms_norm(x)), then + mlp_down(silu(mlp_up(
    rms_norm(x)))); `p` has the TRANSFORMER_PARAMS keys. Also `ts.ops.transformer_layer`."""
    x = x + attention(rms_norm(x, p["input_layernorm"], eps), p["wq"], p["wk"], p["wv"], p["wo"], mask, heads)
    return x + linear(silu(linear(rms_norm(x, p["post_attention_layernorm"], eps), p["mlp_up"])), p["mlp_down"])


def causal_mask(S):
    from ..nn.functional import causal_bias
    return causal_bias(S)


@ts.function
def delta_network(source_hidden, target_hidden, layer_distance: int, p):
    """Seed 002 DeltaNetwork: project the delta, gate it with a SiLU MLP of (src + tgt)/2 scaled by
    1 / (1 + 0.1·d), project back."""
    delta = ts.subtract(target_hidden, source_hidden)
    delta_transformed = linear(delta, p["delta_proj_w"], p["delta_proj_b"])
    gate_input = ts.add(source_hidden, target_hidden) / 2.0
    gate_weights = ts.sigmoid(linear(silu(linear(gate_input, p["gate1_w"], p["gate1_b"])), p["gate2_w"], p["gate2_b"]))
    gate_weights = gate_weights * (1.0 / (1.0 + 0.1 * layer_distance))
    return linear(ts.multiply(delta_transformed, gate_weights), p["output_proj_w"], p["output_proj_b"])


def _aggregate(hidden, contributions, attention_deltas):
    if not attention_deltas or len(contributions) == 1:
        return ts.mean(ts.stack(contributions, axis=0), axis=0)
    B, S, D = hidden.shape
    L = len(contributions)
    scores = ts.stack([ts.sum(hidden * c, axis=-1) * (1.0 / math.sqrt(D)) for c in contributions], axis=-1)
    weights = ts.reshape(ts.ops.softmax(scores), (B * S, 1, L))               # attention over the deltas
    stacked = ts.reshape(ts.stack(contributions, axis=2), (B * S, L, D))
    return ts.reshape(ts.gemm(weights, stacked), (B, S, D))


def _lm_logits(input_ids, params, c, mask):
    P = dict(zip(param_names(c), params))
    hidden = ts.ops.embedding(input_ids, P["embed_tokens"])
    layer_outputs = []
    for layer in range(c.num_hidden_layers):
        p = f"layers.{layer}."
        hidden = transformer_block(hidden, {k: P[p + k] for k in TRANSFORMER_PARAMS}, c.num_attention_heads,
                                   c.rms_eps, mask)
        n = min(len(layer_outputs), layer, c.max_delta_distance)
        if n:
            contributions = []
            for i in range(n):
                q = f"{p}delta.{i}."
                dp = {k[len(q):]: v for k, v in P.items() if k.startswith(q)}
                contributions.append(delta_network(layer_outputs[-(i + 1)], hidden, i + 1, dp))
            hidden = hidden + _aggregate(hidden, contributions, c.use_attention_deltas)
        layer_outputs.append(hidden)
    return linear(rms_norm(hidden, P["norm"], c.rms_eps), P["lm_head"])


@ts.function
def causal_lm_forward(input_ids, params: list, config: GDNConfig):
    """logits[B, S, vocab] of the GDN causal LM for integer input_ids[B, S]."""
    return _lm_logits(input_ids, params, config, causal_mask(input_ids.shape[1]))


@ts.function
def causal_lm_forward_padded(input_ids, key_bias, params: list, config: GDNConfig):
    """causal_lm_forward with a padding mask: key_bias[B, 1, 1, S] is 0 for a real token and -1e9 for a padded
    one, added to the causal mask of every layer's attention scores (padding_key_bias makes it). The model
    has no position embeddings, so a left-padded row's logits at its real tokens are those of the row alone."""
    return _lm_logits(input_ids, params, config, causal_mask(input_ids.shape[1]) + key_bias)


def padding_key_bias(attention_mask, dtype=np.float32):
    """The [B, 1, 1, S] additive bias of a [B, S] 0/1 padding mask (NumPy), or None when it is all ones (the
    plain causal graph then runs); a mask of other values is a ShapeError / TesseraError."""
    from ..errors import TesseraError
    keep = np.asarray(attention_mask)
    if keep.ndim != 2:
        raise TesseraError(f"attention_mask must be a [batch, sequence] mask of 0 and 1, got shape {keep.shape}")
    if not np.all((keep == 0) | (keep == 1)):
        raise TesseraError("attention_mask must hold only 0 and 1")
    if np.all(keep == 1):
        return None
    return np.where(keep == 1, 0.0, -1e9).astype(dtype).reshape(keep.shape[0], 1, 1, keep.shape[1])


@ts.function
def causal_lm_loss(input_ids, targets, params: list, config: GDNConfig):
    """The mean next-token cross-entropy of causal_lm_forward: targets[B, S] are the ids each position
    should predict (input_ids shifted by one, as a trainer cuts them from one token stream)."""
    logits = causal_lm_forward(input_ids, params, config)
    return ts.ops.cross_entropy_loss(logits, ts.ops.one_hot(targets, config.vocab_size, logits.dtype))

