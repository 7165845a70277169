"""tessera.optim (DESIGN §12, issue 12): SGD and AdamW against NumPy transcriptions of torch's formulas (f32 and
f64 to rounding, bf16 within one bf16 ulp), one kernel launch per step whatever the parameter sizes, the
learning rate as a runtime scalar (no recompile), checkpoints, clip_grad_norm_, LossScaler, located errors,
torch.optim itself when torch is installed, and the step kernels' PTX in the emulator (sm_80, sm_90a)."""
from __future__ import annotations

import math
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import optim
from tessera.optim import multi

BF16 = ml_dtypes.bfloat16
# sizes around the 1024-element block: one element, a partial block, several blocks with a ragged tail
SHAPES = [(3, 5), (2049,), (7, 300), ()]


def _params(rng, dtype, shapes=SHAPES):
    return [np.asarray(rng.standard_normal(s)).astype(dtype) for s in shapes]


# -- NumPy transcriptions of torch's update rules (computed in the state's dtype) --------------------------

def _adamw_ref(p, g, m, v, t, lr, betas, eps, wd):
    """torch.optim.AdamW's single-tensor step; p, g, m, v in the compute dtype D (f32 or f64)."""
    D = m.dtype.type
    b1, b2 = betas
    p = p * D(1 - lr * wd)
    w = D(1 - b1)
    m = m + w * (g - m) if abs(w) < 0.5 else g - (g - m) * (D(1) - w)
    v = v * D(b2) + D(1 - b2) * g * g
    denom = np.sqrt(v) / D(math.sqrt(1 - b2 ** t)) + D(eps)
    return p + D(-(lr / (1 - b1 ** t))) * m / denom, m, v


def _sgd_ref(p, g, buf, lr, momentum, wd, nesterov):
    D = p.dtype.type
    if wd:
        g = g + D(wd) * p
    if momentum:
        buf = g if buf is None else buf * D(momentum) + g
        g = g + D(momentum) * buf if nesterov else buf
    return p + D(-lr) * g, buf


def _compute(a):
    return a.astype(np.float64) if a.dtype == np.float64 else a.astype(np.float32)


TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, BF16], ids=["f32", "f64", "bf16"])
def test_adamw_against_torch_formulas(dtype):
    rng = np.random.default_rng(0)
    ps = _params(rng, dtype)
    ref = [_compute(p) for p in ps]
    ms = [np.zeros_like(r) for r in ref]
    vs = [np.zeros_like(r) for r in ref]
    opt = optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for t in range(1, 5):
        if t == 3:
            opt.lr = 3e-3                          # a scheduler's assignment between steps
        gs = _params(rng, dtype)
        opt.step(gs)
        for i, g in enumerate(gs):
            ref[i], ms[i], vs[i] = _adamw_ref(ref[i], _compute(g), ms[i], vs[i], t, opt.lr, (0.9, 0.99), 1e-8, 0.1)
            if dtype is BF16:
                ref[i] = ref[i].astype(BF16).astype(np.float32)   # written back rounded, read back next step
    for p, r in zip(ps, ref):
        assert p.dtype == np.dtype(dtype)
        if dtype is BF16:   # f32 math (FMA contraction or not) can round the other way: one bf16 ulp, rarely
            np.testing.assert_allclose(p.astype(np.float32), r, rtol=2 ** -7, atol=1e-6)
            assert np.mean(p.astype(np.float32) == r) > 0.98
        else:
            np.testing.assert_allclose(p, r, **TOL[dtype])
    sd = opt.state_dict()
    for m, r in zip(sd["exp_avg"], ms):
        np.testing.assert_allclose(m, r, rtol=1e-5, atol=1e-6)
        assert m.dtype == (np.float64 if dtype is np.float64 else np.float32)


def test_adamw_low_beta1_uses_torchs_other_lerp_form():
    rng = np.random.default_rng(1)
    ps = _params(rng, np.float32, [(40,), (3, 3)])
    ref = [p.copy() for p in ps]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    opt = optim.AdamW(ps, lr=0.05, betas=(0.3, 0.9), weight_decay=0.0)
    for t in (1, 2):
        gs = _params(rng, np.float32, [(40,), (3, 3)])
        opt.step(gs)
        for i, g in enumerate(gs):
            ref[i], ms[i], vs[i] = _adamw_ref(ref[i], g, ms[i], vs[i], t, 0.05, (0.3, 0.9), 1e-8, 0.0)
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p, r, **TOL[np.float32])


