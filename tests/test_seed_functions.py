"""Every @ts.function of seeds 000 and 001, cut from the seed text (tests/seed_text.py), run against NumPy
(tessera.gdn.reference) on the CPU backend, and with every kernel compiled for sm_80 and sm_90a and run in
the PTX emulator (TESSERA_BACKEND=emu) — issue 11, Deliver 4. Bodies that branch on tensor values or return
dicts run eagerly, op by op (tessera.frontend.eager). Stated fixes where a seed is wrong in itself are in
docs/gdn.md ("The seed programs"). Issue 12 (training): `optimized_delta_backward` (with the compute_delta_gradient
of tessera.gdn and three stated fixes) runs eagerly with its gradient tape; `memory_efficient_gdn_layer` and
seed 001's `delta_layer_with_checkpointing` run as written and, inlined into a loss, give tessera.gdn's gradients
with fewer saved bytes; seed 000's `ProgressiveDeltaTraining` class runs its `@ts.jit @autodiff` step over
tessera.gdn's masked seed-002 LM."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera.gdn import reference as ref
import seed_text

bf16 = ml_dtypes.bfloat16
f32 = np.float32
B, S, D, L = 2, 8, 16, 3


def R(rng, *shape, dtype=bf16, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def F(x):
    return np.asarray(x).astype(f32)


def probs(rng, *shape):
    x = rng.standard_normal(shape)
    return (np.exp(x) / np.exp(x).sum(-1, keepdims=True)).astype(bf16)


def close(got, want, tol=2e-2):
    np.testing.assert_allclose(F(got), F(want), rtol=tol, atol=tol)


def seed_fn(seed, name, **kw):
    env = {"delta_connection": seed_text.load("001", "delta_connection")}   # seed 000 uses seed 001's
    return seed_text.load(seed, name, env=env, **kw)


def cross_entropy(p, t):
    z = F(p) - F(p).max(-1, keepdims=True)
    lsm = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -(F(t) * lsm).sum(-1).mean()


def test_delta_connection(target):
    rng = np.random.default_rng(1)
    src, tgt, w = R(rng, B, S, D), R(rng, B, S, D), R(rng, D, D)
    close(seed_fn("001", "delta_connection")(src, tgt, w, 2), ref.delta_connection(src, tgt, w, 2))


def test_adaptive_gating_mechanism(target):
    rng = np.random.default_rng(2)
    delta, ctx, w = R(rng, B, S, D), R(rng, B, S, D), R(rng, D, D)
    close(seed_fn("001", "adaptive_gating_mechanism")(delta, ctx, w, 2, 0.5),
          ref.adaptive_gating_mechanism(delta, ctx, w, 2, 0.5))


def test_distance_scaling_function(target):
    got = seed_fn("001", "distance_scaling_function")(3)
    assert got.shape == () and abs(float(got) - np.exp(-0.3)) < 1e-6


def test_multi_scale_delta_aggregation(target):
    rng = np.random.default_rng(3)
    srcs, tgt = [R(rng, B, S, D) for _ in range(L)], R(rng, B, S, D)
    ws, a = [R(rng, D, D) for _ in range(L)], R(rng, L, L)
    close(seed_fn("001", "multi_scale_delta_aggregation")(srcs, tgt, ws, a),
          ref.multi_scale_delta_aggregation(srcs, tgt, ws, a))


def test_safe_delta_computation(target):
    """ts.ops.learnable_scale_parameter(): a parameter of the function, created at 1.0; setting it retraces."""
    rng = np.random.default_rng(4)
    src, tgt = R(rng, B, S, D), R(rng, B, S, D)
    fn = seed_fn("001", "safe_delta_computation")
    close(fn(src, tgt), ref.safe_delta_computation(src, tgt, np.ones(D, f32)))
    assert list(fn.parameters) == ["scale0"] and float(fn.parameters["scale0"]) == 1.0
    fn.parameters["scale0"] = 0.5
    close(fn(src, tgt), ref.safe_delta_computation(src, tgt, np.full(D, 0.5, f32)))


def test_stable_gating_computation(target):
    rng = np.random.default_rng(5)
    x = R(rng, B, S, D)
    fn = seed_fn("001", "stable_gating_computation")
    close(fn(x, 0.7), ref.stable_gating_computation(x, 0.7), 1e-5)   # bf16(x / bf16(0.7)), NumPy's rules
    with ts.training():
        close(fn(x, 0.7, 0.25), ref.stable_gating_computation(x, 0.7, 0.25, True, 0), 1e-5)


def test_mixed_precision_gdn_layer(target):
    rng = np.random.default_rng(6)
    x = R(rng, B, S, D).astype(ml_dtypes.float8_e4m3fn)
    prev, ws = [R(rng, B, S, D) for _ in range(2)], [R(rng, D, D) for _ in range(2)]
    got = seed_fn("001", "mixed_precision_gdn_layer")(x, prev, ws)
    np.testing.assert_array_equal(F(got), F(ref.mixed_precision_gdn_layer(x, prev, ws)))


def test_optimized_delta_memory_access(target):
    rng = np.random.default_rng(7)
    acts, gates = [R(rng, B, 256, D) for _ in range(3)], [R(rng, D, D, scale=0.2) for _ in range(3)]
    got = seed_fn("001", "optimized_delta_memory_access")(acts, gates)
    tiles = [sum(ref.delta_connection(acts[j - 1][:, i:i + 128], acts[j][:, i:i + 128], gates[j], 1) for j in (1, 2))
             for i in (0, 128)]
    close(got, np.concatenate(tiles, axis=1))


def test_adaptive_delta_loss(target):
    """ts.ops.get_training_progress(): what `with ts.training(progress=p)` sets (0.0 outside)."""
    rng = np.random.default_rng(8)
    p, t = probs(rng, B, S, 12), probs(rng, B, S, 12)
    deltas, gates = [R(rng, B, S, D) for _ in range(2)], [R(rng, D, D) for _ in range(2)]
    fn = seed_fn("000", "adaptive_delta_loss")

    def want(progress):
        sparsity = sum(np.linalg.norm(F(d)) for d in deltas)
        diversity = 0.0
        for g in gates:
            e = np.exp(F(g) - F(g).max(-1, keepdims=True))
            pr = e / e.sum(-1, keepdims=True)
            diversity += (pr * np.log(pr + 1e-8)).sum()
        return cross_entropy(p, t) + 0.1 * progress * sparsity + 0.01 * (1 - progress) * diversity
    got = fn(p, t, deltas, gates)
    assert got.shape == ()
    close(got, want(0.0), 1e-3)
    with ts.training(progress=0.5):
        close(fn(p, t, deltas, gates), want(0.5), 1e-3)


@pytest.mark.parametrize("exit_layer", [None, 1])
def test_adaptive_loss_with_exit_penalty(target, exit_layer):
    rng = np.random.default_rng(9)
    p, t = probs(rng, B, S, 12), probs(rng, B, S, 12)
    e = (rng.uniform(0.1, 0.9, (B, L, S))).astype(bf16)
    got = seed_fn("000", "adaptive_loss_with_exit_penalty")(p, t, e, exit_layer)
    ef = F(e)
    if exit_layer is None:
        w = np.exp(-np.arange(L)) / np.exp(-np.arange(L)).sum()
        want = cross_entropy(p, t) - 0.1 * sum(w[i] * ef[:, i].mean() for i in range(L))
    else:
        want = cross_entropy(p, t) + 0.1 * -np.log(ef[:, 1] + 1e-8).mean() + 0.05 * ef[:, 2].mean()
    assert got.shape == ()
    close(got, want, 1e-3)


def test_gradient_checkpointing_strategy(target):
    fn = seed_fn("000", "gradient_checkpointing_strategy")
    for args, want in [((4, 12, 100.0, 1.0), True), ((3, 12, 100.0, 1.0), False), ((3, 12, 12.0, 1.0), False),
                       ((3, 12, 5.0, 1.0), True)]:
        got = fn(*args)
        assert got.dtype == np.bool_ and bool(got) is want, (args, got)


def test_dynamic_delta_pruning(target):
    """Python branches on a tensor's value: the body runs eagerly (each op compiled)."""
    rng = np.random.default_rng(10)
    deltas = [R(rng, B, S, D, scale=s) for s in (0.5, 1e-4, 0.3)]
    gates = [R(rng, D, D) for _ in range(3)]
    pruned, mask = seed_fn("000", "dynamic_delta_pruning")(deltas, gates, 0.05)
    want_pruned, want_mask = ref.dynamic_delta_pruning(deltas, gates, 0.05)
    assert [bool(m) for m in mask] == want_mask == [True, False, True]
    for g, w in zip(pruned, want_pruned):
        np.testing.assert_array_equal(F(g), F(w))


