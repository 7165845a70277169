"""Seed 000's training components in tessera.gdn (issue 12, Deliver 4), each against its NumPy reference
(tessera.gdn.reference_training), forward and gradient: ProgressiveDeltaTraining over the seed-002 LM,
adaptive_delta_loss and adaptive_loss_with_exit_penalty (autodiff vs central differences, f64),
optimized_delta_backward with its compute_delta_gradient (= autodiff.grad of the documented chain),
efficient_gradient_accumulation_kernel (CPU and the PTX emulator), the checkpointed GDN layers (equal
gradients with and without checkpoints, fewer saved bytes) and gradient_checkpointing_strategy."""
from __future__ import annotations

import numpy as np
import pytest

import tessera as ts
from tessera import autodiff, gdn, optim
from tessera.gdn import reference_training as rt
from tessera.gdn.model import TRANSFORMER_PARAMS, GDNConfig, causal_lm_forward, param_names

f32, f64 = np.float32, np.float64


def rand(rng, *shape, scale=1.0, dtype=f32):
    return (scale * rng.standard_normal(shape)).astype(dtype)


# -- optimized_delta_backward ------------------------------------------------------------------------------

def chain(rng, L, B=2, S=8, D=16):
    xs = [rand(rng, B, S, D) for _ in range(L)]
    gates = [rand(rng, D, D, scale=0.3) for _ in range(L)]
    return xs, gates, rand(rng, B, S, D)


def check_delta_backward(L, tol=1e-5):
    rng = np.random.default_rng(L)
    xs, gates, dy = chain(rng, L)
    *acts, y = gdn.delta_chain_forward(xs, gates)
    ref_acts, ref_y = rt.delta_chain_forward(xs, gates)
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
    layer_grads, gate_grads = gdn.optimized_delta_backward(list(acts), dy, gates)
    assert len(layer_grads) == len(gate_grads) == L
    want_layers, want_gates = rt.optimized_delta_backward(acts, dy, gates)
    got_x, got_g = autodiff.grad(gdn.delta_chain_loss, argnums=(0, 1))(xs, gates, dy)
    for i in range(L):
        assert layer_grads[i].shape == acts[i].shape and gate_grads[i].shape == gates[i].shape
        np.testing.assert_allclose(layer_grads[i], want_layers[i], rtol=tol, atol=tol)
        np.testing.assert_allclose(gate_grads[i], want_gates[i], rtol=tol, atol=tol)
        np.testing.assert_allclose(layer_grads[i], got_x[i], rtol=tol, atol=tol)
        np.testing.assert_allclose(gate_grads[i], got_g[i], rtol=tol, atol=tol)
    return layer_grads, gate_grads


def test_optimized_delta_backward_is_the_chain_gradient():
    """The seed's eager tape loop with compute_delta_gradient (the source path) gives exactly autodiff.grad of
    <dy, y> for the documented chain, and the hand-written NumPy backward."""
    layer_grads, gate_grads = check_delta_backward(4)
    assert np.abs(layer_grads[0]).max() > 0.1                     # layer 0 is a source: its gradient is not 0
    assert not gate_grads[0].any()                                  # g[0] is unused (the zeros_like branch)
    # one layer: only the zeros_like branch runs under the tape; every gradient is zero
    (lg,), (gg,) = gdn.optimized_delta_backward([np.ones((2, 3, 4), f32)], np.ones((2, 3, 4), f32),
                                                [np.ones((4, 4), f32)])
    assert lg.shape == (2, 3, 4) and gg.shape == (4, 4) and not lg.any() and not gg.any()


