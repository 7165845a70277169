"""@ts.function tracing into the ts dialect, and the default graph pipeline (prune + fuse).
Execution of graphs (tessera-lower-graph-to-tile) is not built yet."""
import os

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import Tensor
from tessera.gdn import delta_connection  # the seed's function, called from the aggregation below

bf16 = ml_dtypes.bfloat16
HERE = os.path.abspath(__file__)


@ts.function
def multi_scale_delta_aggregation(source_layers: list, target_layer: Tensor["B", "S", "D", ts.bf16],
                                  gate_networks: list, attention_weights: Tensor["L", "L", ts.bf16]):
    aggregated_delta = ts.zeros_like(target_layer)
    for i, (source_layer, gate_net) in enumerate(zip(source_layers, gate_networks)):
        layer_distance = len(source_layers) - i
        delta_contrib = delta_connection(source_layer, target_layer, gate_net, layer_distance)
        attention_weight = attention_weights[i, -1]  # LINE-WEIGHT
        weighted_delta = ts.multiply(delta_contrib, attention_weight)
        aggregated_delta = ts.add(aggregated_delta, weighted_delta)
    return aggregated_delta


def _args(L=3, B=2, S=8, D=16):
    srcs = [np.zeros((B, S, D), bf16) for _ in range(L)]
    ws = [np.zeros((D, D), bf16) for _ in range(L)]
    return srcs, np.zeros((B, S, D), bf16), ws, np.zeros((L + 1, L + 1), bf16)


def test_trace_is_the_graph_as_written_with_user_locations():
    ck = ts.compile(multi_scale_delta_aggregation, *_args())
    ir_text = ck.asm["ts"]
    assert ir_text.count('"ts.gating_function"') == 3 and "ts.fused_delta_gating" not in ir_text
    assert ir_text.count("tensor.extract") == 3
    line, text = next((i, l) for i, l in enumerate(open(HERE), 1) if "LINE-WEIGHT" in l)
    col = text.index("attention_weights[i, -1]") + 1     # the column of the indexing expression
    assert f'loc("{HERE}":{line}:{col})' in ir_text


def test_multi_source_aggregation_fuses_into_one_op():
    ck = ts.compile(multi_scale_delta_aggregation, *_args())
    opt = ck.asm["ts.opt"]
    assert opt.count('"ts.fused_delta_gating"') == 1
    assert "ts.gating_function" not in opt and "arith.addf" not in opt
    assert "distances = array<f64: 3.000000e+00, 2.000000e+00, 1.000000e+00>" in opt
    assert "sparse = true" in opt  # runtime attention weights: the mask-skipping kernel


def test_bound_weights_below_threshold_are_pruned():
    srcs, tgt, ws, A = _args()
    weights = np.zeros_like(A, dtype=np.float32)
    weights[:, -1] = [0.5, 0.001, 0.7, 0.0]
    ck = ts.compile(multi_scale_delta_aggregation, srcs, tgt, ws, A, params={"attention_weights": weights.astype(bf16)})
    opt = ck.asm["ts.opt"]
    assert opt.count('"ts.fused_delta_gating"') == 1
    assert "distances = array<f64: 3.000000e+00, 1.000000e+00>" in opt and "sparse = false" in opt
    assert len(ck.metadata["remarks"]) == 1 and "weight 0.000999" in ck.metadata["remarks"][0]


def test_graph_ops_and_errors():
    @ts.function
    def misc(x, w):
        y = ts.gemm(x, w) * 2.0 + 1
        s = ts.sum(y, axis=-1, keepdims=True)
        n = ts.ops.l2_norm(y, axis=-1)
        p = ts.ops.softmax(y / s)
        return ts.concatenate([p, ts.transpose(ts.transpose(p, [0, 2, 1]), [0, 2, 1])], axis=1), n

    ck = ts.compile(misc, np.zeros((2, 4, 8), np.float32), np.zeros((8, 8), np.float32))
    t = ck.asm["ts"]
    for op in ("ts.gemm", "ts.reduce", "ts.l2_norm", "ts.softmax", "ts.broadcast", "ts.transpose", "ts.concatenate"):
        assert f'"{op}"' in t, op

    @ts.function
    def bad(x, w):
        return ts.gemm(x, w)

    with pytest.raises(ts.CompilationError, match="do not multiply"):
        ts.compile(bad, np.zeros((2, 4, 8), np.float32), np.zeros((4, 8), np.float32))


def _random(L=3, B=2, S=40, D=16, seed=0):
    rng = np.random.default_rng(seed)
    srcs = [rng.standard_normal((B, S, D)).astype(bf16) for _ in range(L)]
    ws = [(rng.standard_normal((D, D)) * 0.2).astype(bf16) for _ in range(L)]
    return srcs, rng.standard_normal((B, S, D)).astype(bf16), ws, rng.standard_normal((L + 1, L + 1)).astype(bf16)