ATTENTION_FIX = ("weighted_delta = ts.multiply(delta, layer_attention_expanded)",
                 "weighted_delta = ts.multiply(ts.expand_dims(delta, 1), layer_attention_expanded)")


def test_attention_based_delta_selection(target):
    """Fix: the seed multiplies the [B, S, D] delta by [B, S, S, 1] weights, which do not broadcast; the delta
    gets the key axis (`ts.expand_dims(delta, 1)`), giving [B, S, S, D] per layer."""
    rng = np.random.default_rng(11)
    acts, q, w = [R(rng, B, S, D) for _ in range(L)], R(rng, B, S, D), R(rng, D, 4)
    with pytest.raises(ts.CompilationError, match="do not broadcast"):
        seed_fn("000", "attention_based_delta_selection")(acts, q, w)
    deltas, weights = seed_fn("000", "attention_based_delta_selection", fixes=[ATTENTION_FIX])(acts, q, w)
    *want_deltas, want_w = ref.attention_based_delta_selection(acts, q, w)
    close(weights, want_w)
    for g, wd in zip(deltas, want_deltas):
        close(g, wd)


def test_compressed_delta_storage_and_reconstruction(target):
    """ts.ops.svd runs eagerly (the compiled Jacobi kernels); the results are the seed's dicts and ranks."""
    rng = np.random.default_rng(12)
    deltas = [R(rng, B, S, 12, dtype=f32) for _ in range(2)]
    comp, ranks = seed_fn("000", "compressed_delta_storage")(deltas, 0.25)
    assert ranks == [3, 3] and comp[0]["original_shape"] == [B, S, 12]
    assert comp[0]["U"].shape == (B * S, 3) and comp[0]["sigma"].shape == (3,) and comp[0]["Vt"].shape == (3, 12)
    rec = seed_fn("000", "reconstruct_compressed_delta")
    for d, c, k in zip(deltas, comp, ranks):
        want, sigma = ref.compressed_delta_reconstruction(d, 0.25)
        np.testing.assert_allclose(c["sigma"], sigma, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rec(c, k), want, rtol=1e-4, atol=1e-4)


