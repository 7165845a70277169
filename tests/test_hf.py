"""The GDN causal LM as a HuggingFace model (issue 13, Deliver 4-5; tessera.integrations.hf): the config round
trip, logits and gradients of every parameter against the same LM written in plain torch
(tests/torch_gdn_reference.py, f32, 1e-5), the HF labels loss, padding masks, generate (greedy against a
manual argmax loop, sampling reproducible from a seed), save_pretrained / from_pretrained and
AutoModelForCausalLM, the seed's statistics. Tiny configs and few distinct shapes: every new (batch, length)
is a new tessera graph to compile."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers  # noqa: E402

import tessera as ts  # noqa: E402
from tessera.gdn.model import init_params, param_names  # noqa: E402
from tessera.integrations.hf import GDNConfig, GDNForCausalLM  # noqa: E402

import torch_gdn_reference as reference  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)   # f32: tessera's kernels and torch's sum in different orders

# Three layers and max_delta_distance 2: layer 2 aggregates two delta contributions (attention or mean).
TINY = dict(vocab_size=32, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
            max_delta_distance=2, delta_hidden_size=8, gating_hidden_size=8)


def make_model(use_attention_deltas=True, seed=0):
    """A tiny model whose weights are tessera.gdn.model.init_params (larger than HF's std 0.02 init, so the
    logits and gradients are far from zero and a comparison means something)."""
    model = GDNForCausalLM(GDNConfig(**TINY, use_attention_deltas=use_attention_deltas))
    with torch.no_grad():
        for p, value in zip(model.tessera_params(), init_params(model.tessera_config(), seed=seed)):
            p.copy_(torch.from_numpy(value))
    return model


@pytest.fixture(scope="module")
def model():
    return make_model()


def ids(batch, length, seed=0):
    return torch.randint(0, TINY["vocab_size"], (batch, length), generator=torch.Generator().manual_seed(seed))


def reference_params(model):
    return [p.detach().clone().requires_grad_() for p in model.tessera_params()]


# -- config -------------------------------------------------------------------------------------------------

def test_config_round_trip_and_model_type(tmp_path):
    c = GDNConfig(**TINY, use_attention_deltas=False, delta_dropout=0.0, rms_eps=1e-5)
    assert c.model_type == "gdn"
    c.save_pretrained(tmp_path)
    back = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(back) is GDNConfig
    assert {k: v for k, v in back.to_dict().items() if k != "_name_or_path"} == \
        {k: v for k, v in c.to_dict().items() if k != "_name_or_path"}
    t = back.to_tessera()
    assert (t.hidden_size, t.num_hidden_layers, t.use_attention_deltas, t.rms_eps) == (16, 3, False, 1e-5)
    seed_defaults = GDNConfig()
    assert (seed_defaults.vocab_size, seed_defaults.hidden_size, seed_defaults.max_delta_distance,
            seed_defaults.delta_dropout, seed_defaults.use_attention_deltas) == (32000, 4096, 4, 0.1, True)
    with pytest.raises(ts.TesseraError, match="multiple of num_attention_heads"):
        GDNConfig(**{**TINY, "num_attention_heads": 3})


def test_state_dict_keys_mirror_tessera_param_names(model):
    names = param_names(model.tessera_config())
    keys = set(model.state_dict())
    assert keys == {("lm_head" if n == "lm_head" else "model." + n) for n in names}
    assert "model.layers.2.delta.1.gate2_w" in keys and "model.layers.1.delta.1.gate2_w" not in keys
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_init_weights_follow_hf_conventions():
    m = GDNForCausalLM(GDNConfig(**TINY))
    sd = m.state_dict()
    assert torch.all(sd["model.norm"] == 1) and torch.all(sd["model.layers.1.post_attention_layernorm"] == 1)
    assert torch.all(sd["model.layers.1.delta.0.gate1_b"] == 0)
    assert abs(float(sd["model.embed_tokens"].std()) - 0.02) < 0.004
    assert abs(float(sd["model.layers.0.mlp_up"].std()) - 0.02) < 0.006


# -- forward and gradients against plain torch ---------------------------------------------------------------

@pytest.mark.parametrize("use_attention_deltas", [True, False])
def test_logits_and_gradients_equal_the_torch_reference(use_attention_deltas, model):
    m = model if use_attention_deltas else make_model(False, seed=1)
    x = ids(2, 6)
    out = m(x, labels=x)
    params = reference_params(m)
    expected = reference.causal_lm_forward(x, params, m.tessera_config())
    torch.testing.assert_close(out.logits, expected, **TOL)
    assert out.logits.grad_fn is not None

    m.zero_grad()
    out.loss.backward()
    reference.shifted_cross_entropy(expected, x).backward()
    for name, p, q in zip(param_names(m.tessera_config()), m.tessera_params(), params):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, **TOL, msg=lambda s, n=name: f"{n}: {s}")


def test_labels_loss_is_the_shifted_cross_entropy_with_ignore_index(model):
    x = ids(2, 6)
    labels = x.clone()
    labels[0, 3] = -100
    with torch.no_grad():
        out = model(x, labels=labels)
    logits = out.logits
    terms = [-torch.log_softmax(logits[b, s - 1], -1)[labels[b, s]] for b in range(2) for s in range(1, 6)
             if labels[b, s] != -100]
    assert len(terms) == 9
    torch.testing.assert_close(out.loss, torch.stack(terms).mean(), **TOL)


# -- attention_mask ----------------------------------------------------------------------------------------

def test_left_padding_mask_gives_the_unpadded_logits(model):
    x = ids(2, 6)
    padded = x.clone()
    padded[0, :2] = 0
    mask = torch.ones_like(x)
    mask[0, :2] = 0
    with torch.no_grad():
        logits = model(padded, attention_mask=mask).logits
        alone = reference.causal_lm_forward(x[:1, 2:], model.tessera_params(), model.tessera_config())
        full = reference.causal_lm_forward(x[1:], model.tessera_params(), model.tessera_config())
        ones = model(x, attention_mask=torch.ones_like(x)).logits     # all ones: the plain causal graph
    torch.testing.assert_close(logits[:1, 2:], alone, **TOL)
    torch.testing.assert_close(logits[1:], full, **TOL)
    torch.testing.assert_close(ones[1:], full, **TOL)


def test_bad_masks_and_inputs_are_rejected(model):
    x = ids(2, 6)
    with pytest.raises(ts.TesseraError, match="attention_mask has shape"):
        model(x, attention_mask=torch.ones(2, 1, 6, 6))
    with pytest.raises(ts.TesseraError, match="only 0 and 1"):
        model(x, attention_mask=torch.full((2, 6), 2))
    with pytest.raises(ts.TesseraError, match=r"input_ids must lie in \[0, 32\)"):
        model(torch.full((2, 6), 32))
    with pytest.raises(ts.TesseraError, match="not inputs_embeds"):
        model(inputs_embeds=torch.zeros(2, 6, 16))
    with pytest.raises(ts.TesseraError, match="output_hidden_states"):
        model(x, output_hidden_states=True)


# -- generate ------------------------------------------------------------------------------------------------

def greedy_reference(model, prompt, new_tokens):
    seq = prompt
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = reference.causal_lm_forward(seq, model.tessera_params(), model.tessera_config())
            seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq


def test_generate_greedy_equals_a_manual_argmax_loop(model):
    prompt = ids(2, 4, seed=3)
    got = model.generate(prompt, max_new_tokens=2, do_sample=False)
    assert torch.equal(got, greedy_reference(model, prompt, 2))
    # the same loop through the model itself (shapes [2, 4] and [2, 5] are compiled by now)
    seq = prompt
    with torch.no_grad():
        for _ in range(2):
            seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(got, seq)


def test_generate_left_padded_batch_equals_each_prompt_alone(model):
    prompt = ids(2, 4, seed=4)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    got = model.generate(prompt, attention_mask=mask, max_new_tokens=2, do_sample=False, pad_token_id=0)
    assert torch.equal(got[:1, 1:], greedy_reference(model, prompt[:1, 1:], 2))
    assert torch.equal(got[1:], greedy_reference(model, prompt[1:], 2))


def test_generate_sampling_is_reproducible_with_a_seed(model):
    prompt = ids(2, 4, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(1234)
        runs.append(model.generate(prompt, max_new_tokens=2, do_sample=True, top_k=0, temperature=1.0))
    assert torch.equal(runs[0], runs[1])
    assert runs[0].shape == (2, 6) and torch.equal(runs[0][:, :4], prompt)
    assert int(runs[0].min()) >= 0 and int(runs[0].max()) < TINY["vocab_size"]


# -- save / load / Auto ----------------------------------------------------------------------------------------

def test_save_pretrained_from_pretrained_and_auto_model_give_identical_logits(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    x = ids(2, 6)
    with torch.no_grad():
        expected = model(x).logits
        loaded = GDNForCausalLM.from_pretrained(tmp_path)
        auto = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
        assert type(auto) is GDNForCausalLM
        for m in (loaded, auto):
            assert m.get_parameter("model.layers.2.delta.1.gate2_w").dtype == torch.float32
            assert torch.equal(m(x).logits, expected)


def test_import_registers_gdn_idempotently():
    code = ("import importlib, tessera.integrations.hf as hf; importlib.reload(hf); "
            "from transformers import AutoConfig, AutoModelForCausalLM; "
            "c = AutoConfig.for_model('gdn', vocab_size=8, hidden_size=4, num_hidden_layers=1, "
            "num_attention_heads=1, intermediate_size=4); "
            "print(type(c).__name__, type(AutoModelForCausalLM.from_config(c)).__name__)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["GDNConfig", "GDNForCausalLM"]


# -- the seed's introspection ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layers, distance", [(3, 2), (6, 4), (1, 4)])
def test_delta_statistics_follow_the_config(layers, distance):
    c = GDNConfig(**{**TINY, "num_hidden_layers": layers, "max_delta_distance": distance})
    stats = GDNForCausalLM(c).get_delta_statistics()
    connections = sum(min(layer, distance) for layer in range(layers))
    D, Dh, G = c.hidden_size, c.delta_hidden_size, c.gating_hidden_size
    per_network = D * Dh + Dh + D * G + G + G * Dh + Dh + Dh * D + D
    assert stats == {"total_delta_connections": connections, "max_delta_distance": distance,
                     "attention_based_deltas": True, "delta_parameters": connections * per_network}


def test_memory_footprint_keeps_hf_semantics_and_breakdown_has_the_seeds_fields(model):
    n = sum(int(np.prod(s)) for s in (p.shape for p in model.parameters()))
    assert model.get_memory_footprint() == 4 * n
    assert model.get_memory_footprint(return_buffers=False) == 4 * n
    breakdown = model.get_memory_breakdown()
    assert breakdown == {"parameters": n, "trainable_parameters": n, "model_size_mb": 4 * n / 2 ** 20}
