"""Compile-to-cubin artifacts: saved on a machine without a GPU, loaded without MLIR."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from test_nvidia_compile import SUITE, _have_ptxas


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found")
def test_save_and_load_without_mlir(tmp_path):
    kernel, args, ce = SUITE["gating_function_kernel"]
    ck = ts.compile(kernel, *args(), target="sm_90a", **ce)
    d = ck.save(tmp_path / "gating")
    manifest = json.loads((tmp_path / "gating" / "manifest.json").read_text())
    assert manifest["target"] == "sm_90a" and manifest["kernel"] == "gating_function_kernel"
    assert (tmp_path / "gating" / "gating_function_kernel.cubin").read_bytes()[:4] == b"\x7fELF"
    code = ("import sys, tessera.runtime as rt; k = rt.load(sys.argv[1]); "
            "print(k.name, k.target, len(k.cubin) > 0, 'mlir' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True)
    assert r.stdout.split() == ["gating_function_kernel", "sm_90a", "True", "False"], r.stderr


@pytest.mark.gpu
def test_saved_kernel_runs_on_gpu(tmp_path):
    import cupy as cp
    import ml_dtypes
    from tessera.gdn import gating_function_kernel, gating_function_reference
    bf16 = ml_dtypes.bfloat16
    rng = np.random.default_rng(0)
    delta = rng.standard_normal((2, 200, 64)).astype(bf16)
    w = (rng.standard_normal((64, 64)) * 0.1).astype(bf16)
    arch = "sm_90a" if cp.cuda.Device().compute_capability >= "90" else "sm_80"
    ck = ts.compile(gating_function_kernel, delta, w, 2, delta, target=arch)
    k = __import__("tessera.runtime", fromlist=["load"]).load(ck.save(tmp_path / "g"))
    out = cp.zeros(delta.shape, dtype=np.uint16)  # bf16 bit patterns (CuPy has no bfloat16)
    k[(2, 2)](cp.asarray(delta.view(np.uint16)), cp.asarray(w.view(np.uint16)), 2, out)
    ref = gating_function_reference(delta, w, 2)
    np.testing.assert_allclose(cp.asnumpy(out).view(bf16).astype(np.float32), ref, rtol=2e-2, atol=2e-2)


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found")
def test_tessera_aot_smoke_suite(tmp_path):
    from tessera.tools.cli import main
    assert main(["aot", "--suite", "smoke", "--out", str(tmp_path), "--target", "sm_80"]) == 0
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert suite["cases"] == ["vector_add", "row_softmax", "matmul_bf16_ragged", "matmul_bf16_128x128x64",
                              "gating_function_kernel"]
    for name in suite["cases"]:
        case = json.loads((tmp_path / name / "case.json").read_text())
        assert (tmp_path / name / "inputs.npz").exists() and case["has_expected"]
        assert json.loads((tmp_path / name / "manifest.json").read_text())["target"] == "sm_80"


@pytest.mark.gpu
def test_runtime_check_smoke_suite_on_gpu(tmp_path):
    import cupy as cp
    from tessera.tools.cli import main
    from tessera.runtime.check import main as check
    arch = "sm_90a" if int(cp.cuda.Device().compute_capability) >= 90 else "sm_80"
    assert main(["aot", "--suite", "smoke", "--out", str(tmp_path), "--target", arch]) == 0
    assert check([str(tmp_path)]) == 0
