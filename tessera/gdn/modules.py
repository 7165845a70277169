"""Seed 002's GDN causal LM written with `ts.Module` / `ts.nn` (`TesseraGDNModel`, and the `@ts.export`ed
`ProductionGDNModel`): the same math as tessera.gdn.model's graph functions, checked equal by the tests.

    model = TesseraGDNModel(GDNConfig(vocab_size=32, hidden_size=16, ...))
    logits = model(input_ids)                          # [B, S, vocab], compiled on the first call
    logits = model(input_ids, attention_mask=mask)     # mask [B, S] of 0/1: padded keys masked everywhere
    model.load_gdn_params(tessera.gdn.init_params(config))   # tessera.gdn.model's flat parameter list

Where the seed and tessera.gdn.model differ, the model follows tessera.gdn.model (docs/gdn_model.md): the
delta aggregation is parameter-free dot-product attention over the contributions (the seed's
`delta_attention` MultiHeadAttention has no defined shape for that use), and there are no position
embeddings, so a left-padded row's logits at its real tokens are those of the row alone."""
from __future__ import annotations

import tessera as ts
from .. import nn
from ..nn import functional as F
from ..errors import TesseraError
from .model import GDNConfig, _aggregate, param_names


class DeltaNetwork(nn.Module):
    """Project the delta (target − source), gate it with a SiLU MLP of (source + target)/2 scaled by
    1 / (1 + 0.1·distance), project back."""

    def __init__(self, config: GDNConfig, dtype=None, seed=0):
        super().__init__()
        D, Dh, G = config.hidden_size, config.delta_hidden_size, config.gating_hidden_size
        self.delta_proj = nn.Linear(D, Dh, dtype=dtype, seed=seed)
        self.gate_network = nn.Sequential(nn.Linear(D, G, dtype=dtype, seed=seed + 1), nn.SiLU(),
                                          nn.Linear(G, Dh, dtype=dtype, seed=seed + 2), nn.Sigmoid())
        self.output_proj = nn.Linear(Dh, D, dtype=dtype, seed=seed + 3)

    def forward(self, source_hidden, target_hidden, layer_distance: int):
        delta = ts.subtract(target_hidden, source_hidden)
        delta_transformed = self.delta_proj(delta)
        gate_weights = self.gate_network(ts.add(source_hidden, target_hidden) / 2.0)
        gate_weights = gate_weights * (1.0 / (1.0 + 0.1 * layer_distance))
        return self.output_proj(ts.multiply(delta_transformed, gate_weights))


class GDNLayer(nn.Module):
    """Pre-norm attention + SiLU MLP, then the delta connections from up to max_delta_distance previous
    layer outputs, aggregated (mean or attention over the contributions) and added."""

    def __init__(self, layer_idx: int, config: GDNConfig, dtype=None, seed=0):
        super().__init__()
        D = config.hidden_size
        self.layer_idx, self.config = layer_idx, config
        self.input_layernorm = nn.RMSNorm(D, eps=config.rms_eps, dtype=dtype)
        self.self_attn = nn.MultiHeadAttention(D, config.num_attention_heads, dtype=dtype, seed=seed)
        self.post_attention_layernorm = nn.RMSNorm(D, eps=config.rms_eps, dtype=dtype)
        self.mlp = nn.MLP(D, config.intermediate_size, activation="silu", dtype=dtype, seed=seed + 1)
        self.delta_networks = nn.ModuleList([DeltaNetwork(config, dtype=dtype, seed=seed + 10 * (i + 1))
                                             for i in range(min(layer_idx, config.max_delta_distance))])

    def forward(self, hidden_states, attn_bias, previous_layer_outputs: list):
        h = self.input_layernorm(hidden_states)
        hidden_states = ts.add(hidden_states, self.self_attn(h, h, h, attn_bias=attn_bias))
        hidden_states = ts.add(hidden_states, self.mlp(self.post_attention_layernorm(hidden_states)))
        n = min(len(previous_layer_outputs), len(self.delta_networks))
        if n:
            contributions = [self.delta_networks[i](previous_layer_outputs[-(i + 1)], hidden_states, i + 1)
                             for i in range(n)]
            hidden_states = ts.add(hidden_states, _aggregate(hidden_states, contributions,
                                                             self.config.use_attention_deltas))
        return hidden_states


