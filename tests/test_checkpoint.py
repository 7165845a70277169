"""Activation checkpointing (issue 12, Deliver 2): `@ts.checkpoint` and `ts.checkpoint_scope()` give the same
gradients as the plain graph, keep fewer bytes from the forward pass for the backward pass (the compiled
object reports both), and the executor frees intermediates after their last reader."""
import contextlib

import numpy as np

import tessera as ts
from tessera import autodiff
from tessera.gdn import GDNConfig, init_params, param_names
from tessera.gdn.model import TRANSFORMER_PARAMS, causal_mask, delta_network, transformer_block

RNG = np.random.default_rng(12)


@ts.checkpoint
def block(x, w):
    return ts.tanh(ts.tanh(x @ w) @ w)


@ts.function
def plain_block(x, w):
    return ts.tanh(ts.tanh(x @ w) @ w)


@ts.function
def loss_checkpointed(x, w1, w2):
    return ts.sum(block(block(x, w1), w2))


@ts.function
def loss_plain(x, w1, w2):
    return ts.sum(plain_block(plain_block(x, w1), w2))


def test_checkpointed_and_plain_gradients_are_equal_and_less_is_kept():
    x, w1, w2 = RNG.standard_normal((64, 32)), RNG.standard_normal((32, 32)) / 6, RNG.standard_normal((32, 32)) / 6
    got = autodiff.grad(loss_checkpointed, argnums=(0, 1, 2))(x, w1, w2)
    want = autodiff.grad(loss_plain, argnums=(0, 1, 2))(x, w1, w2)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    ck = ts.compile(autodiff.grad(loss_checkpointed, argnums=(1, 2)), x, w1, w2)
    plain = ts.compile(autodiff.grad(loss_plain, argnums=(1, 2)), x, w1, w2)
    # plain: both blocks' three tanh/gemm intermediates [64, 32] f64 stay; checkpointed: only block 2's input
    assert plain.saved_activation_bytes() == plain.saved_activation_bytes(checkpoints=False) == 4 * 64 * 32 * 8
    assert ck.saved_activation_bytes() == 64 * 32 * 8
    assert ck.saved_activation_bytes(checkpoints=False) == plain.saved_activation_bytes()
    assert '"tessera.recompute"' not in ck.asm["ts"] and "tessera.recompute =" in ck.asm["ts"]
    # intermediates are freed after their last reader: the recomputing graph peaks lower
    assert ck.plan.liveness()[1] < plain.plan.liveness()[1]


TINY = GDNConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                 max_delta_distance=1, delta_hidden_size=8, gating_hidden_size=4)


@ts.function
def gdn_layer_loss(hidden, previous, params: list, checkpointed: bool):
    """Seed 001's delta_layer_with_checkpointing on the seed-002 layer: a transformer layer and a delta
    network from the previous layer, each in a checkpoint scope when asked."""
    P = dict(zip(param_names(TINY), params))
    scope = ts.checkpoint_scope if checkpointed else contextlib.nullcontext
    with scope():
        out = transformer_block(hidden, {k: P["layers.1." + k] for k in TRANSFORMER_PARAMS},
                                TINY.num_attention_heads, TINY.rms_eps, causal_mask(hidden.shape[1]))
    with scope():
        q = "layers.1.delta.0."
        delta = delta_network(previous, out, 1, {k[len(q):]: v for k, v in P.items() if k.startswith(q)})
    y = out + delta
    return ts.sum(y * y)


def test_gdn_layer_with_checkpoints():
    params = init_params(TINY, seed=2, dtype=np.float64)
    hidden, previous = RNG.standard_normal((2, 8, 16)), RNG.standard_normal((2, 8, 16))
    g_ck = autodiff.grad(gdn_layer_loss, argnums=2)(hidden, previous, params, True)
    g_plain = autodiff.grad(gdn_layer_loss, argnums=2)(hidden, previous, params, False)
    for a, b in zip(g_ck, g_plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    ck = ts.compile(autodiff.grad(gdn_layer_loss, argnums=2), hidden, previous, params, True)
    plain = ts.compile(autodiff.grad(gdn_layer_loss, argnums=2), hidden, previous, params, False)
    kept, would = ck.saved_activation_bytes(), ck.saved_activation_bytes(checkpoints=False)
    assert would == plain.saved_activation_bytes() and kept * 4 < would, (kept, would)
