"""Reverse-mode autodiff on the ts graph (issue 12, DESIGN §12): every VJP rule against central finite
differences of the same compiled forward in f64, bf16 gradients within a stated tolerance, the API forms
(grad, value_and_grad, argnums, list arguments, `@ts.jit @autodiff`), the graph that ts.compile shows, the
located errors, and a gradient graph run through the NVIDIA path in the PTX emulator."""
import numpy as np
import pytest

import tessera as ts
from tessera import autodiff
from test_nvidia_compile import _have_ptxas

RNG = np.random.default_rng(2026)


def rand(*shape, dtype=np.float64, lo=None):
    x = RNG.standard_normal(shape)
    if lo is not None:   # keep away from log / sqrt / divide poles and max/min ties
        x = np.abs(x) + lo
    return x.astype(dtype)


def finite_differences(fn, args, wrt, eps=1e-6):
    """d fn(args)[0] / d args[i] by central differences, in f64."""
    grads = []
    for i in wrt:
        a = args[i]
        g = np.zeros(a.shape)
        for idx in np.ndindex(a.shape):
            plus, minus = [x.copy() for x in args], [x.copy() for x in args]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            g[idx] = (float(np.sum(fn(*plus))) - float(np.sum(fn(*minus)))) / (2 * eps)
        grads.append(g)
    return grads


def check(fn, args, wrt, rtol=1e-6, atol=1e-7, eps=1e-6):
    got = autodiff.grad(fn, argnums=tuple(wrt))(*args)
    want = finite_differences(fn, args, wrt, eps)
    for i, g, w in zip(wrt, got, want):
        assert g.shape == args[i].shape and g.dtype == args[i].dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"gradient of argument {i}")


# -- each rule, f64 --------------------------------------------------------------------------------

@ts.function
def arithmetic(x, y, b):
    return ts.sum((x * y - x / (y * y + 2.0)) + b - 3.0 * x)


@ts.function
def unary(x, y):
    return ts.sum(ts.exp(x) + ts.log(y) + ts.sqrt(y) + ts.tanh(x) + ts.sigmoid(x))


@ts.function
def extremes(x, y):
    return ts.sum(ts.maximum(x, y) * 2.0 + ts.minimum(x, 0.25) + ts.maximum(y, x) * x)


@ts.function
def shapes(x, y):
    t = ts.transpose(ts.reshape(x, (3, 8)))          # [8, 3]
    s = t[2:6, 1:] * y[0, 1:3]                       # slice and broadcast of a slice
    c = ts.concatenate([s, t[0:1, 1:]], axis=0)      # [5, 2]
    st = ts.stack([c, c * c], axis=0)                # [2, 5, 2]
    return ts.sum(st * st) + ts.sum(y.T)


@ts.function
def reductions(x):
    return (ts.sum(ts.mean(x, axis=0) * ts.sum(x, axis=1, keepdims=True)) + ts.mean(x)
            + ts.sum(ts.max(x, axis=1)) - ts.sum(ts.min(x, axis=0)))


@ts.function
def rows(x, w):
    return ts.sum(ts.softmax(x * 2.0) * w) + ts.sum(ts.ops.l2_norm(x, axis=-1) * w[:, 0]) + ts.ops.l2_norm(w)


@ts.function
def products(a, b, c, bb):
    return ts.sum((a @ b) * (a @ b)) + ts.sum(ts.gemm(c, b)) + ts.sum(ts.gemm(c, bb) * 0.5)


@ts.function
def scalars(x, y):
    return x[1, 2] * ts.sum(y) + ts.sum(x * x[0, 0])


@ts.function
def losses(logits, targets, w):
    return ts.ops.cross_entropy_loss(logits, targets) + ts.ops.l1_regularization(w, 0.5)


@ts.function
def updates(x, v):
    return ts.sum(x.at[1, :].set(v) * x)


