"""Saved plans: `CompiledFunction.save(dir)` and `tessera.runtime.load_plan(dir)` in a process that never
imports mlir (docs/saved_plans.md). The loaded plan runs the same machine code as the live one (the CPU
kernels' LLVM modules compiled ahead of time), so outputs agree to the last bits but for codegen noise."""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.gdn.model import GDNConfig, causal_lm_forward, init_params
from tessera.runtime import load, load_plan

from test_nvidia_compile import _have_ptxas

ROOT = Path(__file__).resolve().parents[1]

# the loading process: no tessera compiler, no mlir (asserted after the run)
CHILD = r"""
import sys, numpy as np
from tessera.runtime import load_plan
plan_dir, data = sys.argv[1], np.load(sys.argv[2])
n_list = int(data["n_list"])
args = [data["a0"]] + ([[data[f"l{i}"] for i in range(n_list)]] if n_list else [data[f"a{i}"] for i in range(1, int(data["n_args"]))])
got = load_plan(plan_dir)(*args)
got = got if isinstance(got, tuple) else (got,)
n_out = int(data["n_out"])
assert len(got) == n_out, (len(got), n_out)
for i, g in enumerate(got):
    want = data[f"out{i}"]
    assert g.shape == want.shape and g.dtype == want.dtype, (i, g.shape, want.shape, g.dtype, want.dtype)
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)
assert "mlir" not in sys.modules, sorted(m for m in sys.modules if "mlir" in m)[:5]
print("OK", n_out, int(data["single"]) == 1)
"""


@ts.function
def small(x, w, b):
    h = ts.add(ts.gemm(x, w), b)
    s = ts.ops.softmax(h, axis=-1)
    r = ts.sum(ts.multiply(s, s), axis=1)
    m = ts.mean(ts.exp(h), axis=0)   # a reduction over a leading axis (a transpose step)
    return s, r, m, ts.sum(ts.sum(h, axis=1), axis=0)   # the last one 0-d


CONFIG = GDNConfig(vocab_size=32, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                   max_delta_distance=2, delta_hidden_size=8, gating_hidden_size=8)


def _small_args():
    rng = np.random.RandomState(0)
    return (rng.randn(6, 16).astype(np.float32), rng.randn(16, 8).astype(np.float32),
            rng.randn(8).astype(np.float32))


