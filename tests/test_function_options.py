"""`@ts.function(...)` / `@ts.jit(...)` options are honoured or rejected, never ignored (issue 11):
input_shapes is checked at every call, compilation_config chooses the graph pipeline, and anything
else is a located CompilationError at the decorator."""
import os

import numpy as np
import pytest

import tessera as ts
from tessera import Tensor

HERE = os.path.abspath(__file__)


@ts.jit(input_shapes={"x": ["B", "D"], "w": ["D", "D"]})
def mixes(x, w):
    return ts.gemm(x, w)


def test_input_shapes_are_checked_at_the_call():
    x, w = np.ones((3, 4), np.float32), np.ones((4, 4), np.float32)
    np.testing.assert_allclose(mixes(x, w), x @ w)
    with pytest.raises(ts.ShapeError, match="dim 'D' is 4 in argument 'x' but 5 in argument 'w'"):
        mixes(x, np.ones((5, 5), np.float32))
    with pytest.raises(ts.ShapeError, match="argument 'x' has 3 dims, input_shapes gives 2"):
        mixes(np.ones((2, 3, 4), np.float32), w)


def _aggregation(config):
    @ts.jit(compilation_config=config)
    def aggregate(t: Tensor["R", "D", ts.bf16], s0: Tensor["R", "D", ts.bf16], s1: Tensor["R", "D", ts.bf16],
                  w0: Tensor["D", "D", ts.bf16], w1: Tensor["D", "D", ts.bf16]):
        acc = ts.zeros_like(t)
        for s, w, d in ((s0, w0, 2), (s1, w1, 1)):
            acc = ts.add(acc, ts.ops.delta_connection(s, t, w, d))
        return acc
    return aggregate


def test_compilation_config_chooses_the_pipeline():
    import ml_dtypes
    args = [np.zeros((8, 16), ml_dtypes.bfloat16)] * 3 + [np.zeros((16, 16), ml_dtypes.bfloat16)] * 2
    fused = ts.compile(_aggregation(ts.CompilationConfig()), *args)
    assert fused.asm["ts.opt"].count('"ts.fused_delta_gating"') == 1
    plain = ts.compile(_aggregation(ts.CompilationConfig(enable_delta_fusion=False)), *args)
    assert "ts.fused_delta_gating" not in plain.asm["ts.opt"]
    none = ts.compile(_aggregation(ts.CompilationConfig(optimization_level="none")), *args)
    assert "ts.fused_delta_gating" not in none.asm["ts.opt"]
    assert ts.CompilationConfig(optimization_level="aggressive").pipeline() == ts.CompilationConfig().pipeline()
    rng = np.random.default_rng(1)
    vals = [(rng.standard_normal(a.shape) * (0.2 if i >= 3 else 1)).astype(a.dtype) for i, a in enumerate(args)]
    np.testing.assert_allclose(np.asarray(plain(*vals), np.float32), np.asarray(fused(*vals), np.float32),
                               rtol=2e-2, atol=2e-2)


def test_unknown_options_are_located_errors():
    with pytest.raises(ts.CompilationError, match="unknown option cache") as ei:
        @ts.jit(cache=True)  # BAD-OPTION
        def f(x):
            return x
    assert ei.value.filename == HERE
    with pytest.raises(ts.CompilationError, match="enable_quantum_fusion not supported"):
        ts.CompilationConfig(enable_quantum_fusion=True)
    with pytest.raises(ts.CompilationError, match="enable_kernel_fusion=False is not supported"):
        ts.CompilationConfig(enable_kernel_fusion=False)
    with pytest.raises(ts.CompilationError, match="optimization_level must be one of"):
        ts.CompilationConfig(optimization_level="O3")
    with pytest.raises(ts.CompilationError, match="names 'y', which is not a parameter"):
        @ts.jit(input_shapes={"y": ["N"]})
        def g(x):
            return x
    with pytest.raises(ts.CompilationError, match="must be a ts.CompilationConfig"):
        @ts.jit(compilation_config={"optimization_level": "none"})
        def h(x):
            return x