F64_CASES = {
    "arithmetic": (arithmetic, lambda: (rand(4, 6), rand(4, 6, lo=0.5), rand(6)), (0, 1, 2)),
    "unary": (unary, lambda: (rand(5, 3), rand(5, 3, lo=0.5)), (0, 1)),
    "extremes": (extremes, lambda: (rand(4, 5), rand(4, 5)), (0, 1)),
    "shapes": (shapes, lambda: (rand(4, 6), rand(3, 8)), (0, 1)),
    "reductions": (reductions, lambda: (rand(5, 7),), (0,)),
    "rows": (rows, lambda: (rand(4, 6), rand(4, 6)), (0, 1)),
    "products": (products, lambda: (rand(5, 4), rand(4, 3), rand(2, 5, 4), rand(2, 4, 6)), (0, 1, 2, 3)),
    "scalars": (scalars, lambda: (rand(3, 4), rand(2, 2)), (0, 1)),
    "losses": (losses, lambda: (rand(3, 5), np.eye(5)[[1, 4, 0]].astype(np.float64), rand(4, 2)), (0, 2)),
    "updates": (updates, lambda: (rand(3, 4), rand(4)), (0, 1)),
}


@pytest.mark.parametrize("name", sorted(F64_CASES))
def test_vjp_rules_against_finite_differences_f64(name):
    fn, args, wrt = F64_CASES[name]
    check(fn, args(), wrt)


@ts.function
def gating(delta, w):
    return ts.sum(ts.ops.gating_function(delta, w, 2) * delta[:, 0:3])


@ts.function
def delta(source, target, w):
    return ts.sum(ts.ops.delta_connection(source, target, w, 1) * target)


@ts.function
def dropped(x):
    return ts.sum(ts.ops.dropout(x, p=0.25, seed=7) * x)


@ts.function
def embedded(ids, table):
    e = ts.ops.embedding(ids, table)
    return ts.sum(e * e)


@pytest.mark.parametrize("fn,args,wrt", [
    (gating, lambda: (rand(6, 4, dtype=np.float32), rand(4, 3, dtype=np.float32)), (0, 1)),
    (delta, lambda: (rand(5, 4, dtype=np.float32), rand(5, 4, dtype=np.float32), rand(4, 4, dtype=np.float32)), (0, 1, 2)),
    (dropped, lambda: (rand(4, 8, dtype=np.float32),), (0,)),
    (embedded, lambda: (np.array([[1, 3], [3, 0]], np.int32), rand(5, 3, dtype=np.float32)), (1,)),
], ids=["gating_function", "delta_connection", "dropout", "embedding"])
def test_f32_ops_against_finite_differences(fn, args, wrt):
    """The GDN ops compute in f32 by definition: checked in f32 with a step and tolerance to match."""
    a = args()

    def f64(*xs):
        return np.float64(np.sum(fn(*[x.astype(np.float32) if x.dtype.kind == "f" else x for x in xs])))
    got = autodiff.grad(fn, argnums=wrt)(*a)
    want = finite_differences(f64, [x.astype(np.float64) if x.dtype.kind == "f" else x for x in a], wrt, eps=1e-2)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-2, atol=2e-3)


def test_bf16_gradients_within_tolerance():
    """bf16 inputs: gradients accumulated in f32 and returned in bf16, within bf16's resolution (2^-8 relative)
    of the f64 gradient of the same function."""
    import ml_dtypes
    x, y, b = rand(4, 6), rand(4, 6, lo=0.5), rand(6)
    g64 = autodiff.grad(arithmetic, argnums=(0, 1))(x, y, b)
    bf = [a.astype(ml_dtypes.bfloat16) for a in (x, y, b)]
    g16 = autodiff.grad(arithmetic, argnums=(0, 1))(*bf)
    for lo, hi in zip(g16, g64):
        assert lo.dtype == ml_dtypes.bfloat16
        np.testing.assert_allclose(lo.astype(np.float64), hi, rtol=3e-2, atol=3e-2)


# -- the API ---------------------------------------------------------------------------------------