def _run_child(plan_dir, data_path, env=None, rtol="1e-6", atol="1e-7"):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    code = CHILD.replace("rtol=1e-6, atol=1e-7", f"rtol={rtol}, atol={atol}")
    r = subprocess.run([sys.executable, "-c", code, str(plan_dir), str(data_path)], capture_output=True, text=True,
                       env=e, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _write_data(path, args, outs, list_arg=None):
    outs = outs if isinstance(outs, tuple) else (outs,)
    data = {f"a{i}": a for i, a in enumerate(args)}
    data.update({f"out{i}": o for i, o in enumerate(outs)}, n_out=len(outs), n_args=len(args),
                single=int(len(outs) == 1), n_list=len(list_arg or ()))
    data.update({f"l{i}": a for i, a in enumerate(list_arg or ())})
    np.savez(path, **data)


@pytest.fixture(scope="module")
def saved_small(tmp_path_factory):
    d = tmp_path_factory.mktemp("saved")
    args = _small_args()
    cf = ts.compile(small, *args, target="cpu")
    cf.save(d / "plan")
    outs = cf(*args)
    _write_data(d / "data.npz", args, outs)
    return d, cf, args, outs


def test_small_function_runs_in_a_process_without_mlir(saved_small):
    d, _, _, outs = saved_small
    assert _run_child(d / "plan", d / "data.npz").split() == ["OK", "4", "False"]
    m = json.loads((d / "plan" / "plan.json").read_text())
    assert m["result_layout"] == "tuple" and m["scalar_results"] == [3] and m["target"] == "cpu"
    assert any(a[0][0] == "perm" for s in m["steps"] for a in s["args"])   # a ("perm", axes) view, as lists
    assert all(Path(d / "plan" / k).is_dir() and list((d / "plan" / k).glob("*.so")) for k in m["kernels"])


def test_loaded_plan_matches_in_process_and_checks_arguments(saved_small):
    d, cf, args, outs = saved_small
    plan = load_plan(d / "plan")
    got = plan(*args)
    assert isinstance(got, tuple) and len(got) == 4 and got[3].shape == ()
    for g, w in zip(got, outs):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    assert plan.steps[0].args == cf.plan.steps[0].args   # slots and views decode to the same tuples
    assert [s.outs for s in plan.steps] == [[(sl, tuple(sh), np.dtype(dt)) for sl, sh, dt in s.outs] for s in cf.plan.steps]
    with pytest.raises(ts.ShapeError, match="argument 'x' has shape"):
        plan(args[0][:3], *args[1:])
    with pytest.raises(ts.DTypeError, match="argument 'w' has dtype float64"):
        plan(args[0], args[1].astype(np.float64), args[2])
    with pytest.raises(ts.TesseraError, match="missing argument 'b'"):
        plan(*args[:2])


def test_gdn_lm_runs_in_a_process_without_mlir(tmp_path):
    params = init_params(CONFIG)
    ids = np.random.RandomState(1).randint(0, CONFIG.vocab_size, (2, 5)).astype(np.int32)
    cf = ts.compile(causal_lm_forward, ids, params, CONFIG, target="cpu")
    logits = cf(ids, params, CONFIG)
    cf.save(tmp_path / "lm")
    _write_data(tmp_path / "data.npz", (ids,), logits, list_arg=params)
    assert _run_child(tmp_path / "lm", tmp_path / "data.npz").split() == ["OK", "1", "True"]
    plan = load_plan(tmp_path / "lm")
    np.testing.assert_allclose(plan(ids, params), logits, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(plan(ids, params, CONFIG), logits, rtol=1e-6, atol=1e-7)   # the same constant
    other = GDNConfig(**{**CONFIG.__dict__, "rms_eps": 1e-3})
    with pytest.raises(ts.TesseraError, match="was saved for config="):
        plan(ids, params, other)


def test_kernel_objects_need_only_libc_and_libm(saved_small):
    if shutil.which("nm") is None:
        pytest.skip("nm not found")
    d = saved_small[0]
    libc, libm = ctypes.CDLL(None), ctypes.CDLL("libm.so.6")
    for so in (d / "plan" / "kernels").glob("*/*.so"):
        out = subprocess.run(["nm", "-u", str(so)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            kind, name = line.split()[-2:]
            if kind != "U":
                continue   # weak references (__gmon_start__, ...) may stay unresolved
            name = name.split("@")[0]
            assert hasattr(libc, name) or hasattr(libm, name), f"{so.name} needs '{name}'"


def test_damaged_or_missing_kernel_object_is_a_clear_error(saved_small, tmp_path):
    src = saved_small[0] / "plan"
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    so = sorted(bad.glob("kernels/*/*.so"))[0]
    so.write_bytes(so.read_bytes()[:100])
    with pytest.raises(ts.TesseraError, match="was modified or damaged"):
        load_plan(bad)
    with pytest.raises(ts.TesseraError, match="cannot load the kernel object .*damaged"):
        load_plan(bad, verify=False)   # unverified: dlopen itself refuses the truncated object
    so.unlink()
    with pytest.raises(ts.TesseraError, match=f"{so.parent.name}/{so.name} is missing"):
        load_plan(bad)


def test_a_plan_with_a_host_step_is_refused_at_save(tmp_path):
    """A collective (ts.all_reduce, ...) is a host step (kernel None) running tessera.dist: not saveable. Its
    step is put into a compiled plan here, as tracing a real collective needs a distributed mesh."""
    from tessera.graph.collective_steps import HostStep
    args = _small_args()
    cf = ts.compile(small, *args, target="cpu")
    st = cf.plan.steps[0]
    real = list(cf.plan.steps)
    cf.plan.steps.insert(1, HostStep(lambda x: x, [("full", st.outs[0][0])], [(("tmp", 999),) + st.outs[0][1:]],
                                     "ts.all_reduce"))
    try:
        with pytest.raises(ts.TesseraError, match=r"host steps \(ts.all_reduce\)"):
            cf.save(tmp_path / "p")
    finally:
        cf.plan.steps[:] = real
    assert not (tmp_path / "p" / "plan.json").exists()


@ts.kernel
def divide_tiles(x: tile.Tensor["N", ts.i32], y: tile.Tensor["N", ts.i32], out: tile.Tensor["N", ts.i32],
                 BLOCK: ts.constexpr = 8):
    tile.store(out[0:BLOCK], tile.load(x[0:BLOCK]) // tile.load(y[0:BLOCK]))  # DIVIDE-HERE


def test_saved_cpu_kernel_reports_faults_at_the_source_line(tmp_path):
    x, y = np.arange(8, dtype=np.int32), np.ones(8, np.int32)
    ck = ts.compile(divide_tiles, x, y, np.zeros(8, np.int32), target="cpu")
    ck.save(tmp_path / "k")
    k = load(tmp_path / "k")
    out = np.zeros(8, np.int32)
    k[(1,)](x, y, out)
    np.testing.assert_array_equal(out, x)
    y[2] = 0
    with pytest.raises(ts.LaunchError, match="integer division by zero in kernel 'divide_tiles'") as e:
        k[(1,)](x, y, out)
    line = next(i for i, s in enumerate(Path(__file__).read_text().splitlines(), 1) if s.endswith("# DIVIDE-HERE"))
    assert (e.value.filename, e.value.line) == (__file__, line)


def test_no_c_compiler_is_a_clear_error(tmp_path, monkeypatch):
    x, y = np.arange(8, dtype=np.int32), np.ones(8, np.int32)
    ck = ts.compile(divide_tiles, x, y, np.zeros(8, np.int32), target="cpu")
    monkeypatch.setenv("TESSERA_CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(ts.BackendUnavailable, match="TESSERA_CC"):
        ck.save(tmp_path / "k")


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (CUDA toolkit or nvidia-cuda-nvcc)")
@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_gpu_plan_saves_cubins_that_load_and_emulate(target, saved_small, tmp_path):
    """No GPU here: the saved plan loads (cubins and manifest; nothing launches) and its saved PTX runs in the
    PTX emulator (TESSERA_BACKEND=emu) in a process without mlir, close to the CPU plan's outputs."""
    d, cf, args, _ = saved_small
    cf.save(tmp_path / "gpu", target=target)
    m = json.loads((tmp_path / "gpu" / "plan.json").read_text())
    assert m["target"] == target
    for k in m["kernels"]:
        name = json.loads((tmp_path / "gpu" / k / "manifest.json").read_text())["kernel"]
        assert (tmp_path / "gpu" / k / f"{name}.cubin").stat().st_size > 0
        assert (tmp_path / "gpu" / k / f"{name}.ptx").is_file()
    plan = load_plan(tmp_path / "gpu")
    assert plan.target == target and all(type(s.kernel).__name__ == "LoadedKernel" for s in plan.steps)
    with pytest.raises(ts.TesseraError, match="pass GPU"):
        plan(*args)
    if target == "sm_80":   # (one arch is enough for the numerics: the same plan, the other arch's kernels)
        out = _run_child(tmp_path / "gpu", d / "data.npz", env={"TESSERA_BACKEND": "emu"}, rtol="1e-4", atol="1e-5")
        assert out.split() == ["OK", "4", "False"]


def test_docs_example_runs(tmp_path):
    from docs_examples import DOCS, blocks, run_script
    (param,) = blocks(DOCS / "saved_plans.md", "python")
    code = param.values[0]
    run_script(code + "\nref = cf(x, w, b)\nassert all((p == r).all() for p, r in zip((probs, sums), ref))\n", tmp_path)
