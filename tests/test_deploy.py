"""Deployment (DESIGN §15): GDNProductionCompiler variants, ONNX export of a compiled module run in
onnxruntime, DeploymentPackage save / load (safetensors weights, checksums, no mlir), ts.deploy and
DeployedModel (variant selection, padding, chunks, async), GPU variants run in the PTX emulator."""
import asyncio
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tessera.gdn import GDNConfig, GDNProductionCompiler, ProductionGDNModel, causal_lm_forward, init_params

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
CFG = GDNConfig(vocab_size=32, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                max_delta_distance=1, delta_hidden_size=8, gating_hidden_size=8)
SHAPES = {"input_ids": ["batch", 8], "attention_mask": ["batch", 8]}


@pytest.fixture(scope="module")
def params():
    return init_params(CFG, seed=1)


@pytest.fixture(scope="module")
def cpu_package(tmp_path_factory, params):
    model = ProductionGDNModel(CFG).load_gdn_params(params)
    variants = GDNProductionCompiler(target_architectures=["cpu"], export_formats=["onnx"]).compile_gdn_model(
        model, SHAPES, batch_sizes=[1, 4])
    assert sorted(variants) == ["cpu_batch_1", "cpu_batch_4"]
    package = ts.DeploymentPackage()
    for name, compiled in variants.items():
        package.add_variant(name=name, model=compiled, selection_criteria={"batch_size": compiled.batch_size})
    package.add_runtime_component("batch_scheduler", {"max_wait_ms": 5})
    directory = str(tmp_path_factory.mktemp("pkg") / "gdn")
    package.save(directory)
    return directory, variants


def _run_child(code, env=None, timeout=300):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                       env=dict(os.environ, **(env or {})))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_package_layout_and_manifest(cpu_package):
    directory, _ = cpu_package
    manifest = json.load(open(os.path.join(directory, "manifest.json")))
    assert [v["name"] for v in manifest["variants"]] == ["cpu_batch_1", "cpu_batch_4"]
    v = manifest["variants"][1]
    assert v["target"] == "cpu" and v["selection_criteria"] == {"batch_size": 4, "device": "cpu"}
    assert v["input_shapes"] == {"input_ids": [4, 8], "attention_mask": [4, 8]} and v["output_shape"] == [4, 8, 32]
    assert manifest["variants"][0]["weights"] == v["weights"]   # one weights file for variants of one dtype
    assert v["weights"].endswith(".safetensors") and v["onnx"].endswith("model.onnx")
    assert manifest["runtime_components"] == {"batch_scheduler": {"max_wait_ms": 5}}
    assert set(manifest["files"]) == {os.path.relpath(os.path.join(r, f), directory).replace(os.sep, "/")
                                      for r, _, fs in os.walk(directory) for f in fs} - {"manifest.json"}
    from safetensors.numpy import load_file
    weights = load_file(os.path.join(directory, v["weights"]))
    assert weights["lm_head.weight"].shape == (16, 32)


def test_deployed_model_runs_without_mlir(cpu_package, params, tmp_path):
    directory, _ = cpu_package
    out = tmp_path / "out.npz"
    _run_child(f"""
import sys, numpy as np, tessera as ts
model = ts.deploy(model_name="gdn", package={directory!r})
rng = np.random.default_rng(0)
ids3 = rng.integers(0, 32, (3, 5)).astype(np.int32)
ids6 = rng.integers(0, 32, (6, 8)).astype(np.int32)
mask = np.ones((3, 5), np.int32); mask[0, :2] = 0
a = model.inference({{"input_ids": ids3}})["logits"]
b = model.inference({{"input_ids": ids6}})["logits"]                   # over the largest variant: two chunks
c = model.inference({{"input_ids": ids3, "attention_mask": mask}})["logits"]
assert model.variant_for(1) == "cpu_batch_1" and model.variant_for(3) == "cpu_batch_4"
assert (model.max_batch_size, model.max_sequence_length, model.vocab_size) == (4, 8, 32)
assert "mlir" not in sys.modules, "loading and running a package imported mlir"
np.savez({str(out)!r}, a=a, b=b, c=c, ids3=ids3, ids6=ids6)
""")
    r = np.load(out)
    np.testing.assert_allclose(r["a"], causal_lm_forward(r["ids3"], params, CFG), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r["b"], causal_lm_forward(r["ids6"], params, CFG), rtol=1e-5, atol=1e-5)
    # a left-padded row's logits at its real tokens are those of the row alone (no position embeddings)
    np.testing.assert_allclose(r["c"][0, 2:], causal_lm_forward(r["ids3"][:1, 2:], params, CFG)[0], rtol=1e-5,
                               atol=1e-5)


def test_tampered_packages_are_refused(cpu_package, tmp_path):
    directory, _ = cpu_package
    for how in ("change", "extra", "missing"):
        copy = str(tmp_path / how)
        shutil.copytree(directory, copy)
        manifest = json.load(open(os.path.join(copy, "manifest.json")))
        weights = os.path.join(copy, manifest["variants"][0]["weights"])
        if how == "change":
            data = bytearray(open(weights, "rb").read())
            data[-3] ^= 0x01
            open(weights, "wb").write(bytes(data))
            match = "fails its checksum"
        elif how == "extra":
            open(os.path.join(copy, "variants", "evil.so"), "w").write("x")
            match = "not in the manifest"
        else:
            os.remove(weights)
            match = "is missing"
        with pytest.raises(ts.TesseraError, match=match) as ei:
            ts.DeploymentPackage.load(copy)
        assert ei.value.filename == HERE
        with pytest.raises(ts.TesseraError, match=match):
            ts.deploy(model_name="gdn", package=copy)