@ts.function
def mlp_loss(x, w1, w2, bias):
    h = ts.tanh(x @ w1 + bias)
    return ts.mean((h @ w2) * (h @ w2))


def test_argnums_value_and_grad_and_lists():
    x, w1, w2, bias = rand(6, 5), rand(5, 4), rand(4, 3), rand(4)
    dw1 = autodiff.grad(mlp_loss, argnums=1)(x, w1, w2, bias)           # an int: one gradient
    assert isinstance(dw1, np.ndarray) and dw1.shape == w1.shape
    (only,) = autodiff.grad(mlp_loss, argnums=(1,))(x, w1, w2, bias)    # a tuple: a tuple, even of one
    np.testing.assert_array_equal(only, dw1)
    value, (g1, g2) = autodiff.value_and_grad(mlp_loss, argnums=(1, 2))(x, w1, w2, bias)
    np.testing.assert_allclose(value, mlp_loss(x, w1, w2, bias), rtol=1e-12)
    np.testing.assert_allclose(g1, dw1, rtol=1e-12)
    dx = autodiff.grad(mlp_loss)(x, w1, w2, bias)                        # default argnums=0
    assert dx.shape == x.shape

    @ts.function
    def summed(xs, s):
        return ts.sum(ts.sum(xs, axis=0) * s)
    xs = [rand(3), rand(3), rand(3)]
    gxs, gs = autodiff.grad(summed, argnums=(0, 1))(xs, rand(3))
    assert isinstance(gxs, list) and len(gxs) == 3 and gs.shape == (3,)


def test_stacked_decorators_of_the_seeds():
    @ts.jit @autodiff
    def step(x, w) -> ts.Tensor[(), ts.f64]:
        return ts.sum(ts.tanh(x @ w))
    x, w = rand(3, 4), rand(4, 2)
    loss = step(x, w)
    assert loss.shape == ()
    gw = step.grad(x, w, argnums=1)
    np.testing.assert_allclose(gw, x.T @ (1 - np.tanh(x @ w) ** 2), rtol=1e-10)
    value, gx = step.value_and_grad(x, w)
    assert value.shape == () and gx.shape == x.shape


def test_the_compiled_gradient_is_one_graph_with_backward_ops():
    x, w1, w2, bias = rand(6, 5), rand(5, 4), rand(4, 3), rand(4)
    ck = ts.compile(autodiff.grad(mlp_loss, argnums=(1, 2)), x, w1, w2, bias)
    graph = ck.asm["ts"]
    assert graph.count('"ts.gemm"') >= 2 + 4 and "math.tanh" in graph and '"ts.transpose"' in graph
    assert ck.metadata["kernels"] >= 4
    g1, g2 = ck(x, w1, w2, bias)
    assert g1.shape == w1.shape and g2.shape == w2.shape
    # backward ops carry the forward op's user location: the gemm's gradient is at the `x @ w1` line
    import inspect
    line = inspect.getsourcelines(mlp_loss.fn)[1] + 2
    assert f":{line}:" in graph


def test_an_unreachable_argument_gets_zeros():
    @ts.function
    def ignores(x, y):
        return ts.sum(x * x)
    gx, gy = autodiff.grad(ignores, argnums=(0, 1))(rand(3), rand(2, 2))
    assert gy.shape == (2, 2) and not gy.any()


# -- located errors ---------------------------------------------------------------------------------

def test_gradient_of_an_integer_input_is_a_located_error():
    @ts.function
    def f(x, ids):
        return ts.sum(ts.ops.embedding(ids, x))
    with pytest.raises(ts.CompilationError, match="'ids': it is i32") as ei:
        autodiff.grad(f, argnums=1)(rand(4, 2), np.array([1, 2], np.int32))
    assert ei.value.filename == __file__


def test_gradient_of_a_non_scalar_output_is_a_located_error():
    @ts.function
    def f(x):
        return x * 2.0   # NOT-SCALAR
    with pytest.raises(ts.CompilationError, match="output_gradients") as ei:
        autodiff.grad(f)(rand(3, 2))
    src = open(__file__).read().splitlines()
    assert ei.value.filename == __file__ and "NOT-SCALAR" in src[ei.value.line - 1]


