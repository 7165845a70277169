"""ts.Module / ts.nn, @ts.export, ts.CompilationConfig, ts.NumericsPolicy, ts.optimizations and
ts.compile(module, ...) -> ts.CompiledModule (DESIGN §15, seed 002)."""
import os

import numpy as np
import pytest

import tessera as ts
from tessera.gdn import GDNConfig, TesseraGDNModel, ProductionGDNModel, causal_lm_forward, \
    causal_lm_forward_padded, init_params, padding_key_bias, param_names
from tessera.gdn.modules import gdn_to_module_name

HERE = os.path.abspath(__file__)
TINY = dict(vocab_size=32, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
            max_delta_distance=2, delta_hidden_size=8, gating_hidden_size=8)


class Block(ts.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = ts.nn.RMSNorm(d)
        self.proj = ts.nn.Linear(d, d, seed=3)
        self.gate = ts.nn.Sequential(ts.nn.Linear(d, d, seed=4), ts.nn.Sigmoid())
        self.scale = ts.nn.Parameter(np.full(d, 2.0, np.float32))

    def forward(self, x):
        return self.proj(self.norm(x)) * self.gate(x) * self.scale


def _block_reference(b, x):
    n = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6)
    g = 1 / (1 + np.exp(-(x @ b.gate[0].weight + b.gate[0].bias)))
    return (n @ b.proj.weight + b.proj.bias) * g * b.scale


def test_module_parameters_state_dict_and_compiled_call():
    b = Block(8)
    assert list(b.state_dict()) == ["scale", "norm.weight", "proj.weight", "proj.bias", "gate.0.weight", "gate.0.bias"]
    assert b.parameters()[0] is b.scale and b.parameter_count() == 8 + 8 + 64 + 8 + 64 + 8
    x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(b(x), _block_reference(b, x), rtol=1e-5, atol=1e-5)
    # parameters are graph inputs, not constants: updating one in place or by load_state_dict never retraces
    b.scale[:] = 3.0
    b.load_state_dict({"proj.bias": np.ones(8)}, strict=False)
    np.testing.assert_allclose(b(x), _block_reference(b, x), rtol=1e-5, atol=1e-5)
    from tessera.nn.module import module_function
    assert len(module_function(Block)._traced) == 1
    with pytest.raises(ts.ShapeError, match="'proj.weight' has shape"):
        b.load_state_dict({"proj.weight": np.ones((4, 4))}, strict=False)
    with pytest.raises(ts.TesseraError, match="unexpected"):
        b.load_state_dict({**b.state_dict(), "nope": np.ones(1)})


def test_jit_forward_binds_self_and_tied_weights_are_one_input():
    class Tied(ts.Module):
        def __init__(self):
            super().__init__()
            self.a = ts.nn.Linear(4, 4, bias=False)
            self.b = ts.nn.Linear(4, 4, bias=False)
            self.b.weight = ts.nn.Parameter(np.eye(4, dtype=np.float32))
            self.b._parameters["weight"] = self.a._parameters["weight"]    # tie b to a

        @ts.jit(input_shapes={"x": ["B", 4]})
        def forward(self, x):
            return self.b(self.a(x))
    t = Tied()
    x = np.ones((2, 4), np.float32)
    w = t.a.weight
    np.testing.assert_allclose(t.forward(x), x @ w @ w, rtol=1e-5)
    np.testing.assert_allclose(t(x), x @ w @ w, rtol=1e-5)
    assert list(t.state_dict()) == ["a.weight"]
    with pytest.raises(ts.ShapeError):
        t(np.ones((2, 5), np.float32))


@pytest.mark.parametrize("attention_deltas", [True, False])
def test_tessera_gdn_model_equals_the_graph_functions(attention_deltas):
    cfg = GDNConfig(**TINY, use_attention_deltas=attention_deltas)
    params = init_params(cfg, seed=1)
    model = TesseraGDNModel(cfg).load_gdn_params(params)
    assert sorted(model.state_dict()) == sorted(gdn_to_module_name(n) for n in param_names(cfg))
    assert model.gdn_params()[0] is model.embed_tokens.weight
    ids = np.random.default_rng(0).integers(0, 32, (2, 5)).astype(np.int32)
    np.testing.assert_array_equal(model(ids), causal_lm_forward(ids, params, cfg))
    mask = np.ones((2, 5), np.int32)
    mask[0, :2] = 0
    np.testing.assert_array_equal(model(ids, attention_mask=mask),
                                  causal_lm_forward_padded(ids, padding_key_bias(mask), params, cfg))


def test_export_and_module_decorators():
    assert ProductionGDNModel.__tessera_export__
    with pytest.raises(ts.TesseraError, match="ts.Module subclass"):
        ts.export(object)
    with pytest.raises(ts.TesseraError, match="defines no forward"):
        @ts.export
        class NoForward(ts.Module):
            pass