SGD_CASES = [dict(momentum=0.0, weight_decay=0.0, nesterov=False), dict(momentum=0.9, weight_decay=0.0, nesterov=False),
             dict(momentum=0.9, weight_decay=0.01, nesterov=True), dict(momentum=0.0, weight_decay=0.05, nesterov=False)]


@pytest.mark.parametrize("kw", SGD_CASES, ids=["plain", "momentum", "nesterov-wd", "wd"])
def test_sgd_against_torch_formulas(kw):
    rng = np.random.default_rng(2)
    ps = _params(rng, np.float32)
    ref = [p.copy() for p in ps]
    bufs = [None] * len(ps)
    opt = optim.SGD(ps, lr=0.1, **kw)
    for t in range(3):
        gs = _params(rng, np.float32)
        opt.step(gs)
        for i, g in enumerate(gs):
            ref[i], bufs[i] = _sgd_ref(ref[i], g, bufs[i], 0.1, kw["momentum"], kw["weight_decay"], kw["nesterov"])
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p, r, **TOL[np.float32])
    assert ("momentum_buffer" in opt.state_dict()) == (kw["momentum"] > 0)


@pytest.mark.parametrize("dtype", [np.float64, BF16, np.float16], ids=["f64", "bf16", "f16"])
def test_sgd_other_dtypes(dtype):
    rng = np.random.default_rng(3)
    ps = _params(rng, dtype)
    ref = [_compute(p) for p in ps]
    bufs = [None] * len(ps)
    opt = optim.SGD(ps, lr=0.05, momentum=0.5)
    for t in range(2):
        gs = _params(rng, dtype)
        opt.step(gs)
        for i, g in enumerate(gs):
            ref[i], bufs[i] = _sgd_ref(ref[i], _compute(g), bufs[i], 0.05, 0.5, 0.0, False)
            if dtype is not np.float64:   # 16-bit: f32 math, rounded when written back
                ref[i] = ref[i].astype(dtype).astype(np.float32)
    for p, r in zip(ps, ref):
        assert p.dtype == np.dtype(dtype)
        if dtype is not np.float64:
            np.testing.assert_allclose(p.astype(np.float32), r, rtol=2 ** -7 if dtype is BF16 else 2 ** -10, atol=1e-6)
        else:
            np.testing.assert_allclose(p, r, **TOL[np.float64])


@pytest.fixture
def counters(monkeypatch):
    """Launches of compiled kernels and compiles (compile_spec calls) while a test runs."""
    import tessera.compiler as compiler
    seen = {"launches": [], "compiles": 0}
    launch, compile_spec = compiler.CompiledKernel.launch, compiler.compile_spec

    def counting_launch(self, grid, args):
        seen["launches"].append((self.name, tuple(grid)))
        return launch(self, grid, args)

    def counting_compile(*a, **k):
        seen["compiles"] += 1
        return compile_spec(*a, **k)
    monkeypatch.setattr(compiler.CompiledKernel, "launch", counting_launch)
    monkeypatch.setattr(compiler, "compile_spec", counting_compile)
    return seen


def test_one_launch_per_step_and_lr_is_a_runtime_scalar(counters):
    rng = np.random.default_rng(4)
    ps = _params(rng, np.float32)
    opt = optim.AdamW(ps, lr=1e-3)
    opt.step(_params(rng, np.float32))
    assert len(counters["launches"]) == 1
    name, grid = counters["launches"][0]
    assert name.startswith("optim_adamw_f32")
    assert grid[0] == 1 + 3 + 3 + 1   # flat block index: one program per 1024 elements of each parameter
    from tessera.optim import kernels
    k = kernels.adamw("f32", False)
    compiled, variants, compiles = len(k._compiled), multi.compiled_count(), counters["compiles"]
    for t, lr in enumerate([5e-4, 1e-2, 0.0, 2e-3]):   # a schedule: every step another lr and bias correction
        opt.lr = lr
        opt.step(_params(rng, np.float32))
        assert len(counters["launches"]) == t + 2
    assert counters["compiles"] == compiles and len(k._compiled) == compiled and multi.compiled_count() == variants
    sgd = optim.SGD(ps, lr=0.1, momentum=0.9)
    n = len(counters["launches"])
    sgd.step(_params(rng, np.float32))
    assert len(counters["launches"]) == n + 1


