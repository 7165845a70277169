"""The seed-002 GDN causal LM written directly in torch (plain torch ops, autograd): the reference that
tests/test_hf.py and benchmarks/torch_step.py compare the tessera-backed GDNForCausalLM with.

It takes the same flat parameter list as tessera.gdn.model.causal_lm_forward (in the order of
`param_names(config)`, lm_head as [hidden, vocab]) and the same tessera.gdn.model.GDNConfig, and follows
tessera/gdn/model_reference.py (the NumPy reference) line by line, so a difference between the two models
is a difference in tessera, not in the math."""
from __future__ import annotations

import math

import torch

from tessera.gdn.model import param_names


def _rms_norm(x, weight, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def _silu(x):
    return x * torch.sigmoid(x)


def _attention(x, wq, wk, wv, wo, heads):
    B, S, D = x.shape
    dh = D // heads

    def split(t):
        return t.reshape(B, S, heads, dh).permute(0, 2, 1, 3)        # [B, H, S, dh]
    q, k, v = split(x @ wq), split(x @ wk), split(x @ wv)
    # The same additive -1e9 causal mask as tessera.gdn.model.causal_mask (not -inf): a masked score
    # contributes exp(-1e9 - max) = 0 in f32 either way, and the two stay the same math.
    mask = torch.triu(torch.full((S, S), -1e9, dtype=x.dtype, device=x.device), 1)
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + mask, dim=-1)
    return (probs @ v).permute(0, 2, 1, 3).reshape(B, S, D) @ wo


def _delta_network(src, tgt, distance, p):
    delta = (tgt - src) @ p["delta_proj_w"] + p["delta_proj_b"]
    gate = torch.sigmoid(_silu((src + tgt) / 2.0 @ p["gate1_w"] + p["gate1_b"]) @ p["gate2_w"] + p["gate2_b"])
    return (delta * (gate * (1.0 / (1.0 + 0.1 * distance)))) @ p["output_proj_w"] + p["output_proj_b"]


def _with_prefix(P, prefix):
    return {k[len(prefix):]: v for k, v in P.items() if k.startswith(prefix)}


def causal_lm_forward(input_ids, params, config):
    """logits[B, S, vocab] for integer input_ids[B, S]; `params` a list of torch tensors."""
    c = config
    P = dict(zip(param_names(c), params))
    hidden = P["embed_tokens"][input_ids.long()]
    layer_outputs = []
    for layer in range(c.num_hidden_layers):
        p = _with_prefix(P, f"layers.{layer}.")
        hidden = hidden + _attention(_rms_norm(hidden, p["input_layernorm"], c.rms_eps),
                                     p["wq"], p["wk"], p["wv"], p["wo"], c.num_attention_heads)
        hidden = hidden + _silu(_rms_norm(hidden, p["post_attention_layernorm"], c.rms_eps) @ p["mlp_up"]) @ p["mlp_down"]
        n = min(len(layer_outputs), layer, c.max_delta_distance)
        if n:
            contributions = [_delta_network(layer_outputs[-(i + 1)], hidden, i + 1, _with_prefix(p, f"delta.{i}."))
                             for i in range(n)]
            if not c.use_attention_deltas or n == 1:
                aggregate = torch.stack(contributions, 0).mean(0)
            else:   # attention over the delta contributions (tessera.gdn.model._aggregate)
                scores = torch.stack([(hidden * d).sum(-1) / math.sqrt(hidden.shape[-1]) for d in contributions], -1)
                weights = torch.softmax(scores, dim=-1)
                aggregate = sum(weights[..., i:i + 1] * contributions[i] for i in range(n))
            hidden = hidden + aggregate
        layer_outputs.append(hidden)
    return _rms_norm(hidden, P["norm"], c.rms_eps) @ P["lm_head"]


def shifted_cross_entropy(logits, labels):
    """The HF causal-LM loss: logits[..., :-1, :] predict labels[..., 1:], ignore_index -100, mean."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[..., :-1, :].reshape(-1, V), labels[..., 1:].reshape(-1),
                                             ignore_index=-100)
