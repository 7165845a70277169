"""Every @ts.function of seeds 000 and 001, cut from the seed text (tests/seed_text.py), run against NumPy
(tessera.gdn.reference) on the CPU backend, and with every kernel compiled for sm_80 and sm_90a and run in
the PTX emulator (TESSERA_BACKEND=emu) — issue 11, Deliver 4. Bodies that branch on tensor values or return
dicts run eagerly, op by op (tessera.frontend.eager). Stated fixes where a seed is wrong in itself are in
docs/gdn.md ("The seed programs"). `optimized_delta_backward` needs ts.autodiff (issue 12): not here."""
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


@pytest.fixture(params=["cpu", "sm_80", "sm_90a"])
def target(request, monkeypatch):
    if request.param != "cpu":
        monkeypatch.setenv("TESSERA_BACKEND", "emu")
        monkeypatch.setenv("TESSERA_EMU_ARCH", request.param)
    return request.param


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