def test_mixed_dtypes_one_launch_per_dtype(counters):
    rng = np.random.default_rng(5)
    ps = [rng.standard_normal(10).astype(np.float32), rng.standard_normal(5).astype(BF16),
          rng.standard_normal(7).astype(np.float32)]
    before = [p.astype(np.float32) for p in ps]
    gs = [np.ones_like(p) for p in ps]
    optim.SGD(ps, lr=0.5).step(gs)
    assert sorted(n.split("_")[2] for n, _ in counters["launches"]) == ["bf16", "f32"]
    for p, b in zip(ps, before):
        np.testing.assert_allclose(p.astype(np.float32), (b - 0.5).astype(p.dtype).astype(np.float32))


def test_fortran_ordered_parameter_and_c_ordered_gradient():
    rng = np.random.default_rng(6)
    p = np.asfortranarray(rng.standard_normal((6, 9)).astype(np.float32))
    g = rng.standard_normal((6, 9)).astype(np.float32)            # C order: read in p's (Fortran) order
    ref = p - np.float32(0.25) * g
    optim.SGD([p], lr=0.25).step([g])
    np.testing.assert_allclose(p, ref, rtol=1e-6)


def test_ragged_blocks_touch_nothing_outside_their_parameter():
    """Parameters that are adjacent slices of one buffer: each ragged last block is masked at its own
    parameter's end (the list table's per-element size), so neighbours and the guard stay intact."""
    buf = np.zeros(4096, np.float32)
    ps = [buf[0:5], buf[5:1030], buf[1030:1031], buf[1031:3100]]
    gs = [np.full(p.shape, float(i + 1), np.float32) for i, p in enumerate(ps)]
    optim.SGD(ps, lr=1.0).step(gs)
    for i, p in enumerate(ps):
        np.testing.assert_array_equal(p, -(i + 1.0))
    np.testing.assert_array_equal(buf[3100:], 0.0)


