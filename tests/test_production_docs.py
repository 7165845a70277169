"""docs/production.md and examples/deploy_gdn_to_production.py: every python block of the guide runs as a
script, and the example runs end to end (compile, package, deploy, monitor, and `tessera serve` for 3 s with
requests, /metrics and SIGTERM; with --gpu --emulate its sm_80 / sm_90a variants run in the PTX emulator)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from docs_examples import blocks, run_script

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "production.md"
EXAMPLE = ROOT / "examples" / "deploy_gdn_to_production.py"


@pytest.mark.parametrize("code", blocks(DOC, "python"))
def test_docs_production_example_runs(code, tmp_path):
    # optional extras some blocks need: (text in the block, module)
    for marker, module in (('"onnx"', "onnx"), ("onnxruntime", "onnxruntime"), ("fastapi", "fastapi"),
                           ("TestClient", "httpx"), ("write_report", "matplotlib")):
        if marker in code:
            pytest.importorskip(module)
    run_script(code, tmp_path)


def test_docs_production_has_its_sections():
    text = DOC.read_text()
    for heading in ("## 1. Modules", "## 2. `ts.CompilationConfig`", "## 6. `GDNProductionCompiler`",
                    "## 8. `ts.DeploymentPackage`", "## 16. Seed 002 name"):
        assert heading in text, heading
    assert len(blocks(DOC, "python")) >= 10


def _run_example(tmp_path, *args, timeout=300):
    """The example in its own process group (killed with everything it started if it overruns)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--out", str(tmp_path / "out"), *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"the example did not finish within {timeout} s:\n{out[-5000:]}")
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
    assert proc.returncode == 0, f"the example failed (exit {proc.returncode}):\n{out[-5000:]}"
    return out


def test_example_deploys_and_serves(tmp_path):
    for module in ("onnx", "httpx", "fastapi", "uvicorn", "prometheus_client"):
        pytest.importorskip(module)
    out = _run_example(tmp_path, "--serve-seconds", "3")
    for line in ("compiled cpu_batch_1: target=cpu", "compiled cpu_batch_4: target=cpu",
                 "deployed: <DeployedModel gdn_chat on cpu: cpu_batch_1, cpu_batch_4>",
                 "inference: logits [3, 13, 32] via cpu_batch_4", 'health: {"status": "ok"',
                 "monitor: running=True", "infer: {\"model\": \"gdn_chat\"", "bad request: 422",
                 "8 concurrent one-row requests ran in batches of",
                 'tessera_serve_requests_total{status="200"}', "tessera_monitor_latency_seconds",
                 "tessera serve exited with 0 after SIGTERM (drained)",
                 "GDN model successfully deployed to production!", "result: {'model': '<DeployedModel"):
        assert line in out, f"{line!r} not in the output:\n{out}"
    package = tmp_path / "out" / "gdn_chat"
    assert (package / "manifest.json").is_file()
    assert (package / "variants" / "cpu_batch_4" / "model.onnx").is_file()


def test_example_gpu_variants_in_the_emulator(tmp_path):
    out = _run_example(tmp_path, "--gpu", "--emulate", "--batch-sizes", "1,2", "--no-onnx")
    for line in ("compiled sm_80_batch_1: target=sm_80", "compiled sm_90a_batch_2: target=sm_90a",
                 "emulated sm_80: sm_80 sm_80_batch_1 (1, 16, 32) True",
                 "emulated sm_90a: sm_90a sm_90a_batch_1 (1, 16, 32) True",
                 "GDN model successfully deployed to production!"):
        assert line in out, f"{line!r} not in the output:\n{out}"