class _Layer:
    """A layer as adaptive_gdn_with_early_exit uses it: gate_params, forward, and (the stated fix) its own
    confidence_network; attributes as tessera.gdn.reference's ExitLayer has them."""

    def __init__(self, weight, gate_params, confidence):
        self.weight, self.gate_params, self.confidence = weight, gate_params, confidence

    def forward(self, x):
        return _layer_forward(x, self.weight)

    def confidence_network(self, h):
        return _confidence(h, self.confidence)


@ts.function
def _layer_forward(x, w):
    return x + ts.ops.silu(ts.gemm(x, w))


@ts.function
def _confidence(h, c):
    return ts.reshape(ts.gemm(h, c), h.shape[:-1])


EXIT_FIX = ("confidence_score = ts.ops.confidence_network(layer_output)",
            "confidence_score = layer.confidence_network(layer_output)")


@pytest.mark.parametrize("threshold", [0.95, 0.0])
def test_adaptive_gdn_with_early_exit(target, threshold):
    """Fix: the seed's ts.ops.confidence_network is undefined; each layer carries its confidence network. The
    exit test is on a tensor's value: the body runs eagerly. Threshold 0 exits after the third layer."""
    rng = np.random.default_rng(13)
    layers = [_Layer(R(rng, D, D, dtype=f32, scale=0.2), [R(rng, D, D, dtype=f32, scale=0.2) for _ in range(4)],
                     R(rng, D, 1, dtype=f32)) for _ in range(4)]
    x = R(rng, B, S, D, dtype=f32)
    out, exit_probs = seed_fn("000", "adaptive_gdn_with_early_exit", fixes=[EXIT_FIX])(x, layers, threshold)
    want_out, want_probs = ref.adaptive_gdn_with_early_exit(x, layers, threshold)
    assert exit_probs.shape == (B, 4, S)
    close(out, want_out, 1e-3)
    close(exit_probs, want_probs, 1e-3)
    if threshold == 0.0:
        assert np.all(F(exit_probs)[:, 3] == 1.0)


