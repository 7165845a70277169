"""ONNX export (tessera.exporters.export_onnx): each op family, the fused ops of ts.opt, the tiny GDN LM in
both aggregation modes, run in onnxruntime and compared with tessera; errors for what cannot be exported."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tessera.errors import CompilationError, TesseraError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from tessera.exporters import export_onnx  # noqa: E402

HERE = os.path.abspath(__file__)
RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _feed(session, args):
    """The session's inputs from the positional arguments (lists flattened, Python scalars skipped)."""
    arrays = []
    for a in args:
        if isinstance(a, (list, tuple)):
            arrays += list(a)
        elif isinstance(a, np.ndarray):
            arrays.append(a)
    names = [i.name for i in session.get_inputs()]
    assert len(names) == len(arrays)
    return dict(zip(names, arrays))


def run_onnx(path, args):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, _feed(session, args))


def check(tmp_path, fn, *args, stage="ts", rtol=1e-5, atol=1e-5, compile_kwargs=None, **export_kwargs):
    """Compile fn, export the stage, and compare onnxruntime's outputs with tessera's."""
    ck = ts.compile(fn, *args, **(compile_kwargs or {}))
    path = tmp_path / f"{fn.__name__}.onnx"
    model = export_onnx(ck, path, stage=stage, **export_kwargs)
    want = ck(*args)
    want = list(want) if isinstance(want, tuple) else [want]
    got = run_onnx(path, args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == np.shape(w) and g.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return ck, model


def op_types(model):
    return {n.op_type for n in model.graph.node}


# -- op families --------------------------------------------------------------------------------
@ts.function
def elementwise(x, y, v):
    a = ts.add(x, v) * 2.0 - ts.divide(y, 3.0)           # a [3] vector broadcast against [2, 3]; scalars
    b = ts.maximum(a, y) + ts.minimum(a, 0.5)
    c = ts.exp(x * 0.1) + ts.log(ts.sqrt(y * y + 1.0)) + ts.tanh(x) + ts.sigmoid(y) - ts.ops.silu(x)
    return b, c, -x, ts.ops.sigmoid_safe(b)


def test_elementwise_broadcast_and_unary(tmp_path):
    _, model = check(tmp_path, elementwise, rand(2, 3), rand(2, 3), rand(3))
    assert {"Add", "Sub", "Mul", "Div", "Max", "Min", "Exp", "Log", "Sqrt", "Tanh", "Sigmoid",
            "Expand"} <= op_types(model)


@ts.function
def casts(x, ids):
    as_int = ts.cast(x * 10.0, ts.i32)
    return ts.cast(as_int, ts.f32) + ts.cast(ids, ts.f32), ts.cast(x, ts.f64) * 2.0, ts.ops.one_hot(ids, 5)


def test_cast_and_one_hot(tmp_path):
    _, model = check(tmp_path, casts, rand(2, 3), RNG.integers(0, 5, (2, 3)).astype(np.int32))
    assert {"Cast", "Equal", "Where"} <= op_types(model)


@ts.function
def gemms(a, w, q, k):
    return ts.gemm(a, w), ts.gemm(q, k), ts.gemm(q, ts.transpose(q, [0, 1, 3, 2]))


def test_gemm_2d_and_batched(tmp_path):
    _, model = check(tmp_path, gemms, rand(4, 5), rand(5, 3), rand(2, 3, 4, 5), rand(2, 3, 5, 2))
    assert "MatMul" in op_types(model)


@ts.function
def gemm_f64(a, b):
    return ts.gemm(a, b) + 1.0


def test_gemm_f64(tmp_path):
    check(tmp_path, gemm_f64, rand(3, 4, dtype=np.float64), rand(4, 2, dtype=np.float64), rtol=1e-12, atol=1e-12)


@ts.function
def shapes(x, y):
    r = ts.reshape(x, (3, 8))
    t = ts.transpose(x, [2, 0, 1])
    s = x[:, 1:3] + x[0, 0:2]                             # a slice and an integer index (a squeezed axis)
    e = ts.expand_dims(y, 0)
    return r, t, s, ts.concatenate([y, y * 2.0], axis=1), ts.stack([y, y + 1.0], axis=0), e, x[1, 2, 3] * y


def test_reshape_transpose_slice_concat_stack(tmp_path):
    _, model = check(tmp_path, shapes, rand(2, 3, 4), rand(3, 4))
    assert {"Reshape", "Transpose", "Slice", "Squeeze", "Concat", "Gather"} <= op_types(model)


@ts.function
def reductions(x):
    return (ts.sum(x, axis=1), ts.mean(x, axis=-1, keepdims=True), ts.max(x, axis=0), ts.min(x, axis=[0, 2]),
            ts.ops.l2_norm(x, axis=-1), ts.ops.softmax(x))


def test_reductions_and_softmax(tmp_path):
    _, model = check(tmp_path, reductions, rand(2, 3, 4))
    assert {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2", "Softmax"} <= op_types(model)


def test_reductions_before_opset_18_take_axes_as_attributes(tmp_path):
    _, model = check(tmp_path, reductions, rand(2, 3, 4), opset=13)
    assert model.opset_import[0].version == 13


@ts.function
def softmax_first_axis(x):
    return ts.ops.softmax(x, axis=0)


def test_export_of_a_graph_tessera_cannot_run_yet(tmp_path):
    """tessera's executor runs softmax over the last axis only; the exported graph needs no executor."""
    x = rand(3, 4)
    export_onnx(ts.compile(softmax_first_axis, x), tmp_path / "softmax.onnx")
    e = np.exp(x - x.max(axis=0))
    np.testing.assert_allclose(run_onnx(tmp_path / "softmax.onnx", [x])[0], e / e.sum(axis=0), rtol=1e-5, atol=1e-6)


@ts.function
def whole_mean(x) -> ts.Tensor[(), ts.f32]:
    return ts.mean(x)


def test_zero_d_result_is_a_zero_d_output(tmp_path):
    ck, model = check(tmp_path, whole_mean, rand(3, 4))
    assert ck.traced.scalar_results == (0,)
    assert len(model.graph.output[0].type.tensor_type.shape.dim) == 0


@ts.function
def embed(ids, table):
    return ts.ops.embedding(ids, table) * 2.0


def test_embedding_gather_with_int32_ids(tmp_path):
    _, model = check(tmp_path, embed, RNG.integers(0, 10, (2, 5)).astype(np.int32), rand(10, 4))
    assert "Gather" in op_types(model)


# -- GDN ops, and the fused ops of the graph pipeline --------------------------------------------
@ts.function
def gating(delta, w, src, tgt):
    return ts.ops.gating_function(delta, w, 2), ts.ops.delta_connection(src, tgt, w, 3)


def test_gating_function_and_delta_connection(tmp_path):
    ck, _ = check(tmp_path, gating, rand(2, 4, 8), rand(8, 8), rand(2, 4, 8), rand(2, 4, 8))
    assert '"ts.gating_function"' in ck.asm["ts"] and '"ts.delta_connection"' in ck.asm["ts"]


@ts.function
def aggregation(sources: list, target, gates: list, weights):
    """Σ_i A[i, -1] · delta_connection(s_i, t, W_i, L - i) + t: fused into ts.fused_delta_gating in ts.opt."""
    out = target
    for i, (s, w) in enumerate(zip(sources, gates)):
        out = out + ts.ops.delta_connection(s, target, w, len(sources) - i) * weights[i, -1]
    return out


def _aggregation_args(coefficients):
    L = len(coefficients)
    weights = np.zeros((L, L), np.float32)
    weights[:, -1] = coefficients
    return [rand(2, 4, 8) for _ in range(L)], rand(2, 4, 8), [rand(8, 8) * 0.3 for _ in range(L)], weights


def test_fused_delta_gating_with_run_time_skipping(tmp_path):
    """Run-time weights: ts.opt has one sparse fused op, which skips |c| < threshold; exporting ts.opt
    reproduces that, exporting the traced graph computes every connection."""
    args = _aggregation_args([0.5, 0.004, -0.7])            # the middle one is below the 0.01 threshold
    ck, model = check(tmp_path, aggregation, *args, stage="ts.opt")
    assert '"ts.fused_delta_gating"' in ck.asm["ts.opt"] and "sparse = true" in ck.asm["ts.opt"]
    assert "Where" in op_types(model)
    sources, target, gates, weights = args
    export_onnx(ck, tmp_path / "traced.onnx")
    exact = run_onnx(tmp_path / "traced.onnx", args)[0]
    skipped_term = run_onnx(tmp_path / "aggregation.onnx", args)[0] - exact
    assert np.abs(skipped_term).max() > 0                    # the traced graph keeps the small connection


def test_fused_delta_gating_with_bound_weights_pruned(tmp_path):
    sources, target, gates, weights = _aggregation_args([0.5, 0.001, 0.7])
    ck = ts.compile(aggregation, sources, target, gates, weights, params={"weights": weights})
    export_onnx(ck, tmp_path / "pruned.onnx", stage="ts.opt")
    got = run_onnx(tmp_path / "pruned.onnx", [sources, target, gates])[0]
    np.testing.assert_allclose(got, ck(sources, target, gates), rtol=1e-5, atol=1e-5)


@ts.function
def gated_projection(x, w, m):
    return m * ts.sigmoid(ts.gemm(x, w) * 0.5)


def test_gemm_epilogue(tmp_path):
    ck, _ = check(tmp_path, gated_projection, rand(6, 8), rand(8, 4), rand(6, 4), stage="ts.opt",
                  compile_kwargs={"pipeline": "canonicalize,tessera-optimize-gating-networks"})
    assert '"ts.gemm_epilogue"' in ck.asm["ts.opt"]


def test_bf16_graph_with_f32_math_and_bf16_initializers(tmp_path):
    """The seed's bf16 multi-scale aggregation: onnxruntime's CPU provider has no bf16 Sub, so the export casts
    bf16 operands of elementwise nodes to f32 (low_precision_math="f32"); the bf16 arguments are stored as
    bf16 initializers (onnxruntime cannot take ml_dtypes arrays as inputs)."""
    import ml_dtypes
    from tessera.gdn.functions import multi_scale_delta_aggregation
    bf16 = ml_dtypes.bfloat16
    sources, target, gates = [rand(2, 4, 8).astype(bf16) for _ in range(3)], rand(2, 4, 8).astype(bf16), \
        [(0.3 * rand(8, 8)).astype(bf16) for _ in range(3)]
    weights = rand(4, 4).astype(bf16)
    ck = ts.compile(multi_scale_delta_aggregation, sources, target, gates, weights)
    want = ck(sources, target, gates, weights)
    values = dict(source_layers=sources, target_layer=target, gate_networks=gates, attention_weights=weights)
    for stage in ("ts", "ts.opt"):
        model = export_onnx(ck, tmp_path / "bf16.onnx", stage=stage, low_precision_math="f32", initializers=values)
        assert {t.data_type for t in model.graph.initializer} >= {onnx.TensorProto.BFLOAT16}
        session = ort.InferenceSession(str(tmp_path / "bf16.onnx"), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {})[0], want, rtol=1e-5, atol=1e-5)


# -- the tiny GDN causal LM ---------------------------------------------------------------------
@pytest.mark.parametrize("attention_deltas", [True, False])
def test_gdn_causal_lm(tmp_path, attention_deltas):
    from tessera.gdn.model import GDNConfig, causal_lm_forward, init_params, param_names
    cfg = GDNConfig(vocab_size=32, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                    max_delta_distance=2, delta_hidden_size=8, gating_hidden_size=8,
                    use_attention_deltas=attention_deltas)
    params = init_params(cfg)
    ids = RNG.integers(0, cfg.vocab_size, (2, 5)).astype(np.int32)
    ck = ts.compile(causal_lm_forward, ids, params, config=cfg)
    want = ck(ids, params, config=cfg)
    names = {f"params[{i}]": n for i, n in enumerate(param_names(cfg))}
    path = tmp_path / "gdn.onnx"
    model = export_onnx(ck, path, input_names=names, initializers={"params": params}, output_names=["logits"])
    assert [i.name for i in model.graph.input] == ["input_ids"]
    assert {t.name for t in model.graph.initializer} >= set(names.values())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, = session.run(["logits"], {"input_ids": ids})
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5)
    if attention_deltas:   # the parameters as graph inputs instead: the same logits
        export_onnx(ck, tmp_path / "inputs.onnx")
        np.testing.assert_allclose(run_onnx(tmp_path / "inputs.onnx", [ids, params])[0], want, rtol=1e-5, atol=1e-5)
    else:                  # the weights in a file beside the model
        export_onnx(ck, tmp_path / "external.onnx", initializers={"params": params}, external_data=True)
        stored = onnx.load(str(tmp_path / "external.onnx"), load_external_data=False).graph.initializer
        assert (tmp_path / "external.onnx.data").exists()
        assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in stored)
        np.testing.assert_allclose(run_onnx(tmp_path / "external.onnx", [ids])[0], want, rtol=1e-5, atol=1e-5)


