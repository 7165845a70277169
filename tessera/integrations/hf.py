"""The GDN causal LM as a HuggingFace Transformers model (DESIGN §13; seed 002, "HuggingFace Transformers
Integration").

    from tessera.integrations.hf import GDNConfig, GDNForCausalLM
    model = GDNForCausalLM(GDNConfig(vocab_size=32, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, delta_hidden_size=8, gating_hidden_size=8))
    out = model(input_ids, labels=input_ids)       # CausalLMOutputWithPast(loss, logits); out.loss.backward()
    model.generate(input_ids, max_new_tokens=3)    # greedy or sampling, no KV cache
    model.save_pretrained(d); AutoModelForCausalLM.from_pretrained(d)

The seed builds the model from ts.Module / ts.nn layers (tessera.gdn.TesseraGDNModel is that model, the same
math); this HuggingFace model uses the functional LM of tessera.gdn.model, whose flat parameter list torch
owns: the weights are torch nn.Parameters whose state_dict keys mirror
`tessera.gdn.model.param_names` ("model." + name, and "lm_head"), and `forward` passes them as one flat list to
`tessera.integrations.torch.op(causal_lm_forward, config=...)`, a torch custom op whose forward and backward
are tessera-compiled graphs. Shapes are static per compiled graph: each new (batch, sequence length) compiles
a new tessera graph the first time it is seen (seconds), later calls reuse it.

attention_mask: the LM is causal (the mask of tessera.gdn.model.causal_mask) and has no position embeddings,
so a 0/1 padding mask is implemented exactly: a key whose mask is 0 gets the same additive -1e9 as a future
key, through a second graph (`causal_lm_forward_padded`, compiled only when a mask with zeros is passed). A
left-padded row then gives the same logits at its real tokens as the unpadded sequence alone (positions do not
enter the model); the logits at padded positions are meaningless, as in every HF model. Importing this module
registers "gdn" with AutoConfig and AutoModelForCausalLM (idempotent)."""
from __future__ import annotations


import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers import initialization as hf_init
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..errors import TesseraError
from ..gdn import model as gdn_model
from . import torch as tessera_torch

__all__ = ["GDNConfig", "GDNForCausalLM", "causal_lm_forward_padded"]


class GDNConfig(PretrainedConfig):
    """The seed's GDNConfig (its fields and defaults) plus `rms_eps` (tessera.gdn.model's RMSNorm epsilon) and
    HF's `initializer_range`. `delta_dropout` is kept for the seed's configs but not applied: the attention over
    delta contributions in tessera.gdn.model has no parameters and no dropout (a deterministic forward)."""

    model_type = "gdn"

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
    initializer_range: float = 0.02
    use_cache: bool = False             # no KV cache: generate() recomputes the whole sequence each step
    tie_word_embeddings: bool = False   # lm_head is [hidden, vocab], a separate matrix as in tessera.gdn.model

    def __post_init__(self, **kwargs):
        # (HF's validate_architecture hook runs only under huggingface_hub's @strict; checked here instead.)
        if self.num_attention_heads <= 0 or self.hidden_size % self.num_attention_heads:
            raise TesseraError(f"GDNConfig: hidden_size {self.hidden_size} is not a multiple of "
                               f"num_attention_heads {self.num_attention_heads}")
        super().__post_init__(**kwargs)

    def to_tessera(self) -> gdn_model.GDNConfig:
        """The tessera.gdn.model.GDNConfig of the same model (what causal_lm_forward is compiled for)."""
        return gdn_model.GDNConfig(**{f: getattr(self, f) for f in gdn_model.GDNConfig.__dataclass_fields__})


# -- the torch ops, one per tessera config (shared by every model of that config) ------------------------

causal_lm_forward_padded = gdn_model.causal_lm_forward_padded   # (a padding mask: a second graph)


def _op(fn, config):
    """The torch op of `fn` for this tessera config; op() returns the same one for the same arguments, so a
    second model of the config (from_pretrained, a copy) reuses the compiled forward and backward graphs."""
    return tessera_torch.op(fn, name=f"gdn_{fn.__name__}", config=config)


# -- parameters -------------------------------------------------------------------------------------------