# -- seed 000's gradient flow and checkpointing, seed 001's checkpointed layer (issue 12) -----------------------

# compute_delta_gradient is undefined in the seed; tessera.gdn.compute_delta_gradient is the gradient at the
# SOURCE of delta_connection(a[i], a[i+1], g[i+1], 1) for that connection's cotangent. The seed's call cannot
# give it what it needs (forward_activations[:layer_idx] never holds a[i] or a[i+1]) and skips layer 0, which
# is a source too. Fixes, as in tessera.gdn.delta_backward.SEED_FIXES:
BACKWARD_FIXES = [
    ("        if layer_idx > 0:\n            # Add gradient from delta connections",
     "        if layer_idx + 1 < len(forward_activations):\n            # Add gradient from delta connections"),
    ("                forward_activations[:layer_idx],\n                accumulated_grad,\n",
     "                forward_activations[layer_idx:layer_idx + 2],\n"
     "                ([output_gradients] + layer_gradients)[-2],\n"),
    ("                gate_parameters[:layer_idx]\n", "                gate_parameters[layer_idx + 1:layer_idx + 2]\n"),
]


def test_optimized_delta_backward(target):
    """Seed 000 with the three fixes above: it returns lists, so it runs eagerly, and its
    `ts.autodiff.gradient_tape()` records the compiled delta_connection / ts.zeros_like calls. The result is
    autodiff.grad of the chain y = c[L-1], a[i+1] = x[i+1] + c[i], c[i] = delta_connection(a[i-1], a[i], g[i], 1)
    (tessera.gdn.delta_chain_loss) and the NumPy backward."""
    from tessera import autodiff, gdn
    from tessera.gdn import reference_training as rt
    assert BACKWARD_FIXES == gdn.delta_backward.SEED_FIXES
    rng = np.random.default_rng(14)
    xs = [R(rng, B, S, D, dtype=f32, scale=1.0) for _ in range(4)]
    gates = [R(rng, D, D, dtype=f32, scale=0.3) for _ in range(4)]
    dy = R(rng, B, S, D, dtype=f32, scale=1.0)
    *acts, _ = gdn.delta_chain_forward(xs, gates)
    env = {"delta_connection": seed_text.load("001", "delta_connection"),
           "compute_delta_gradient": gdn.compute_delta_gradient}
    fn = seed_text.load("000", "optimized_delta_backward", env=env, fixes=BACKWARD_FIXES)
    layer_grads, gate_grads = fn(list(acts), dy, gates)
    want_layers, want_gates = rt.optimized_delta_backward(acts, dy, gates)
    got_x, got_g = autodiff.grad(gdn.delta_chain_loss, argnums=(0, 1))(xs, gates, dy)
    for got, want, ad in zip(layer_grads + gate_grads, want_layers + want_gates, got_x + got_g):
        close(got, want, 1e-4)
        close(got, ad, 1e-4)


def transformer_params(rng, d):
    p = {k: rng.standard_normal((d, d)) / 4 for k in ("wq", "wk", "wv", "wo")}
    p.update(mlp_up=rng.standard_normal((d, 2 * d)) / 4, mlp_down=rng.standard_normal((2 * d, d)) / 6,
             input_layernorm=1 + rng.standard_normal(d) / 10, post_attention_layernorm=1 + rng.standard_normal(d) / 10)
    return p


LEARNED_WEIGHTS_FIX = [
    ("    gate_params: list[Tensor]\n) -> Tensor",
     "    gate_params: list[Tensor],\n    attention_weights: Tensor\n) -> Tensor"),
    ("ts.ops.learned_attention_weights()", "attention_weights"),
]


@pytest.mark.parametrize("seed,name", [("000", "memory_efficient_gdn_layer"),
                                       ("001", "delta_layer_with_checkpointing")])