def test_compilation_config_fields():
    c = ts.CompilationConfig(target_architecture="sm_90", batch_size=8, optimization_level="aggressive",
                             delta_fusion=True, memory_optimization=True, enable_kernel_fusion=True)
    assert c.target_architecture == "sm_90a" and c.batch_size == 8
    mixed = ts.CompilationConfig(enable_mixed_precision=True, activation_dtype=ts.bf16, weight_dtype=ts.bf16,
                                 accumulation_dtype=ts.f32)
    assert mixed.numerics_policy == ts.NumericsPolicy(activation_dtype=ts.bf16, weight_dtype=ts.bf16)
    for bad, match in [(dict(target_architecture="sm_75"), "target_architecture must be one of"),
                       (dict(batch_size=0), "batch_size must be a positive int"),
                       (dict(weight_dtype=ts.bf16), "need enable_mixed_precision=True"),
                       (dict(max_memory_usage=1.5), "max_memory_usage must be a fraction"),
                       (dict(enable_attention_optimization=False), "cannot be switched off|is not supported")]:
        with pytest.raises(ts.CompilationError, match=match) as ei:
            ts.CompilationConfig(**bad)
        assert ei.value.filename == HERE
    with pytest.raises(ts.CompilationError, match="apply to ts.compile"):
        @ts.jit(compilation_config=ts.CompilationConfig(batch_size=4))
        def f(x):
            return x


def test_numerics_policy_roles_and_loss_scaling():
    p = ts.NumericsPolicy(activation_dtype=ts.bf16, weight_dtype=ts.bf16, gating_dtype=ts.f32, delta_dtype=ts.bf16,
                          gradient_scaling=True, loss_scaling=2 ** 10)
    assert p.role("layers.1.delta_networks.0.gate_network.0.weight") == "gating"
    assert p.role("layers.1.delta_networks.0.delta_proj.weight") == "delta"
    assert p.role("lm_head.weight") == "weight"
    assert p.loss_scaler().get_scale() == 2 ** 10
    assert ts.NumericsPolicy().loss_scaler() is None
    with pytest.raises(ts.CompilationError, match="accumulation_dtype must be ts.f32"):
        ts.NumericsPolicy(accumulation_dtype=ts.bf16)


def test_compile_module_variant_optimizations_and_policy():
    cfg = GDNConfig(**TINY)
    params = init_params(cfg, seed=1)
    model = ProductionGDNModel(cfg).load_gdn_params(params)
    ids = np.random.default_rng(1).integers(0, 32, (2, 6)).astype(np.int32)
    cm = ts.compile(model, input_shapes={"input_ids": ["batch", 6], "attention_mask": ["batch", 6]},
                    config=ts.CompilationConfig(batch_size=2))
    assert isinstance(cm, ts.CompiledModule) and cm.target == "cpu" and cm.batch_size == 2
    expected = causal_lm_forward(ids, params, cfg)
    np.testing.assert_array_equal(cm(input_ids=ids, attention_mask=np.ones_like(ids)), expected)
    np.testing.assert_array_equal(cm(ids, np.ones_like(ids)), expected)
    with pytest.raises(ts.ShapeError, match=r"compiled for \(2, 6\)") as ei:
        cm(ids[:1], np.ones_like(ids[:1]))
    assert ei.value.filename == HERE
    # the compiled module owns its parameters: the model's later changes do not reach it, update_parameters does
    info = cm.get_parameters()["lm_head.weight"]
    assert info.shape == (16, 32) and info.array is not model.lm_head.weight
    cm.update_parameters({"lm_head.weight": np.zeros((16, 32), np.float32)})
    np.testing.assert_array_equal(cm(ids, np.ones_like(ids)), 0.0)
    # optimisation objects add their passes; a bf16 weight policy runs within bf16 rounding
    opt = ts.optimizations.PruneSparseDeltas(threshold=0.05).apply(ts.optimizations.OptimizeGatingNetworks().apply(model))
    assert not hasattr(model, "_tessera_optimizations") or not model._tessera_optimizations
    cm2 = ts.compile(opt, input_shapes={"input_ids": ["batch", "seq"]},
                     config=ts.CompilationConfig(numerics_policy=ts.NumericsPolicy(weight_dtype=ts.bf16)))
    assert "tessera-prune-sparse-deltas{threshold=0.05}" in cm2._pipeline()
    assert "tessera-optimize-gating-networks" in cm2._pipeline()
    assert cm2.get_parameters()["lm_head.weight"].dtype.name == "bfloat16"
    np.testing.assert_allclose(cm2(ids), expected, rtol=0.05, atol=0.1)
    with pytest.raises(ts.TesseraError, match="Hopper"):
        ts.optimizations.UseTMAForDeltas().apply(model, ts.CompilationConfig(target_architecture="sm_80"))
    with pytest.raises(ts.TesseraError, match="clusters"):
        ts.optimizations.EnableClusterMode().apply(model, ts.CompilationConfig(target_architecture="sm_90a"))


def test_compile_module_errors_and_tensorrt_refused():
    model = ProductionGDNModel(GDNConfig(**TINY))
    with pytest.raises(ts.TesseraError, match="not an input of"):
        ts.compile(model, input_shapes={"tokens": ["batch", 4]})
    with pytest.raises(ts.BackendUnavailable, match="tensorrt package"):
        ts.compile(model, input_shapes={"input_ids": [1, 4]}, export_formats=["tensorrt"])
    with pytest.raises(ts.TesseraError, match="cubin.*GPU target"):
        ts.compile(model, input_shapes={"input_ids": [1, 4]}, config=ts.CompilationConfig(target_architecture="cpu"),
                   export_formats=["cubin"])
    with pytest.raises(ts.OutOfResources, match="max_memory_usage"):
        ts.compile(model, input_shapes={"input_ids": [1, 4]}, config=ts.CompilationConfig(max_memory_usage=1e-9))
