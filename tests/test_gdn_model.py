"""The seed-002 GDN causal LM (tiny config) on the CPU backend against a NumPy reference of the
whole forward pass, with mean and attention aggregation of the delta networks."""
import numpy as np
import pytest

import tessera as ts
from tessera.gdn import GDNConfig, causal_lm_forward, init_params
from tessera.gdn import model_reference

TINY = dict(vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
            max_delta_distance=2, delta_hidden_size=16, gating_hidden_size=8)


@pytest.mark.parametrize("attention_deltas", [False, True])
def test_tiny_gdn_forward_matches_numpy(attention_deltas):
    c = GDNConfig(**TINY, use_attention_deltas=attention_deltas)
    params = init_params(c, seed=3)
    ids = np.random.default_rng(1).integers(0, c.vocab_size, (2, 7)).astype(np.int32)
    logits = causal_lm_forward(ids, params, c)
    assert logits.shape == (2, 7, c.vocab_size)
    np.testing.assert_allclose(logits, model_reference.causal_lm_forward(ids, params, c), rtol=1e-4, atol=1e-4)


def test_tiny_gdn_compiles_for_sm90a():
    from tessera.backends.nvidia.ptxas import find_ptxas
    try:
        find_ptxas()
    except ts.BackendUnavailable:
        pytest.skip("ptxas not found")
    c = GDNConfig(**TINY, use_attention_deltas=True)
    ids = np.zeros((2, 7), np.int32)
    ck = ts.compile(causal_lm_forward, ids, init_params(c), c, target="sm_90a")
    assert len(ck.kernels) == ck.metadata["kernels"] > 10
    assert all(k.asm["cubin"][:4] == b"\x7fELF" for k in ck.kernels)