def test_state_dict_round_trip():
    rng = np.random.default_rng(7)
    ps = _params(rng, np.float32)
    grads = [_params(rng, np.float32) for _ in range(4)]
    opt = optim.AdamW(ps, lr=2e-3, weight_decay=0.05)
    opt.step(grads[0])
    opt.step(grads[1])
    sd = opt.state_dict()
    assert sd["step"] == 2 and sd["hyper"]["lr"] == 2e-3
    assert all(isinstance(a, np.ndarray) and a.shape == p.shape for a, p in zip(sd["exp_avg"], ps))
    twin = [p.copy() for p in ps]
    opt2 = optim.AdamW(twin, lr=1.0, weight_decay=0.0)
    opt2.load_state_dict(sd)
    assert opt2.lr == 2e-3 and opt2.weight_decay == 0.05 and opt2.step_count == 2
    for o in (opt, opt2):
        o.step(grads[2])
        o.step(grads[3])
    for a, b in zip(ps, twin):
        np.testing.assert_array_equal(a, b)
    sgd = optim.SGD([p.copy() for p in ps], lr=0.1, momentum=0.9)
    sgd.step(grads[0])
    sgd2 = optim.SGD([p.copy() for p in ps], lr=0.1, momentum=0.9)
    sgd2.load_state_dict(sgd.state_dict())
    for a, b in zip(sgd.state_dict()["momentum_buffer"], sgd2.state_dict()["momentum_buffer"]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ts.ShapeError, match=r"exp_avg'\[1\]"):
        opt2.load_state_dict({**sd, "exp_avg": [np.zeros((3, 5))] + [np.zeros(3)] * 3})


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_clip_grad_norm(norm_type):
    rng = np.random.default_rng(8)
    gs = [np.asarray(g * 3) for g in _params(rng, np.float32)]
    want = [g.astype(np.float64) for g in gs]
    per = [np.abs(g).max() if math.isinf(norm_type) else (np.abs(g) ** norm_type).sum() ** (1 / norm_type)
           for g in want]
    total = max(per) if math.isinf(norm_type) else sum(n ** norm_type for n in per) ** (1 / norm_type)
    got = optim.clip_grad_norm_(gs, max_norm=1.0, norm_type=norm_type)
    assert isinstance(got, float)
    assert got == pytest.approx(total, rel=1e-5)
    coef = 1.0 / (total + 1e-6)
    for g, w in zip(gs, want):
        np.testing.assert_allclose(g, w * coef, rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_below_threshold_and_other_dtypes():
    rng = np.random.default_rng(9)
    gs = [rng.standard_normal(s).astype(np.float64) * 1e-3 for s in [(4,), (1030,)]]
    keep = [g.copy() for g in gs]
    total = optim.clip_grad_norm_(gs, 10.0)
    assert total == pytest.approx(math.sqrt(sum((g ** 2).sum() for g in keep)), rel=1e-12)
    for g, k in zip(gs, keep):
        np.testing.assert_array_equal(g, k)
    b = [rng.standard_normal(300).astype(BF16), rng.standard_normal(20).astype(np.float32)]
    ref = [x.astype(np.float64) for x in b]
    total = optim.clip_grad_norm_(b, 0.5)
    assert total == pytest.approx(math.sqrt(sum((x ** 2).sum() for x in ref)), rel=1e-5)
    np.testing.assert_allclose(b[0].astype(np.float32), ref[0] * 0.5 / total, rtol=2 ** -7, atol=1e-6)
    assert optim.clip_grad_norm_([], 1.0) == 0.0
    nan = [np.array([1.0, np.nan], np.float32)]
    assert math.isnan(optim.clip_grad_norm_(nan, 1.0))


def test_loss_scaler_skips_on_inf_and_backs_off(counters):
    rng = np.random.default_rng(10)
    ps = _params(rng, np.float32)
    before = [p.copy() for p in ps]
    opt = optim.SGD(ps, lr=0.1)
    sc = optim.LossScaler(init_scale=2.0 ** 15, growth_interval=2)
    assert sc.scale(np.float32(0.5)) == 2.0 ** 14 and sc.scale(2.0) == 2.0 ** 16
    assert sc.scale(np.ones(2, np.float32)).dtype == np.float32
    gs = [np.asarray(g * np.float32(2 ** 15)) for g in _params(rng, np.float32)]
    gs[2][4, 100] = np.inf
    assert sc.step(opt, gs) is False              # unscaled (found inf) and skipped
    assert len(counters["launches"]) == 1 and counters["launches"][0][0].startswith("optim_scale_check")
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p, b)
    sc.update()
    assert sc.get_scale() == 2.0 ** 14 and sc.growth_tracker == 0
    for t in range(2):                            # two clean iterations: the scale grows back
        gs = [np.asarray(g * np.float32(sc.get_scale())) for g in _params(rng, np.float32)]
        want = [g / np.float32(sc.get_scale()) for g in gs]
        assert sc.unscale_(gs) is False
        for g, w in zip(gs, want):
            np.testing.assert_allclose(g, w, rtol=1e-6)
        with pytest.raises(ts.LaunchError, match="already unscaled"):
            sc.unscale_(gs)
        assert sc.step(opt, gs) is True           # no second unscale
        sc.update()
    assert sc.get_scale() == 2.0 ** 15 and sc.growth_tracker == 0
    nan = [np.array([np.nan, 1.0], np.float32)]
    assert sc.unscale_(nan) is True
    sc.update()
    assert sc.get_scale() == 2.0 ** 14
    with pytest.raises(ts.LaunchError, match="no inf checks"):
        sc.update()
    static = optim.LossScaler(init_scale=1024.0, dynamic=False)
    g = [np.array([np.inf], np.float32)]
    assert static.step(opt, g) is False
    static.update()
    assert static.get_scale() == 1024.0
    sd = sc.state_dict()
    other = optim.LossScaler()
    other.load_state_dict(sd)
    assert other.get_scale() == sc.get_scale() and other.growth_interval == 2


