"""Graph-level names the seeds use (issue 11, Deliver 3): ts.zeros / ts.ones / ts.arange / ts.softmax /
ts.diag, with NumPy's semantics, on the CPU backend against NumPy and through the NVIDIA path in the
PTX emulator."""
import numpy as np
import pytest

import tessera as ts
from test_nvidia_compile import _have_ptxas


@ts.function
def uses_the_names(x: ts.Tensor["N", ts.f32]):
    w = ts.softmax(-ts.arange(4, dtype=ts.f32))          # seed 000: layer weights
    mask = ts.cast(ts.zeros([4, 4], dtype=ts.bool), ts.f32)
    d = ts.diag(x)                                       # seed 000: sigma_diag = ts.diag(sigma)
    odd = ts.cast(ts.arange(1, 8, 2), ts.f32)
    return ts.sum(d * w, axis=0) + ts.diag(d) + ts.ones([4]) + ts.sum(mask, axis=0) + odd


def _want(x):
    w = np.exp(-np.arange(4.0))
    w /= w.sum()
    return (np.diag(x) * w).sum(0) + x + 1 + np.arange(1, 8, 2)


def test_names_on_the_cpu():
    x = np.array([1.0, -2.0, 3.5, 4.0], np.float32)
    np.testing.assert_allclose(uses_the_names(x), _want(x), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")
def test_names_in_the_emulator(monkeypatch):
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", "sm_80")
    x = np.array([1.0, -2.0, 3.5, 4.0], np.float32)
    np.testing.assert_allclose(uses_the_names(x), _want(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("body,needle", [
    (lambda x: ts.zeros([4, -1]) + x, "positive ints"),
    (lambda x: ts.arange(3, 3) + x, "is empty"),
    (lambda x: ts.diag(ts.zeros([2, 3])) + x, "a vector or a square matrix"),
])
def test_bad_arguments_are_located(body, needle):
    @ts.function
    def bad(x: ts.Tensor["N", ts.f32]):
        return body(x)
    with pytest.raises(ts.CompilationError, match=needle):
        bad(np.zeros(4, np.float32))


@ts.function
def adaptive_delta_loss(predictions: ts.Tensor["B", "S", "V", ts.bf16], targets: ts.Tensor["B", "S", "V", ts.bf16],
                        delta_contributions: list[ts.Tensor]) -> ts.Tensor[(), ts.f32]:
    # seed 000's adaptive_delta_loss, its first two terms as written
    main_loss = ts.ops.cross_entropy_loss(predictions, targets)
    delta_sparsity_loss = 0.0
    for delta_contrib in delta_contributions:
        delta_norm = ts.ops.l2_norm(delta_contrib)
        delta_sparsity_loss += ts.ops.l1_regularization(delta_norm)
    return main_loss + 0.01 * delta_sparsity_loss


def test_losses_and_global_norm():
    """cross_entropy_loss over probability targets, l2_norm with no axis (the whole tensor) and
    l1_regularization: 1-element results (graph reductions keep a dim), returned 0-d by a function annotated
    `-> Tensor[(), ts.f32]`."""
    import ml_dtypes
    bf16 = ml_dtypes.bfloat16
    rng = np.random.default_rng(0)
    p = rng.standard_normal((2, 3, 5)).astype(bf16)
    t = np.eye(5, dtype=np.float32)[rng.integers(0, 5, (2, 3))].astype(bf16)
    ds = [rng.standard_normal((2, 3, 4)).astype(bf16) for _ in range(2)]
    got = adaptive_delta_loss(p, t, ds)
    pf = p.astype(np.float32)
    z = pf - pf.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    want = -(t.astype(np.float32) * logp).sum(-1).mean() + 0.01 * sum(np.linalg.norm(d.astype(np.float32)) for d in ds)
    assert got.shape == ()
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert tuple(ts.Tensor[(), ts.f32].dims) == () and tuple(ts.Tensor[("B", "D"), ts.f32].dims) == ("B", "D")


@ts.function
def scalar_results(x: ts.Tensor["N", "M", ts.f32]):
    return x[1, 2], ts.ops.l2_norm(x), 3.0


def test_scalar_results_are_0d():
    """An element (one int per dim) and a Python number come back as 0-d arrays."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    a, n, c = scalar_results(x)
    assert a.shape == () and float(a) == 6.0 and c.shape == () and float(c) == 3.0
    np.testing.assert_allclose(n, [np.linalg.norm(x)], rtol=1e-6)


@ts.function
def delta_mask(x: ts.Tensor["L", "L", ts.f32]):
    # seed 000's create_delta_mask, with max_distance 2 and 4 layers, plus an .add on a float tensor
    num_layers, max_distance = 4, 2
    mask = ts.zeros([num_layers, num_layers], dtype=ts.bool)
    for i in range(num_layers):
        for j in range(i + 1, min(i + max_distance + 1, num_layers)):
            mask = mask.at[i, j].set(True)
    return ts.cast(mask, ts.f32) + x.at[0, :].add(10.0)


def test_at_set_and_add():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    want = np.zeros((4, 4), np.float32)
    for i in range(4):
        for j in range(i + 1, min(i + 3, 4)):
            want[i, j] = 1
    y = x.copy()
    y[0, :] += 10
    np.testing.assert_allclose(delta_mask(x), want + y)


@ts.function
def stable_gating(gating_input: ts.Tensor["B", "S", "G", ts.f32], gating_dropout: float = 0.5):
    # seed 001's stable_gating_computation, as written (temperature 1)
    gate_probs = ts.ops.softmax_safe(gating_input)
    if ts.is_training():
        gate_probs = ts.ops.dropout(gate_probs, p=gating_dropout)
    return gate_probs


def test_is_training_chooses_the_graph():
    x = np.random.default_rng(5).standard_normal((2, 8, 16)).astype(np.float32)
    e = np.exp(x - x.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
    assert not ts.is_training()
    np.testing.assert_allclose(stable_gating(x), probs, rtol=1e-5, atol=1e-6)
    with ts.training():
        assert ts.is_training()
        dropped = stable_gating(x)
    assert not ts.is_training()
    kept = dropped != 0
    assert 0.3 < 1 - kept.mean() < 0.7
    np.testing.assert_allclose(dropped[kept], probs[kept] / 0.5, rtol=1e-5)
    np.testing.assert_allclose(stable_gating(x), probs, rtol=1e-5, atol=1e-6)   # eval again: the eval graph


from tessera.gdn import delta_connection  # noqa: E402


@ts.function
def optimized_delta_memory_access(layer_activations: list[ts.Tensor], gate_parameters: list[ts.Tensor]) -> ts.Tensor:
    # seed 001's function, as written
    with ts.memory.prefetch_scope():
        for i in range(len(layer_activations) - 1):
            ts.memory.prefetch(layer_activations[i + 1], device="gpu", overlap="compute")
    TILE_SIZE = 128
    results = []
    for i in range(0, layer_activations[0].shape[1], TILE_SIZE):
        tile_results = []
        for layer_idx, (layer_act, gate_param) in enumerate(zip(layer_activations, gate_parameters)):
            act_tile = layer_act[:, i:i + TILE_SIZE, :]
            if layer_idx > 0:
                prev_tile = layer_activations[layer_idx - 1][:, i:i + TILE_SIZE, :]
                delta_tile = delta_connection(prev_tile, act_tile, gate_param, 1)
                tile_results.append(delta_tile)
        if tile_results:
            tile_output = ts.sum(ts.stack(tile_results), axis=0)
            results.append(tile_output)
    return ts.concatenate(results, axis=1)


def test_memory_hints_in_the_seed_function():
    """ts.memory.prefetch_scope / prefetch: checked hints (the arrays are already where the kernels run)."""
    import ml_dtypes
    from tessera.gdn import reference as ref
    bf16 = ml_dtypes.bfloat16
    rng = np.random.default_rng(2)
    acts = [rng.standard_normal((2, 256, 16)).astype(bf16) for _ in range(3)]
    gates = [(rng.standard_normal((16, 16)) * 0.2).astype(bf16) for _ in range(3)]
    got = optimized_delta_memory_access(acts, gates)
    tiles = [sum(ref.delta_connection(acts[j - 1][:, i:i + 128], acts[j][:, i:i + 128], gates[j], 1)
                 for j in (1, 2)) for i in (0, 128)]
    np.testing.assert_allclose(np.asarray(got, np.float32), np.concatenate(tiles, axis=1), rtol=2e-2, atol=2e-2)
    with pytest.raises(ts.CompilationError, match="a hint for @ts.function bodies"):
        ts.memory.prefetch(acts[0])

    @ts.function
    def bad(x: ts.Tensor["N", ts.f32]):
        ts.memory.prefetch(x, device="tpu")
        return x
    with pytest.raises(ts.CompilationError, match="device must be one of"):
        bad(np.zeros(4, np.float32))


def test_transformer_layer():
    """ts.ops.transformer_layer(x, layer_params, num_heads): the seed-002 decoder layer (one block shared with
    tessera.gdn.model), against its NumPy reference; a bad params dict is a located error."""
    from tessera.gdn import model_reference as mr
    rng = np.random.default_rng(4)
    D = 16
    p = {k: (rng.standard_normal((D, D)) / 4).astype(np.float32) for k in ("wq", "wk", "wv", "wo")}
    p["mlp_up"] = (rng.standard_normal((D, 32)) / 4).astype(np.float32)
    p["mlp_down"] = (rng.standard_normal((32, D)) / 6).astype(np.float32)
    p["input_layernorm"] = (1 + rng.standard_normal(D) / 10).astype(np.float32)
    p["post_attention_layernorm"] = np.ones(D, np.float32)

    @ts.function
    def layer(x, params: dict):
        return ts.ops.transformer_layer(x, params, num_heads=2)
    x = rng.standard_normal((2, 5, D)).astype(np.float32)
    np.testing.assert_allclose(layer(x, p), mr.transformer_layer(x, p, 2), rtol=1e-4, atol=1e-5)
    with pytest.raises(ts.CompilationError, match="layer_params is a dict") as e:
        layer(x, {"wq": p["wq"]})
    assert e.value.filename == __file__


def test_closed_over_arrays_are_constants_and_tracked():
    """Arrays a body reaches without passing them (a closure, an object's attribute) are baked into the graph;
    changing one in place traces again instead of running the stale graph."""
    w = np.full((4, 4), 0.5, np.float32)

    @ts.function
    def project(x):
        return ts.gemm(x, w)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(project(x), x @ w)
    w[...] = 2.0
    np.testing.assert_allclose(project(x), x @ w)