@ts.function
def loss(x, w):
    return ts.mean(ts.sigmoid(ts.gemm(x, w)))


def test_value_and_grad_exports_as_flat_outputs(tmp_path):
    x, w = rand(4, 3), rand(3, 2)
    ck = ts.compile(ts.autodiff.value_and_grad(loss, argnums=1), x, w)
    export_onnx(ck, tmp_path / "grad.onnx", output_names=["loss", "d_w"])
    value, d_w = run_onnx(tmp_path / "grad.onnx", [x, w])
    want_value, want_d_w = ck(x, w)
    assert value.shape == ()
    np.testing.assert_allclose(value, want_value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_w, want_d_w, rtol=1e-5, atol=1e-6)


def test_docs_example_runs(tmp_path):
    from docs_examples import DOCS, blocks, run_script
    examples = blocks(DOCS / "export.md", "python")
    assert examples
    for example in examples:
        run_script(example.values[0], tmp_path)


# -- errors -------------------------------------------------------------------------------------
@ts.function
def with_dropout(x):
    return ts.ops.dropout(x, p=0.5, seed=1) + 1.0  # LINE-DROPOUT


def test_unmappable_op_is_a_located_error(tmp_path):
    ck = ts.compile(with_dropout, rand(4, 4))
    with pytest.raises(CompilationError) as info:
        export_onnx(ck, tmp_path / "x.onnx")
    line = next(i for i, text in enumerate(open(HERE), 1) if "LINE-DROPOUT" in text and "ts.ops" in text)
    msg = str(info.value)
    assert "'ts.dropout'" in msg and f"{HERE}:{line}:" in msg and "training=False" in msg
    assert "ts.ops.dropout(x, p=0.5, seed=1)" in msg      # the source line, under the position
    assert not (tmp_path / "x.onnx").exists()


def test_bad_names_and_initializers_are_errors(tmp_path):
    ck = ts.compile(gemm_f64, rand(3, 4, dtype=np.float64), rand(4, 2, dtype=np.float64))
    with pytest.raises(TesseraError, match="no arguments of the graph"):
        export_onnx(ck, input_names={"c": "C"})
    with pytest.raises(TesseraError, match="has shape"):
        export_onnx(ck, initializers={"b": np.zeros((2, 4))})
    with pytest.raises(TesseraError, match="output_names"):
        export_onnx(ck, output_names=["y", "z"])
    with pytest.raises(TesseraError, match="stage"):
        export_onnx(ck, stage="tile")
    with pytest.raises(TesseraError, match="ts.compile"):
        export_onnx(gemm_f64)


def test_import_tessera_does_not_import_onnx_or_mlir():
    code = ("import sys, tessera, tessera.exporters; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'mlir') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(HERE))})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