class TesseraGDNModel(nn.Module):
    """The seed-002 GDN causal LM: embedding, GDN layers, final RMSNorm, lm_head (no bias)."""

    def __init__(self, config: GDNConfig, dtype=None, seed=0):
        super().__init__()
        if not isinstance(config, GDNConfig):
            raise TesseraError(f"{type(self).__name__} takes a tessera.gdn.GDNConfig, got {type(config).__name__}")
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, dtype=dtype, seed=seed)
        self.layers = nn.ModuleList([GDNLayer(i, config, dtype=dtype, seed=seed + 100 * (i + 1))
                                     for i in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_eps, dtype=dtype)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False, dtype=dtype, seed=seed + 1)

    def forward(self, input_ids, attention_mask=None):
        """logits [B, S, vocab] for integer input_ids [B, S]; attention_mask [B, S] of 1 / 0 (padding)."""
        bias = F.causal_bias(input_ids.shape[1])
        if attention_mask is not None:
            bias = bias + F.padding_bias(attention_mask)   # f32 whatever the weights: -1e9 is no fp8 value
        hidden = self.embed_tokens(input_ids)
        layer_outputs = []
        for layer in self.layers:
            hidden = layer(hidden, bias, layer_outputs)
            layer_outputs.append(hidden)
        return self.lm_head(self.norm(hidden))

    # -- tessera.gdn.model's flat parameter list ---------------------------------------------------------
    def load_gdn_params(self, params):
        """Copy tessera.gdn.model's parameters (a list in param_names(config) order, or a dict by those
        names) into this module."""
        names = param_names(self.config)
        if not isinstance(params, dict):
            params = dict(zip(names, params))
        return self.load_state_dict({gdn_to_module_name(n): params[n] for n in names})

    def gdn_params(self):
        """This module's arrays as tessera.gdn.model's flat list (param_names order; the module's own arrays)."""
        state = self.state_dict()
        return [state[gdn_to_module_name(n)] for n in param_names(self.config)]


_DELTA = {"delta_proj_w": "delta_proj.weight", "delta_proj_b": "delta_proj.bias",
          "gate1_w": "gate_network.0.weight", "gate1_b": "gate_network.0.bias",
          "gate2_w": "gate_network.2.weight", "gate2_b": "gate_network.2.bias",
          "output_proj_w": "output_proj.weight", "output_proj_b": "output_proj.bias"}
_LAYER = {"input_layernorm": "input_layernorm.weight", "post_attention_layernorm": "post_attention_layernorm.weight",
          "wq": "self_attn.wq", "wk": "self_attn.wk", "wv": "self_attn.wv", "wo": "self_attn.wo",
          "mlp_up": "mlp.up.weight", "mlp_down": "mlp.down.weight"}


def gdn_to_module_name(name: str) -> str:
    """tessera.gdn.model's parameter name → TesseraGDNModel's state_dict name."""
    if name in ("embed_tokens", "norm", "lm_head"):
        return name + ".weight"
    parts = name.split(".")          # layers.L.KEY or layers.L.delta.I.KEY
    if parts[2] == "delta":
        return f"layers.{parts[1]}.delta_networks.{parts[3]}.{_DELTA[parts[4]]}"
    return f"layers.{parts[1]}.{_LAYER[parts[2]]}"


@ts.export
class ProductionGDNModel(TesseraGDNModel):
    """Seed 002's `@ts.export class ProductionGDNModel(ts.Module)`: the deployable GDN LM (forward(input_ids,
    attention_mask=None) → logits)."""