def test_compute_delta_gradient_is_the_source_vjp():
    rng = np.random.default_rng(5)
    a, b, g, ct = rand(rng, 2, 8, 16), rand(rng, 2, 8, 16), rand(rng, 16, 16, scale=0.3), rand(rng, 2, 8, 16)
    got = gdn.compute_delta_gradient([a, b], ct, [g])
    d_src, d_tgt, _ = rt.delta_connection_vjp(a, b, g, 1, ct)
    np.testing.assert_allclose(got, d_src, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, -d_tgt, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
def test_optimized_delta_backward_in_the_emulator(arch, monkeypatch):
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
    check_delta_backward(3, tol=1e-4)


# -- efficient_gradient_accumulation_kernel -------------------------------------------------------------------

def test_efficient_gradient_accumulation_kernel(target):
    """The seed's kernel: S = 200 is one full and one ragged 128-row block."""
    rng = np.random.default_rng(6)
    B, S, D = 2, 200, 16
    lg, dg = [rand(rng, B, S, D) for _ in range(3)], [rand(rng, B, S, D) for _ in range(2)]
    gg = [rand(rng, 1) for _ in range(2)]
    want = rt.efficient_gradient_accumulation(lg, dg, gg)
    if target == "cpu":
        np.testing.assert_allclose(gdn.accumulate_gradients(lg, dg, gg), want, rtol=1e-5, atol=1e-5)
        return
    out = np.zeros((B, S, D), f32)
    ck = ts.compile(gdn.efficient_gradient_accumulation_kernel, lg, dg, gg, out, target=target)
    report = ck.emulate((B, 2), lg, dg, gg, out)
    assert report.ok and report.checks
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


# -- the seed-000 losses: autodiff against central differences of the references (f64) -----------------------

def probs(rng, *shape):
    e = np.exp(rng.standard_normal(shape))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("progress", [None, 0.5])
def test_adaptive_delta_loss_gradients(progress):
    rng = np.random.default_rng(7)
    p, t = rng.standard_normal((2, 3, 5)), probs(rng, 2, 3, 5)
    deltas, gates = [rng.standard_normal((2, 3, 4)) for _ in range(2)], [rng.standard_normal((4, 4)) for _ in range(2)]
    mode = ts.training(progress=progress) if progress is not None else ts.training(False)
    with mode:
        value, (dp, dd, dg) = autodiff.value_and_grad(gdn.adaptive_delta_loss, argnums=(0, 2, 3))(p, t, deltas, gates)
    prog = progress or 0.0

    def f(arrays):
        return rt.adaptive_delta_loss(arrays[0], t, arrays[1:3], arrays[3:5], prog)
    flat = [p, *deltas, *gates]
    assert value.dtype == f64 and abs(float(value) - f(flat)) < 1e-10
    for k, got in enumerate([dp, *dd, *dg]):
        np.testing.assert_allclose(got, rt.numerical_gradient(f, flat, k), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("exit_layer", [None, 1])
def test_adaptive_loss_with_exit_penalty_gradients(exit_layer):
    rng = np.random.default_rng(8)
    p, t = rng.standard_normal((2, 3, 5)), probs(rng, 2, 3, 5)
    e = rng.uniform(0.1, 0.9, (2, 4, 3))
    value, (dp, de) = autodiff.value_and_grad(gdn.adaptive_loss_with_exit_penalty, argnums=(0, 2))(p, t, e, exit_layer)

    def f(arrays):
        return rt.adaptive_loss_with_exit_penalty(arrays[0], t, arrays[1], exit_layer)
    assert abs(float(value) - f([p, e])) < 1e-7       # the seed's layer weights are an f32 softmax
    np.testing.assert_allclose(dp, rt.numerical_gradient(f, [p, e], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(de, rt.numerical_gradient(f, [p, e], 1), rtol=1e-6, atol=1e-8)


# -- the checkpointed layers -----------------------------------------------------------------------------------

B, S, D, L = 2, 4, 8, 3


def layer_params(rng):
    p = {k: rng.standard_normal((D, D)) / 4 for k in ("wq", "wk", "wv", "wo")}
    p.update(mlp_up=rng.standard_normal((D, 16)) / 4, mlp_down=rng.standard_normal((16, D)) / 6,
             input_layernorm=1 + rng.standard_normal(D) / 10, post_attention_layernorm=1 + rng.standard_normal(D) / 10)
    return [p[k] for k in TRANSFORMER_PARAMS]


def layer_inputs(seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, S, D)), [rng.standard_normal((B, S, D)) for _ in range(L)], layer_params(rng),
            [0.3 * rng.standard_normal((D, D)) for _ in range(L)], rng.uniform(0.3, 1.0, (L + 1, L + 1)))


@ts.function
def memory_efficient_loss(x, prev, params, gates):
    y = gdn.memory_efficient_gdn_layer(x, prev, params, gates)
    return ts.sum(y * y)


@ts.function
def delta_layer_loss(x, prev, params, gates, a):
    y = gdn.delta_layer_with_checkpointing(x, prev, params, gates, a)
    return ts.sum(y * y)


@ts.function
def plain_loss(x, prev, params, gates, a=None):
    """The same layers with no checkpoint: transformer layer + Σ (weighted) delta connections."""
    main = ts.ops.transformer_layer(x, dict(zip(TRANSFORMER_PARAMS, params)))
    y = main
    for i, (p, g) in enumerate(zip(prev, gates)):
        c = gdn.delta_connection(p, main, g, len(prev) - i)
        y = y + (c if a is None else c * a[i, -1])
    return ts.sum(y * y)


@pytest.mark.parametrize("name", ["memory_efficient_gdn_layer", "delta_layer_with_checkpointing"])
def test_checkpointed_layers(name):
    """Forward vs NumPy; gradients with checkpoints = without (and vs central differences of the reference,
    to the f32 precision of the gating); the gradient graph keeps fewer bytes for its backward pass."""
    x, prev, params, gates, a = layer_inputs(9)
    extra = (a,) if name == "delta_layer_with_checkpointing" else ()
    fn, loss = getattr(gdn, name), (delta_layer_loss if extra else memory_efficient_loss)
    np.testing.assert_allclose(fn(x, prev, params, gates, *extra), getattr(rt, name)(x, prev, params, gates, *extra),
                               rtol=1e-5, atol=1e-5)                        # the gate is f32 (DESIGN §8)
    argnums = (0, 1, 2, 3)
    got = autodiff.grad(loss, argnums=argnums)(x, prev, params, gates, *extra)
    want = autodiff.grad(plain_loss, argnums=argnums)(x, prev, params, gates, *extra)
    for g, w in zip(got, want):
        for gi, wi in zip(g if isinstance(g, list) else [g], w if isinstance(w, list) else [w]):
            np.testing.assert_allclose(gi, wi, rtol=1e-10, atol=1e-12)

    def f(arrays):
        y = getattr(rt, name)(arrays[0], arrays[1:1 + L], arrays[1 + L:], gates, *extra)
        return float((y * y).sum())
    flat = [x, *prev, *params]
    for k, g in [(0, got[0]), (1, got[1][0]), (1 + L + 1, got[2][1])]:        # x, prev[0], wk
        np.testing.assert_allclose(g, rt.numerical_gradient(f, flat, k), rtol=1e-5, atol=1e-5)

    ck = ts.compile(autodiff.grad(loss, argnums=argnums), x, prev, params, gates, *extra)
    kept, without = ck.saved_activation_bytes(), ck.saved_activation_bytes(checkpoints=False)
    assert 0 < kept < without, (kept, without)


def test_checkpointed_layer_takes_a_dict():
    """layer_params as the seed passes it (a dict): a Python value, so the body runs eagerly."""
    x, prev, params, gates, _ = layer_inputs(10)
    got = gdn.memory_efficient_gdn_layer(x, prev, dict(zip(TRANSFORMER_PARAMS, params)), gates)
    np.testing.assert_allclose(got, rt.memory_efficient_gdn_layer(x, prev, params, gates), rtol=1e-5, atol=1e-5)


def test_gradient_checkpointing_strategy():
    fn = gdn.gradient_checkpointing_strategy
    for args, want in [((4, 12, 100.0, 1.0), True), ((3, 12, 100.0, 1.0), False), ((2, 12, 12.0, 1.0), True),
                       ((3, 12, 12.0, 1.0), False), ((3, 12, 5.0, 1.0), True)]:
        assert bool(fn(*args)) is want, args


# -- ProgressiveDeltaTraining -------------------------------------------------------------------------------------

SMALL = GDNConfig(vocab_size=12, hidden_size=8, num_hidden_layers=4, num_attention_heads=1, intermediate_size=8,
                  max_delta_distance=2, delta_hidden_size=4, gating_hidden_size=4)


def lm_batch(rng, config, B=2, S=4):
    ids = rng.integers(0, config.vocab_size, (B, S)).astype(np.int32)
    return ids, np.eye(config.vocab_size)[rng.integers(0, config.vocab_size, (B, S))]


def test_masked_forward_against_the_model():
    """All connections on is the seed-002 model (causal_lm_forward); all off is the model without delta
    networks; any mask matches the NumPy reference."""
    config = GDNConfig(vocab_size=12, hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=8,
                       max_delta_distance=2, delta_hidden_size=4, gating_hidden_size=4)
    rng = np.random.default_rng(11)
    params = gdn.init_params(config, seed=3)
    ids, _ = lm_batch(rng, config)
    on, off = np.triu(np.ones((3, 3), bool), 1), np.zeros((3, 3), bool)
    np.testing.assert_allclose(gdn.masked_causal_lm_forward(ids, params, config, on),
                               causal_lm_forward(ids, params, config), rtol=1e-5, atol=1e-5)
    bare = GDNConfig(**{**config.__dict__, "max_delta_distance": 0})
    kept = [p for n, p in zip(param_names(config), params) if ".delta." not in n]
    np.testing.assert_allclose(gdn.masked_causal_lm_forward(ids, params, config, off),
                               causal_lm_forward(ids, kept, bare), rtol=1e-5, atol=1e-5)
    some = on.copy()
    some[0, 2] = False
    np.testing.assert_allclose(gdn.masked_causal_lm_forward(ids, params, config, some),
                               rt.masked_causal_lm_forward(ids, params, config, some)[0], rtol=1e-4, atol=1e-4)


def test_progressive_delta_training():
    """The seed's `@ts.jit @autodiff` step over the seed-002 LM (4 layers, f64): the loss and its gradient
    w.r.t. every parameter match the NumPy reference (central differences); in stage 0 only distance-1
    connections are on, so the distance-2 delta networks get zero gradients; AdamW steps lower the loss; in
    stage 1 (epoch 2) the seed's step, called directly, includes the distance-2 connections."""
    rng = np.random.default_rng(12)
    model = gdn.MaskedDeltaLM(SMALL, seed=1, dtype=f64)
    trainer = gdn.ProgressiveDeltaTraining(model, num_epochs_per_stage=2)
    ids, targets = lm_batch(rng, SMALL)
    loss, grads = trainer.value_and_grad(ids, targets, epoch=1)
    names = param_names(SMALL)
    assert len(grads) == len(names)
    assert abs(float(loss) - rt.progressive_training_loss(model.params, SMALL, ids, targets, 1, 2)) < 1e-10
    for name, g in zip(names, grads):
        assert (not g.any()) == (".delta.1." in name), name            # distance-2 networks are masked off
    for k in rng.choice(len(names), 12, replace=False):
        i = rng.integers(model.params[k].size)

        def f(ps, k=k):
            return rt.progressive_training_loss(ps, SMALL, ids, targets, 1, 2)
        ps = [p.copy() for p in model.params]
        ps[k].flat[i] += 1e-6
        hi = f(ps)
        ps[k].flat[i] -= 2e-6
        fd = (hi - f(ps)) / 2e-6
        assert abs(grads[k].flat[i] - fd) < 1e-7 + 1e-6 * abs(fd), (names[k], grads[k].flat[i], fd)

    opt = optim.AdamW(model.params, lr=0.02, weight_decay=0.0)
    losses = [trainer.train_step(opt, ids, targets, epoch) for epoch in (0, 0, 1, 1, 1)]   # one graph: stage 0
    assert losses[0] == pytest.approx(float(loss)) and losses[-1] < 0.8 * losses[0], losses
    assert trainer.current_stage == 0 and trainer.max_delta_distance == 1

    stage1 = trainer.progressive_training_step(ids, targets, 2)
    assert abs(float(stage1) - rt.progressive_training_loss(model.params, SMALL, ids, targets, 2, 2)) < 1e-10