def test_checkpointed_gdn_layers(target, seed, name):
    """Seed 000's memory_efficient_gdn_layer and seed 001's delta_layer_with_checkpointing as written (seed 001's
    undefined ts.ops.learned_attention_weights() is a parameter, LEARNED_WEIGHTS_FIX), with the seed's dict of
    layer parameters for ts.ops.transformer_layer (a Python value: the body runs eagerly), against NumPy and
    tessera.gdn's versions. On the CPU, inlined into a loss over a parameter list (f64): the gradients equal
    tessera.gdn's and the checkpoints keep fewer bytes for the backward pass."""
    from tessera import autodiff, gdn
    from tessera.gdn import reference_training as rt
    from tessera.gdn.model import TRANSFORMER_PARAMS
    fixes = LEARNED_WEIGHTS_FIX if seed == "001" else []
    env = {"delta_connection": seed_text.load("001", "delta_connection"),
           "multi_scale_delta_aggregation": seed_fn("001", "multi_scale_delta_aggregation")}
    fn = seed_text.load(seed, name, env=env, fixes=fixes)
    rng = np.random.default_rng(15)
    d, n = 8, 3
    x, prev = rng.standard_normal((B, 4, d)), [rng.standard_normal((B, 4, d)) for _ in range(n)]
    params, gates = transformer_params(rng, d), [0.3 * rng.standard_normal((d, d)) for _ in range(n)]
    extra = [rng.uniform(0.3, 1.0, (n + 1, n + 1))] if seed == "001" else []
    # forward in f32 on every target (f64 GDN gating does not compile for the GPU targets yet)
    c32 = [F(x), [F(p) for p in prev], {k: F(v) for k, v in params.items()}, [F(g) for g in gates]] + \
        [F(e) for e in extra]
    close(fn(*c32), getattr(rt, name)(x, prev, params, gates, *extra), 1e-4)
    if target != "cpu":
        return

    @ts.function
    def seed_loss(x, prev, plist, gates, extra):
        y = fn(x, prev, dict(zip(TRANSFORMER_PARAMS, plist)), gates, *extra)
        return ts.sum(y * y)

    @ts.function
    def gdn_loss(x, prev, plist, gates, extra):
        y = getattr(gdn, name)(x, prev, plist, gates, *extra)
        return ts.sum(y * y)
    plist = [params[k] for k in TRANSFORMER_PARAMS]
    got = autodiff.grad(seed_loss, argnums=(0, 1, 2, 3))(x, prev, plist, gates, extra)
    want = autodiff.grad(gdn_loss, argnums=(0, 1, 2, 3))(x, prev, plist, gates, extra)
    for g, w in zip([got[0], *got[1], *got[2], *got[3]], [want[0], *want[1], *want[2], *want[3]]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    ck = ts.compile(autodiff.grad(seed_loss, argnums=(0, 1, 2, 3)), x, prev, plist, gates, extra)
    assert 0 < ck.saved_activation_bytes() < ck.saved_activation_bytes(checkpoints=False)


def test_progressive_delta_training_class():
    """Seed 000's ProgressiveDeltaTraining class, cut from the seed text (`autodiff` from the seed's own import
    line), with what the seed leaves undefined taken from tessera.gdn: the model (MaskedDeltaLM, the seed-002
    LM with forward_with_masked_deltas) and the two regularisers. `@ts.jit @autodiff` on a method gives a graph
    function without method binding, so the step is called with the trainer first. Stage 1 (epoch 3, two
    epochs per stage) enables distance-2 connections; the loss matches the NumPy reference."""
    from tessera import autodiff, gdn
    from tessera.gdn import reference_training as rt
    from tessera.gdn.model import GDNConfig
    Seed = seed_text.load("000", "ProgressiveDeltaTraining", env={"autodiff": autodiff})

    class Trainer(Seed):
        compute_delta_regularization = gdn.ProgressiveDeltaTraining.compute_delta_regularization
        compute_gating_entropy_regularization = gdn.ProgressiveDeltaTraining.compute_gating_entropy_regularization

    config = GDNConfig(vocab_size=12, hidden_size=8, num_hidden_layers=4, num_attention_heads=1, intermediate_size=8,
                       max_delta_distance=2, delta_hidden_size=4, gating_hidden_size=4)
    trainer = Trainer(gdn.MaskedDeltaLM(config, seed=2), num_epochs_per_stage=2)
    rng = np.random.default_rng(16)
    ids = rng.integers(0, 12, (2, 4)).astype(np.int32)
    targets = np.eye(12, dtype=f32)[rng.integers(0, 12, (2, 4))]
    loss = Seed.progressive_training_step(trainer, ids, targets, 3)     # the seed's step and delta mask
    assert loss.shape == ()
    close(loss, rt.progressive_training_loss(trainer.model.params, config, ids, targets, 3, 2), 1e-5)