def test_bad_inputs_are_located_errors():
    rng = np.random.default_rng(11)
    ps = _params(rng, np.float32, [(3,), (4, 2)])
    opt = optim.AdamW(ps)
    with pytest.raises(ts.LaunchError, match="got 1 gradients for 2 parameters") as e:
        opt.step([np.zeros(3, np.float32)])
    assert e.value.filename == __file__
    with pytest.raises(ts.ShapeError, match=r"grads\[1\] has shape \(2, 4\), params\[1\] has \(4, 2\)"):
        opt.step([np.zeros(3, np.float32), np.zeros((2, 4), np.float32)])
    with pytest.raises(ts.DTypeError, match=r"grads\[0\] has dtype f64, params\[0\] has f32"):
        opt.step([np.zeros(3), np.zeros((4, 2), np.float32)])
    with pytest.raises(ts.LaunchError, match=r"grads\[0\] must be an array"):
        opt.step([[1.0, 2.0, 3.0], np.zeros((4, 2), np.float32)])
    with pytest.raises(ts.DTypeError, match=r"params\[1\] has dtype i32") as e:
        optim.SGD([ps[0], np.zeros(3, np.int32)], lr=0.1)
    assert e.value.filename == __file__
    with pytest.raises(ts.CompilationError, match="invalid learning rate"):
        optim.SGD(ps, lr=-0.1)
    with pytest.raises(ts.CompilationError, match="invalid learning rate"):
        opt.lr = float("nan")
    with pytest.raises(ts.CompilationError, match="beta parameter at index 1"):
        optim.AdamW(ps, betas=(0.9, 1.0))
    with pytest.raises(ts.CompilationError, match="Nesterov"):
        optim.SGD(ps, lr=0.1, nesterov=True)
    with pytest.raises(ts.CompilationError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ts.CompilationError, match="same array"):
        optim.SGD([ps[0], ps[0]], lr=0.1)
    with pytest.raises(ts.LaunchError, match="not contiguous"):
        optim.SGD([np.zeros((4, 6), np.float32)[:, ::2]], lr=0.1)
    with pytest.raises(ts.CompilationError, match="norm_type must be > 0"):
        optim.clip_grad_norm_(ps, 1.0, norm_type=0)
    with pytest.raises(ts.CompilationError, match="invalid max_norm"):
        optim.clip_grad_norm_(ps, -1.0)
    with pytest.raises(ts.CompilationError, match="backoff_factor"):
        optim.LossScaler(backoff_factor=1.5)
    assert opt.lr == 1e-3    # a rejected assignment leaves the old value


def test_import_does_not_load_mlir():
    code = "import sys, tessera, tessera.optim; print('mlir' in sys.modules, tessera.optim.AdamW.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "AdamW"]


def test_against_torch_optim():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    ps = _params(rng, np.float32)
    tp = [torch.nn.Parameter(torch.tensor(p.copy())) for p in ps]
    ours, theirs = optim.AdamW(ps, lr=1e-2, weight_decay=0.1), torch.optim.AdamW(tp, lr=1e-2, weight_decay=0.1)
    for t in range(3):
        gs = _params(rng, np.float32)
        for x, g in zip(tp, gs):
            x.grad = torch.tensor(g.copy())
        theirs.step()
        ours.step(gs)
    for p, x in zip(ps, tp):
        np.testing.assert_allclose(p, x.detach().numpy(), rtol=1e-5, atol=1e-6)
    gs = _params(rng, np.float32)
    tg = [torch.tensor(g.copy(), requires_grad=False) for g in gs]
    for x, g in zip(tp, tg):
        x.grad = g
    want = float(torch.nn.utils.clip_grad_norm_(tp, 1.0))
    assert optim.clip_grad_norm_(gs, 1.0) == pytest.approx(want, rel=1e-5)
    for g, x in zip(gs, tp):
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
def test_step_kernels_in_the_emulator(arch, monkeypatch):
    """The NVIDIA code of the step, clip and unscale kernels, run by the PTX emulator with its checks on
    (out-of-bounds lanes of the ragged last blocks included), agrees with the CPU backend."""
    rng = np.random.default_rng(13)
    shapes = [(5,), (1100,), (2, 3)]
    ps = _params(rng, np.float32, shapes)
    gs = [_params(rng, np.float32, shapes) for _ in range(2)]
    results = {}
    for backend in ("cpu", "emu"):
        monkeypatch.setenv("TESSERA_BACKEND", backend)
        monkeypatch.setenv("TESSERA_EMU_ARCH", arch)
        mine = [p.copy() for p in ps]
        grads = [[g.copy() for g in step] for step in gs]
        opt = optim.AdamW(mine, lr=1e-2)
        opt.step(grads[0])
        total = optim.clip_grad_norm_(grads[1], 0.5)
        opt.step(grads[1])
        results[backend] = mine, total
    for a, b in zip(results["cpu"][0], results["emu"][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert results["cpu"][1] == pytest.approx(results["emu"][1], rel=1e-6)
    from tessera.optim import kernels
    ck = ts.compile(kernels.adamw("f32", False), [ps[1]] * 3, [ps[1]] * 3, [ps[1]] * 3, [ps[1]] * 3,
                    np.zeros(4, np.int64), *[0.5] * 7, target=arch, STEPS=2)
    assert "tile.list_get" in ck.asm["tile"] and ".entry optim_adamw_f32" in ck.asm["ptx"]