def test_gradient_of_a_python_value_or_bad_argnums_is_an_error():
    @ts.function
    def f(x, scale):
        return ts.sum(x * scale)
    with pytest.raises(ts.CompilationError, match="'scale': it is a Python value"):
        autodiff.grad(f, argnums=1)(rand(3), 2.0)
    with pytest.raises(ts.CompilationError, match="out of range"):
        autodiff.grad(f, argnums=5)
    with pytest.raises(ts.CompilationError, match="argnums must be"):
        autodiff.grad(f, argnums=())


# -- the NVIDIA path ---------------------------------------------------------------------------------

@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
def test_gradient_graph_in_the_emulator(monkeypatch, arch):
    x, w1, w2, bias = (a.astype(np.float32) for a in (rand(6, 5), rand(5, 4), rand(4, 3), rand(4)))
    want = autodiff.grad(mlp_loss, argnums=(1, 3))(x, w1, w2, bias)
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
    got = autodiff.grad(mlp_loss, argnums=(1, 3))(x, w1, w2, bias)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)



@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
def test_f64_gating_and_its_gradient_in_the_emulator(monkeypatch, arch):
    """Gating networks over f64 inputs compile for the NVIDIA targets too (tile.mma takes no f64, so their
    template sums rank-1 updates in f64); the gates themselves are f32 (the op's result type), so the
    emulator agrees with the CPU backend to f32 rounding."""
    def loss(s, t, w):
        return ts.sum(ts.ops.delta_connection(s, t, w, 2) * ts.ops.gating_function(t, w, 1))
    s, t, w = rand(40, 6), rand(40, 6), rand(6, 6)
    want = autodiff.value_and_grad(loss, argnums=(0, 2))(s, t, w)
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
    got = autodiff.value_and_grad(loss, argnums=(0, 2))(s, t, w)
    np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-5)
    for g, wnt in zip(got[1], want[1]):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, wnt, rtol=1e-5, atol=1e-5)

# -- the whole causal LM ------------------------------------------------------------------------------

@pytest.mark.parametrize("attention_deltas", [False, True])
def test_causal_lm_gradient_against_finite_differences(attention_deltas):
    """The seed-002 LM's loss gradient w.r.t. every parameter tensor (a sample of elements of each) against
    central differences of the compiled f64 loss: embedding, attention, RMSNorm, SiLU MLPs, delta networks
    and their aggregation, the LM head and the cross-entropy."""
    from tessera.gdn import GDNConfig, causal_lm_loss, init_params
    c = GDNConfig(vocab_size=20, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=24,
                  max_delta_distance=2, delta_hidden_size=8, gating_hidden_size=4, use_attention_deltas=attention_deltas)
    params = init_params(c, seed=5, dtype=np.float64)
    rng = np.random.default_rng(6)
    ids, targets = (rng.integers(0, c.vocab_size, (2, 5)).astype(np.int32) for _ in range(2))
    loss, grads = autodiff.value_and_grad(causal_lm_loss, argnums=2)(ids, targets, params, c)
    assert loss.shape == () and len(grads) == len(params)
    eps = 1e-6
    for p, g in zip(params, grads):
        assert g.shape == p.shape and g.dtype == p.dtype
        for _ in range(2):
            idx = tuple(int(rng.integers(0, s)) for s in p.shape)
            old = p[idx]
            p[idx] = old + eps
            plus = float(causal_lm_loss(ids, targets, params, c))
            p[idx] = old - eps
            minus = float(causal_lm_loss(ids, targets, params, c))
            p[idx] = old
            np.testing.assert_allclose(g[idx], (plus - minus) / (2 * eps), rtol=1e-5, atol=1e-8)


# -- the gradient tape -------------------------------------------------------------------------------

@ts.function
def tape_layer(h, w):
    return ts.tanh(h @ w)