def reference(srcs, tgt, ws, A, threshold=0.0):
    L = len(srcs)
    acc = np.zeros(tgt.shape, np.float32)
    for i in range(L):
        c = float(A[i, -1].astype(np.float32))
        if abs(c) < threshold:
            continue
        d = (tgt.astype(np.float32) - srcs[i].astype(np.float32)).astype(bf16).astype(np.float32)
        g = 1 / (1 + np.exp(-(np.exp(-0.1 * (L - i)) * (d @ ws[i].astype(np.float32)))))
        acc += c * d * g
    return acc


def test_aggregation_runs_as_one_fused_kernel_and_matches_numpy():
    args = _random()
    out = multi_scale_delta_aggregation(*args)
    np.testing.assert_allclose(out, reference(*args), rtol=1e-5, atol=1e-5)
    ck = ts.compile(multi_scale_delta_aggregation, *args)
    assert ck.metadata["kernels"] == 1
    assert 'tessera.kernels = ["fused_delta_gating_3"]' in ck.asm["tile"]
    assert ck.asm["tile"].count("tessera.kernel,") + ck.asm["tile"].count("tessera.kernel}") == 1
    np.testing.assert_allclose(ck(*args), out, rtol=0, atol=0)


def test_pruned_connections_are_gone_from_the_result():
    srcs, tgt, ws, A = _random(seed=1)
    A[1, -1] = 0.004  # below the default threshold 0.01
    ck = ts.compile(multi_scale_delta_aggregation, srcs, tgt, ws, A, params={"attention_weights": A})
    assert "distances = array<f64: 3.000000e+00, 1.000000e+00>" in ck.asm["ts.opt"]
    out = ck(srcs, tgt, ws, A)
    np.testing.assert_allclose(out, reference(srcs, tgt, ws, A, threshold=0.01), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ck(srcs, tgt, ws), out)  # a bound parameter may be left out
    assert not np.allclose(out, reference(srcs, tgt, ws, A), atol=1e-4), "the pruned term must be absent"


def test_unsupported_graph_ops_say_so_at_the_users_line():
    @ts.function
    def plain(x, y):
        return ts.softmax(ts.add(x, y), axis=0)  # UNSUPPORTED-LINE

    x = np.zeros((4, 8), np.float32)
    with pytest.raises(ts.CompilationError, match="cannot run yet") as ei:
        plain(x, x)
    assert ei.value.line == next(i for i, l in enumerate(open(HERE), 1) if "UNSUPPORTED-LINE" in l)