_NORMS = ("input_layernorm", "post_attention_layernorm", "norm")
_DELTA_PARAMS = ("delta_proj_w", "delta_proj_b", "gate1_w", "gate1_b", "gate2_w", "gate2_b", "output_proj_w",
                 "output_proj_b")


def _parameter(*shape):
    return nn.Parameter(torch.empty(*shape, dtype=torch.float32))


class GDNDeltaNetwork(nn.Module):
    """The weights of one DeltaNetwork (tessera.gdn.model.delta_network): a projection of the delta, a SiLU
    gating MLP and an output projection, each a [in, out] matrix and a bias."""

    def __init__(self, c: GDNConfig):
        super().__init__()
        D, Dh, G = c.hidden_size, c.delta_hidden_size, c.gating_hidden_size
        shapes = {"delta_proj_w": (D, Dh), "delta_proj_b": (Dh,), "gate1_w": (D, G), "gate1_b": (G,),
                  "gate2_w": (G, Dh), "gate2_b": (Dh,), "output_proj_w": (Dh, D), "output_proj_b": (D,)}
        for name in _DELTA_PARAMS:
            setattr(self, name, _parameter(*shapes[name]))


class GDNDecoderLayer(nn.Module):
    """The weights of one GDN layer: the pre-norm attention + SiLU MLP block (matrices as [in, out]) and one
    delta network per previous layer it reads (min(layer, max_delta_distance) of them)."""

    def __init__(self, c: GDNConfig, layer: int):
        super().__init__()
        D, F = c.hidden_size, c.intermediate_size
        self.input_layernorm = _parameter(D)
        self.wq, self.wk, self.wv, self.wo = (_parameter(D, D) for _ in range(4))
        self.post_attention_layernorm = _parameter(D)
        self.mlp_up = _parameter(D, F)
        self.mlp_down = _parameter(F, D)
        self.delta = nn.ModuleList(GDNDeltaNetwork(c) for _ in range(min(layer, c.max_delta_distance)))