def test_tape_on_arrays_agrees_with_grad():
    h, w, dy = rand(4, 3), rand(3, 5), rand(4, 5)
    with autodiff.gradient_tape() as tape:
        tape.watch([h, w])
        y = tape_layer(h, w)
    dh, dw = tape.gradient(y, [h, w], output_gradients=dy)

    @ts.function
    def weighted(h, w, dy):
        return ts.sum(tape_layer(h, w) * dy)
    gh, gw = autodiff.grad(weighted, argnums=(0, 1))(h, w, dy)
    np.testing.assert_allclose(dh, gh, rtol=1e-12)
    np.testing.assert_allclose(dw, gw, rtol=1e-12)
    with pytest.raises(ts.CompilationError, match="not watched"):
        tape.gradient(y, [dy], output_gradients=dy)


def test_tape_inside_a_traced_function_and_an_eager_body():
    h, w, dy = rand(4, 3), rand(3, 5), rand(4, 5)
    z = dy * (1 - np.tanh(h @ w) ** 2)

    @ts.function
    def traced(h, w, dy):
        with ts.autodiff.gradient_tape() as tape:
            tape.watch([h, w])
            y = tape_layer(h, w)
        return tuple(tape.gradient(y, [h, w], output_gradients=dy))
    for got, want in zip(traced(h, w, dy), (z @ w.T, h.T @ z)):
        np.testing.assert_allclose(got, want, rtol=1e-12)

    @ts.function
    def eager(h, w, dy):
        with ts.autodiff.gradient_tape() as tape:
            tape.watch([h, w])
            y = tape_layer(h, w) * 1.0
        gh, gw = tape.gradient(y, [h, w], output_gradients=dy)
        return [gh], [gw]            # lists of tensors: the body runs eagerly (a graph break)
    (gh,), (gw,) = eager(h, w, dy)
    np.testing.assert_allclose(gh, z @ w.T, rtol=1e-12)
    np.testing.assert_allclose(gw, h.T @ z, rtol=1e-12)


# -- the fused delta aggregation's backward pass ------------------------------------------------------

def _aggregation(fusion, sparse_threshold=None):
    from tessera import gdn
    cfg = ts.CompilationConfig(enable_delta_fusion=fusion, enable_pruning=sparse_threshold is not None,
                               prune_threshold=sparse_threshold or 0.01)

    @ts.jit(compilation_config=cfg)
    def aggregation_loss(srcs, tgt, ws, A, probe):
        return ts.sum(gdn.multi_scale_delta_aggregation(srcs, tgt, ws, A) * probe)
    return aggregation_loss


@pytest.mark.parametrize("arch", ["cpu", "sm_80", "sm_90a"])
def test_fused_aggregation_backward_is_one_kernel(arch, monkeypatch):
    """The gradient of seed 001's multi-scale delta aggregation w.r.t. the sources, the target, the gate matrices
    and the attention weights: the forward is fused into ts.fused_delta_gating before differentiation, and its
    backward pass is one ts.fused_delta_gating_grad kernel; it agrees with the gradient of the unfused graph
    (f64) within f32 accuracy, on the CPU and in the PTX emulator."""
    if arch != "cpu" and not _have_ptxas():
        pytest.skip("ptxas not found")
    rng = np.random.default_rng(7)
    L, B, S, D = 3, 2, 40, 16
    srcs = [rng.standard_normal((B, S, D)) for _ in range(L)]
    tgt, probe = rng.standard_normal((B, S, D)), rng.standard_normal((B, S, D))
    ws = [rng.standard_normal((D, D)) * 0.3 for _ in range(L)]
    A = rng.uniform(0.2, 1.0, (L + 1, L + 1))
    f32 = [[x.astype(np.float32) for x in srcs], tgt.astype(np.float32), [w.astype(np.float32) for w in ws],
           A.astype(np.float32), probe.astype(np.float32)]
    want = autodiff.grad(_aggregation(False), argnums=(0, 1, 2, 3))(srcs, tgt, ws, A, probe)   # on the CPU
    if arch != "cpu":
        monkeypatch.setenv("TESSERA_BACKEND", "emu")
        monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
    fused = autodiff.grad(_aggregation(True), argnums=(0, 1, 2, 3))
    ck = ts.compile(fused, *f32)
    labels = [st.label for st in ck.plan.steps]
    assert labels.count("fused_delta_gating_grad") == 1 and "gating" not in labels and "ts.gemm" not in labels
    assert '"ts.fused_delta_gating_grad"' in ck.asm["ts"]
    got = fused(*f32)
    for g, w in zip(got, want):
        for a, b in (zip(g, w) if isinstance(g, list) else [(g, w)]):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