def test_single_delta_connection_runs_and_matches_numpy():
    rng = np.random.default_rng(3)
    s = rng.standard_normal((2, 33, 16)).astype(bf16)
    t = rng.standard_normal((2, 33, 16)).astype(bf16)
    w = (rng.standard_normal((16, 16)) * 0.3).astype(bf16)
    out = delta_connection(s, t, w, 2)
    d = (t.astype(np.float32) - s.astype(np.float32)).astype(bf16).astype(np.float32)
    ref = d / (1 + np.exp(-(np.exp(-0.2) * (d @ w.astype(np.float32)))))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_elementwise_gemm_and_row_ops_run():
    @ts.function
    def block(x, w, b):
        h = ts.gemm(x, w) * 0.5 + b          # gemm, then one fused elementwise kernel (row-broadcast bias)
        p = ts.ops.softmax(h)
        n = ts.ops.l2_norm(h, axis=-1, keepdims=True)
        m = ts.mean(h, axis=-1)
        return ts.sigmoid(p) * ts.tanh(h) / n, m

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    w = rng.standard_normal((8, 12)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    y, m = block(x, w, b)
    h = (x @ w) * 0.5 + b
    e = np.exp(h - h.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    n = np.sqrt((h * h).sum(-1, keepdims=True))
    np.testing.assert_allclose(y, (1 / (1 + np.exp(-p))) * np.tanh(h) / n, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m, h.mean(-1), rtol=1e-5, atol=1e-6)
    ck = ts.compile(block, x, w, b)
    assert ck.metadata["kernels"] == 6  # gemm, fused elementwise, softmax, l2_norm, mean, fused elementwise


def test_graph_functions_compile_for_sm90a():
    from tessera.backends.nvidia.ptxas import find_ptxas
    try:
        find_ptxas()
    except ts.BackendUnavailable:
        pytest.skip("ptxas not found")
    ck = ts.compile(multi_scale_delta_aggregation, *_args(), target="sm_90a")
    assert len(ck.kernels) == 1 and ck.kernels[0].asm["cubin"][:4] == b"\x7fELF"
    assert ".target sm_90a" in ck.kernels[0].asm["ptx"]


def test_batched_gemm_runs():
    @ts.function
    def scores(q, k):
        return ts.gemm(q, k)

    rng = np.random.default_rng(5)
    q = rng.standard_normal((2, 3, 17, 8)).astype(np.float32)
    k = rng.standard_normal((2, 3, 8, 40)).astype(np.float32)
    np.testing.assert_allclose(scores(q, k), q @ k, rtol=1e-5, atol=1e-5)


def test_transposes_run_as_strided_copies():
    @ts.function
    def heads(x):
        split = ts.reshape(x, (2, 5, 3, 4))                 # [B, S, H, dh]
        return ts.transpose(split, [0, 2, 1, 3]), ts.transpose(x, [2, 0, 1])

    x = np.random.default_rng(6).standard_normal((2, 5, 12)).astype(np.float32)
    a, b = heads(x)
    np.testing.assert_array_equal(a, x.reshape(2, 5, 3, 4).transpose(0, 2, 1, 3))
    np.testing.assert_array_equal(b, x.transpose(2, 0, 1))


def test_stack_concatenate_and_leading_axis_reductions_run():
    @ts.function
    def pool(a, b, c):
        s = ts.stack([a, b, c], axis=0)          # reshape + concatenate
        return ts.mean(s, axis=0), ts.concatenate([a, c], axis=1), ts.sum(a, axis=1)

    rng = np.random.default_rng(8)
    a, b, c = (rng.standard_normal((4, 6, 8)).astype(np.float32) for _ in range(3))
    m, cat, s1 = pool(a, b, c)
    np.testing.assert_allclose(m, np.stack([a, b, c]).mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cat, np.concatenate([a, c], axis=1))
    np.testing.assert_allclose(s1, a.sum(1), rtol=1e-5, atol=1e-5)


def test_runtime_threshold_reaches_the_kernel():
    srcs, tgt, ws, A = _random(seed=9)
    A[:, -1] = np.array([0.3, 0.6, 0.2, 0.0], np.float32).astype(bf16)
    ck = ts.compile(multi_scale_delta_aggregation, srcs, tgt, ws, A,
                    pipeline="canonicalize,tessera-prune-sparse-deltas{threshold=0.5},tessera-fuse-delta-connections")
    assert "tessera.threshold = 5.000000e-01" in ck.asm["ts.opt"]
    np.testing.assert_allclose(ck(srcs, tgt, ws, A), reference(srcs, tgt, ws, A, threshold=0.5), rtol=1e-5, atol=1e-5)


def test_comparing_traced_tensors_is_a_located_error():
    @ts.function
    def branchy(x):
        if ts.sum(x, axis=-1) > 0:
            return x
        return x * 2.0

    with pytest.raises(ts.CompilationError, match="cannot be compared"):
        ts.compile(branchy, np.zeros((2, 4), np.float32))


def test_long_graphs_keep_every_temporary_distinct():
    """Each temporary of a plan gets its own slot however many there are (leading-axis reductions,
    broadcasts and elementwise results were once numbered from three overlapping counters), and two
    scalars read from tensors in one elementwise group get two kernel parameters."""
    @ts.function
    def chain(x, m):
        for _ in range(400):
            x = (x - ts.mean(x, axis=0)) * 0.5 + x * m[0, 2] + x * m[0, 1]
        return x

    rng = np.random.default_rng(10)
    x, m = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32) * 0.3
    ck = ts.compile(chain, x, m)
    written = [slot for st in ck.plan.steps for slot, _, _ in st.outs]
    assert len(written) == len(set(written)) > 1000
    want = x.astype(np.float64)
    for _ in range(400):
        want = (want - want.mean(axis=0)) * 0.5 + want * m[0, 2] + want * m[0, 1]
    np.testing.assert_allclose(ck(x, m), want, rtol=1e-4, atol=1e-5)


def test_values_nothing_uses_launch_no_kernel():
    """tessera-erase-dead-graph-ops in the default pipeline: a GEMM and softmax whose result the function
    drops are gone from ts.opt, and a call launches only the kernel of what it returns."""
    @ts.function
    def f(x, w):
        unused = ts.softmax(x @ w, axis=-1)  # noqa: F841
        return x * 2.0

    x, w = np.ones((4, 8), np.float32), np.ones((8, 8), np.float32)
    ck = ts.compile(f, x, w)
    assert "ts.gemm" in ck.asm["ts"] and "ts.gemm" not in ck.asm["ts.opt"]
    assert ck.metadata["kernels"] == 1
    np.testing.assert_array_equal(ck(x, w), x * 2.0)