class GDNModel(nn.Module):
    """Embedding, layers and final norm (the state_dict keys below "model.")."""

    def __init__(self, c: GDNConfig):
        super().__init__()
        self.embed_tokens = _parameter(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(GDNDecoderLayer(c, layer) for layer in range(c.num_hidden_layers))
        self.norm = _parameter(c.hidden_size)


class GDNPreTrainedModel(PreTrainedModel):
    config_class = GDNConfig
    config: GDNConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = False
    _no_split_modules = ["GDNDecoderLayer"]

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False   # no KV cache: generate() must not build one (see prepare_inputs_for_generation)

    def _init_weights(self, module):
        """HF's usual scheme on this model's bare Parameters: normal(0, initializer_range) for matrices and the
        embedding, zeros for biases, ones for the RMSNorm weights."""
        std = self.config.initializer_range
        for name, param in module.named_parameters(recurse=False):
            if name in _NORMS:
                hf_init.ones_(param)
            elif param.dim() == 1:
                hf_init.zeros_(param)
            else:
                hf_init.normal_(param, mean=0.0, std=std)


# -- the causal LM ------------------------------------------------------------------------------------------

class GDNForCausalLM(GDNPreTrainedModel, GenerationMixin):
    """The seed-002 GDN causal LM on tessera (see the module docstring). Weights: `model.embed_tokens` [V, D],
    `model.layers.<l>.{input_layernorm, wq, wk, wv, wo, post_attention_layernorm, mlp_up, mlp_down}`,
    `model.layers.<l>.delta.<i>.<delta_proj_w ...>`, `model.norm`, `lm_head` [D, V]; f32 by default."""

    def __init__(self, config: GDNConfig):
        super().__init__(config)
        self.model = GDNModel(config)
        self.lm_head = _parameter(config.hidden_size, config.vocab_size)
        self.post_init()

    # -- the flat parameter list of tessera.gdn.model ---------------------------------------------------------
    def tessera_config(self) -> gdn_model.GDNConfig:
        return self.config.to_tessera()

    def tessera_params(self) -> list:
        """The parameters in the order of tessera.gdn.model.param_names (the list causal_lm_forward takes)."""
        return [self.get_parameter(self.state_key(n)) for n in gdn_model.param_names(self.tessera_config())]

    @staticmethod
    def state_key(tessera_name: str) -> str:
        """The state_dict key of a tessera.gdn.model parameter name."""
        return tessera_name if tessera_name == "lm_head" else "model." + tessera_name

    # -- forward ---------------------------------------------------------------------------------------------
    def forward(self, input_ids=None, attention_mask=None, labels=None, inputs_embeds=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        """CausalLMOutputWithPast(loss, logits[B, S, V]). `labels`: the HF causal-LM loss (logits[..., :-1, :]
        against labels[..., 1:], ignore_index -100, mean). `attention_mask` [B, S] of 0/1: padding (see the
        module docstring). Other generation keywords (use_cache, position_ids, ...) have nothing to act on:
        the model keeps no cache and has no position embeddings."""
        if inputs_embeds is not None:
            raise TesseraError("GDNForCausalLM takes input_ids, not inputs_embeds (the tessera graph starts at "
                               "the embedding lookup)")
        if output_attentions or output_hidden_states:
            raise TesseraError("GDNForCausalLM returns logits only: output_attentions / output_hidden_states are "
                               "not available from the compiled tessera graph")
        if input_ids is None or input_ids.dim() != 2:
            raise TesseraError(f"GDNForCausalLM expects input_ids of shape [batch, sequence], got "
                               f"{None if input_ids is None else tuple(input_ids.shape)}")
        c = self.config
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= c.vocab_size):
            raise TesseraError(f"GDNForCausalLM: input_ids must lie in [0, {c.vocab_size}), got "
                               f"[{int(input_ids.min())}, {int(input_ids.max())}]")
        ids = input_ids.to(torch.int32).contiguous()
        params = self.tessera_params()
        key_bias = self._key_bias(attention_mask, input_ids.shape, params[0].dtype)
        if key_bias is None:
            logits = _op(gdn_model.causal_lm_forward, self.tessera_config())(ids, params)
        else:
            logits = _op(causal_lm_forward_padded, self.tessera_config())(ids, key_bias, params)
        loss = None
        if labels is not None:
            V = logits.shape[-1]
            loss = nn.functional.cross_entropy(logits[..., :-1, :].reshape(-1, V).float(),
                                               labels[..., 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    @staticmethod
    def _key_bias(attention_mask, shape, dtype):
        """None for no mask or a mask of ones (the plain causal graph); else the additive [B, 1, 1, S] bias."""
        if attention_mask is None:
            return None
        if tuple(attention_mask.shape) != tuple(shape):
            raise TesseraError(f"GDNForCausalLM: attention_mask has shape {tuple(attention_mask.shape)}, expected "
                               f"{tuple(shape)} (a [batch, sequence] padding mask of 0/1; 4D masks are not "
                               "supported)")
        bias = gdn_model.padding_key_bias(attention_mask.detach().cpu().numpy())
        return None if bias is None else torch.from_numpy(bias).to(device=attention_mask.device, dtype=dtype)

    # -- generation without a KV cache --------------------------------------------------------------------------
    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        """The whole sequence every step (no cache: GenerationMixin's default would cut input_ids to the new
        token). Each step's length is a new tessera graph the first time it is seen."""
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    # -- the seed's introspection -------------------------------------------------------------------------------
    def get_memory_breakdown(self) -> dict:
        """The seed's get_memory_footprint() dict (HF's get_memory_footprint keeps returning bytes):
        parameter counts and the size of the weights in MiB. The seed's "tessera_compilation_memory" has no
        counterpart: compiled tessera graphs do not report their memory."""
        params = list(self.parameters())
        return {"parameters": sum(p.numel() for p in params),
                "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
                "model_size_mb": sum(p.numel() * p.element_size() for p in params) / (1024 * 1024)}

    def get_delta_statistics(self) -> dict:
        """The seed's statistics of the delta connections, counted from the model's parameters."""
        networks = [net for layer in self.model.layers for net in layer.delta]
        return {"total_delta_connections": len(networks),
                "max_delta_distance": self.config.max_delta_distance,
                "attention_based_deltas": self.config.use_attention_deltas,
                "delta_parameters": sum(p.numel() for net in networks for p in net.parameters())}


AutoConfig.register(GDNConfig.model_type, GDNConfig, exist_ok=True)
AutoModelForCausalLM.register(GDNConfig, GDNForCausalLM, exist_ok=True)