def test_fused_aggregation_backward_skips_pruned_connections():
    """With runtime pruning (sparse fused kernel), a connection whose attention weight is below the threshold
    contributes no gradient, as it contributes nothing to the output."""
    rng = np.random.default_rng(8)
    L, B, S, D = 3, 1, 8, 8
    srcs = [rng.standard_normal((B, S, D)).astype(np.float32) for _ in range(L)]
    tgt, probe = (rng.standard_normal((B, S, D)).astype(np.float32) for _ in range(2))
    ws = [(rng.standard_normal((D, D)) * 0.3).astype(np.float32) for _ in range(L)]
    A = rng.uniform(0.2, 1.0, (L + 1, L + 1)).astype(np.float32)
    A[1, -1] = 0.001
    gs, gw, gA = autodiff.grad(_aggregation(True, 0.01), argnums=(0, 2, 3))(srcs, tgt, ws, A, probe)
    assert not gs[1].any() and not gw[1].any() and gA[1, -1] == 0
    assert gs[0].any() and gw[2].any() and gA[0, -1] != 0


def test_rule_of_the_gemm_epilogue():
    """tessera-optimize-gating-networks (not in the default pipeline) turns m · sigmoid(s · (x @ w)) into one
    ts.gemm_epilogue: differentiated after it, the gradient is the same as the unfused graph's."""
    from tessera.autodiff.transform import differentiate
    from tessera.frontend.function import GraphFunction, Signature
    from tessera.graph.ops import trace_function

    def body(x, w, m):
        return ts.sum(m * ts.sigmoid(ts.gemm(x, w) * 0.5))

    class WithEpilogue(GraphFunction):
        def trace(self, args, kwargs=None, params=None):
            traced = trace_function(self, Signature(self.fn, args, kwargs or {}, params))
            differentiate(traced, [0, 1, 2], keep=(0,), pipeline="canonicalize,tessera-optimize-gating-networks")
            traced.asm = traced.module.operation.get_asm(enable_debug_info=True)
            traced.result_layout, traced.pack = "tuple", lambda outs: tuple(outs[1:])
            return traced
    args = [rand(6, 4, dtype=np.float32), rand(4, 5, dtype=np.float32), rand(6, 5, dtype=np.float32)]
    ck = ts.compile(WithEpilogue(body), *args)
    assert '"ts.gemm_epilogue"' in ck.asm["ts"]
    got = ck(*args)
    want = autodiff.grad(ts.function(body), argnums=(0, 1, 2))(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_gradient_through_fp8_and_bf16_casts():
    """Casts pass the cotangent straight through (in f32): the gradient of a quantise-dequantise round trip is
    the identity's, as the seeds' mixed-precision layers expect."""
    @ts.function
    def roundtrip(x, w):
        q = ts.cast(ts.cast(x, ts.fp8_e4m3), ts.f32)
        h = ts.cast(ts.cast(x * w, ts.bf16), ts.f32)
        return ts.sum(q * w + h)
    x, w = rand(4, 8, dtype=np.float32), rand(4, 8, dtype=np.float32)
    gx, gw = autodiff.grad(roundtrip, argnums=(0, 1))(x, w)
    import ml_dtypes
    q = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    np.testing.assert_allclose(gx, w + w, rtol=1e-6)
    np.testing.assert_allclose(gw, q + x, rtol=1e-6)