def test_deployed_model_checks_and_async(cpu_package, params, tmp_path):
    directory, variants = cpu_package
    model = ts.deploy(model_name="gdn", package=directory, auto_scaling=False)
    ids = np.random.default_rng(2).integers(0, 32, (2, 8)).astype(np.int32)
    out = asyncio.run(model.inference_async({"input_ids": ids}))["logits"]
    np.testing.assert_allclose(out, causal_lm_forward(ids, params, CFG), rtol=1e-5, atol=1e-5)
    assert model.health()["status"] == "ok"
    for bad, match in [({"input_ids": np.zeros((5, 8), np.int32)}, "largest variant takes 4"),
                       ({"input_ids": np.zeros((1, 9), np.int32)}, "at most 8"),
                       ({"input_ids": np.zeros((1, 8), np.float32)}, "integer array"),
                       ({"tokens": ids}, "'input_ids'")]:
        with pytest.raises(ts.TesseraError, match=match):
            model.inference(bad)
    # an in-memory package (compiled modules, not saved) deploys the same way
    package = ts.DeploymentPackage().add_variant(name="b4", model=variants["cpu_batch_4"])
    np.testing.assert_array_equal(ts.deploy(model_name="mem", package=package).inference({"input_ids": ids})["logits"],
                                  out)
    with pytest.raises(ts.TesseraError, match="already in the package"):
        package.add_variant(name="b4", model=variants["cpu_batch_4"])
    with pytest.raises(ts.TesseraError, match="JSON-serialisable"):
        package.add_runtime_component("memory_manager", object())
    # CompiledModule.export writes a one-variant package
    one = ts.DeploymentPackage.load(variants["cpu_batch_4"].export(str(tmp_path / "one")))
    assert list(one.variants) == ["cpu_batch_4"]
    np.testing.assert_array_equal(ts.deploy(model_name="one", package=one).inference({"input_ids": ids})["logits"], out)


def test_onnx_of_a_variant_runs_in_onnxruntime(cpu_package):
    import onnxruntime as ort
    directory, variants = cpu_package
    manifest = json.load(open(os.path.join(directory, "manifest.json")))
    entry = manifest["variants"][1]
    session = ort.InferenceSession(os.path.join(directory, entry["onnx"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    ids = np.random.default_rng(3).integers(0, 32, (4, 8)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, :3] = 0
    got = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(got, variants["cpu_batch_4"](ids, mask), rtol=1e-5, atol=1e-5)


def test_gpu_variants_compile_save_and_run_in_the_emulator(params, tmp_path):
    """sm_80 (bf16 policy) and sm_90a (fp8 weights, bf16 gating) variants: cubins from ptxas, saved, then
    deployed in a process without mlir whose TESSERA_BACKEND=emu runs their PTX in the emulator; the result
    equals the same policy's CPU compile (the reference for the rounding the policy asks for)."""
    model = ProductionGDNModel(CFG).load_gdn_params(params)
    compiler = GDNProductionCompiler(target_architectures=["sm_80", "sm_90"])    # the default formats: onnx
    variants = compiler.compile_gdn_model(model, SHAPES, batch_sizes=[2])
    assert sorted(variants) == ["sm_80_batch_2", "sm_90a_batch_2"]
    assert variants["sm_80_batch_2"].export_formats == ["onnx", "cubin"]
    assert variants["sm_90a_batch_2"].export_formats == ["cubin"]       # no fp8 in ONNX: cubins only
    for v in variants.values():
        assert v.cubins and all(isinstance(c, bytes) and c for c in v.cubins)
    package = ts.DeploymentPackage()
    for name, compiled in variants.items():
        package.add_variant(name=name, model=compiled)
    directory = str(tmp_path / "gpu")
    package.save(directory)
    ids = np.random.default_rng(4).integers(0, 32, (2, 8)).astype(np.int32)
    for arch in ("sm_80", "sm_90a"):
        out = tmp_path / f"{arch}.npy"
        _run_child(f"""
import sys, numpy as np, tessera as ts
model = ts.deploy(model_name="gdn", package={directory!r}, health_checks=False)
assert model.device == {arch!r}, model
np.save({str(out)!r}, model.inference({{"input_ids": np.array({ids.tolist()}, np.int32)}})["logits"])
assert "mlir" not in sys.modules
""", env={"TESSERA_BACKEND": "emu", "TESSERA_EMU_ARCH": arch})
        policy = compiler.get_numerics_policy(arch)
        cpu = ts.compile(model, input_shapes=SHAPES, config=ts.CompilationConfig(
            target_architecture="cpu", batch_size=2, numerics_policy=policy))
        np.testing.assert_allclose(np.load(out), cpu(ids, np.ones_like(ids)), rtol=2e-2, atol=2e-2)
