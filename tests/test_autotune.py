"""@ts.kernel.autotune: configs compiled, over-budget ones rejected before timing, every timing in
the SQLite database, the choice reused by a new process; prepared launches on the CPU backend."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.runtime.tuning_db import TuningDB


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(d))
    return d


def _scale_kernel():
    @ts.kernel.autotune(space=dict(BLOCK_N=[32, 128], num_warps=[4, 8]), key=["M", "N"])
    def scale(x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["M", "N", ts.f32], alpha: float,
              BLOCK_N: ts.constexpr):
        row = tile.program_id(0)
        for n0 in tile.range(0, out.shape[1], BLOCK_N):
            tile.store(out[row, n0:n0 + BLOCK_N], tile.load(x[row, n0:n0 + BLOCK_N]) * alpha)
    return scale


def test_autotune_times_every_config_and_stores_it(cache_dir, capfd):
    scale = _scale_kernel()
    x = np.random.default_rng(0).random((6, 300), dtype=np.float32)
    out = np.zeros_like(x)
    ck = scale[lambda meta: (meta.M,)](x, out, 2.0)  # the grid from the launch's meta-parameters
    np.testing.assert_allclose(out, 2 * x, rtol=1e-6)
    results = scale.last_tuning
    assert sorted((c["BLOCK_N"], c["num_warps"]) for c, _, _, _ in results) == [(32, 4), (32, 8), (128, 4), (128, 8)]
    assert all(status == "ok" and ms > 0 for _, ms, status, _ in results)
    fastest = min(results, key=lambda r: r[1])[0]
    assert ck.metadata["constexprs"]["BLOCK_N"] == fastest["BLOCK_N"]
    assert ck.metadata["num_warps"] == fastest["num_warps"]
    stored = scale.tuned((x, out, 2.0))
    assert len(stored) == 4 and stored[0][0] == fastest
    assert (cache_dir / "autotune.sqlite3").exists()
    err = capfd.readouterr().err
    assert "autotune scale" in err and "4/4" in err  # the progress bar
    # same key: no second tuning run in this process
    scale.last_tuning = None
    scale[lambda meta: (meta.M,)](x, out, 3.0)
    assert scale.last_tuning is None
    np.testing.assert_allclose(out, 3 * x, rtol=1e-6)
    # another key: tuned again
    x2 = np.ones((3, 70), np.float32)
    out2 = np.zeros_like(x2)
    scale[lambda meta: (meta.M,)](x2, out2, 2.0)
    assert scale.last_tuning is not None and (out2 == 2).all()


PROCESS = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tessera as ts
    from tessera import tile

    @ts.kernel.autotune(space=dict(BLOCK=[16, 64]), key=["N"])
    def twice(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr):
        i = tile.program_id(0) * BLOCK
        tile.store(out[i:i + BLOCK], tile.load(x[i:i + BLOCK]) * 2.0)

    x = np.arange(100, dtype=np.float32)
    out = np.zeros_like(x)
    ck = twice[lambda m: ((m.N + m.BLOCK - 1) // m.BLOCK,)](x, out)
    assert (out == 2 * x).all()
    print(json.dumps({"tuned": twice.last_tuning is not None, "block": ck.metadata["constexprs"]["BLOCK"]}))
''')


def test_tuning_results_are_reused_by_a_new_process(tmp_path):
    script = tmp_path / "tune.py"
    script.write_text(PROCESS)
    env = dict(os.environ, TESSERA_CACHE_DIR=str(tmp_path / "cache"))

    def run():
        r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr

    first, err1 = run()
    second, err2 = run()
    assert first["tuned"] and "autotune twice" in err1
    assert not second["tuned"] and "autotune twice" not in err2
    assert second["block"] == first["block"]
    rows = TuningDB(tmp_path / "cache" / "autotune.sqlite3").rows()
    assert len(rows) == 2 and {json.loads(r[4])["BLOCK"] for r in rows} == {16, 64}


def _smem_kernel():
    @ts.kernel.autotune(space=dict(BLOCK=[512, 32], num_warps=[4, 64]), key=["N"])
    def staged(x: tile.Tensor["N", "K", ts.f32], out: tile.Tensor["N", "K", ts.f32], BLOCK: ts.constexpr):
        buf = tile.alloc_shared([BLOCK, 128], ts.f32)  # BLOCK=512: 256 KiB, over every target's budget
        r0 = tile.program_id(0) * BLOCK
        tile.cp_async(buf, x[r0:r0 + BLOCK, 0:128])
        tile.cp_commit_group()
        tile.cp_wait_group(0)
        tile.barrier()
        tile.store(out[r0:r0 + BLOCK, 0:128], tile.load(buf) + 1.0)
    return staged


def test_over_budget_configs_are_rejected_before_timing(cache_dir, monkeypatch):
    """The tuner's own loop for sm_90a (compiled here through ptxas); only the timer is replaced,
    since there is no GPU to time on: it must only ever see configs that fit."""
    staged = _smem_kernel()
    x = np.zeros((256, 128), np.float32)
    out = np.zeros_like(x)
    timed = []

    def fake_time(ck, grid, runtime_args, target):
        timed.append((ck.metadata["constexprs"]["BLOCK"], ck.metadata["num_warps"]))
        return 1.0 / ck.metadata["num_warps"]
    monkeypatch.setattr(staged, "_time", fake_time)
    staged.db = TuningDB()
    best = staged._tune((x, out), {}, "sm_90a", {"N": 256}, "test-device", (8,), staged.configs)
    assert timed == [(32, 4)], timed
    assert best == {"BLOCK": 32, "num_warps": 4}
    status = {(c["BLOCK"], c["num_warps"]): (st, reason) for c, _, st, reason in staged.last_tuning}
    assert status[(512, 4)][0] == "rejected" and "shared memory" in status[(512, 4)][1]
    assert status[(32, 64)][0] == "rejected" and "2048 threads" in status[(32, 64)][1]
    rows = staged.db.results(staged.kernel._source_key, {"N": 256}, "test-device", __import__("tessera.compiler").compiler.COMPILER_ID)
    assert [st for _, _, st, _ in rows].count("rejected") == 3 and rows[0][2] == "ok"


def test_compile_of_an_autotuned_kernel_takes_the_first_config_that_fits(cache_dir):
    staged = _smem_kernel()
    x = np.zeros((256, 128), np.float32)
    ck = ts.compile(staged, x, np.zeros_like(x), target="sm_90a")
    assert ck.metadata["autotune_config"] == {"BLOCK": 32, "num_warps": 4}
    assert "cubin" in ck.asm
    with pytest.raises(ts.OutOfResources, match="no config"):
        ts.compile(staged, x, np.zeros_like(x), target="sm_90a", BLOCK=512)


def test_context_only_tuning_names_and_bad_spaces(cache_dir):
    @ts.kernel.autotune(space=dict(BLOCK_B=[8, 16]), key=["N"])
    def fill(out: tile.Tensor["N", ts.f32]):
        ctx = tile.context()  # the seeds read tuned values through the context
        i = tile.program_id(0) * ctx.BLOCK_B
        tile.store(out[i:i + ctx.BLOCK_B], tile.full([ctx.BLOCK_B], 1.0, ts.f32))
    out = np.zeros(40, np.float32)
    fill[lambda m: ((m.N + m.BLOCK_B - 1) // m.BLOCK_B,)](out)
    assert (out == 1).all()

    with pytest.raises(ts.CompilationError, match="names no dim or parameter"):
        @ts.kernel.autotune(space=dict(BLOCK=[1]), key=["Q"])
        def bad(x: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr):
            pass
    with pytest.raises(ts.CompilationError, match="tensor parameter"):
        @ts.kernel.autotune(space=dict(x=[1]))
        def bad2(x: tile.Tensor["N", ts.f32]):
            pass


def test_restore_value_between_timing_runs(cache_dir):
    @ts.kernel.autotune(space=dict(BLOCK=[8, 32]), key=["N"], restore_value=["acc"])
    def bump(acc: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr):
        i = tile.program_id(0) * BLOCK
        tile.store(acc[i:i + BLOCK], tile.load(acc[i:i + BLOCK]) + 1.0)
    acc = np.zeros(64, np.float32)
    bump[lambda m: ((m.N + m.BLOCK - 1) // m.BLOCK,)](acc)
    assert (acc == 1).all(), "tuning runs must not leave their updates behind"


# -- prepared launches (CPU backend) --------------------------------------------------------------

@ts.kernel
def axpy(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32], a: float, BLOCK: ts.constexpr = 32):
    i = tile.program_id(0) * BLOCK
    tile.store(y[i:i + BLOCK], tile.load(y[i:i + BLOCK]) + a * tile.load(x[i:i + BLOCK]))


def test_prepared_launch_packs_once_and_sees_new_contents():
    x = np.arange(70, dtype=np.float32)
    y = np.zeros_like(x)
    h = axpy.prepare(x, y, 2.0, grid=(3,))
    h()
    np.testing.assert_allclose(y, 2 * x)
    x[:] = 1.0  # same buffers, new contents
    h()
    np.testing.assert_allclose(y, 2 * np.arange(70) + 2.0)
    y[:] = 0
    axpy[(3,)].prepare(x, y, 1.0)(grid=(1,))  # another grid for the same packed arguments
    assert (y[:32] == 1).all() and (y[32:] == 0).all()
    ck = ts.compile(axpy, x, y, 1.0)
    y[:] = 0
    ck.prepare(x, y, 5.0, grid=lambda m: ((m.N + m.BLOCK - 1) // m.BLOCK,))()
    assert (y == 5).all()
    with pytest.raises(ts.LaunchError, match="no grid"):
        axpy.prepare(x, y, 1.0)()
    with pytest.raises(ts.ShapeError):
        axpy.prepare(x, y[:10], 1.0, grid=(1,))


def test_prepared_launch_of_an_autotuned_kernel(cache_dir):
    scale = _scale_kernel()
    x = np.ones((4, 50), np.float32)
    out = np.zeros_like(x)
    h = scale[lambda m: (m.M,)].prepare(x, out, 4.0)  # tunes first (on this grid)
    out[:] = 0
    h()
    assert (out == 4).all()


@pytest.mark.gpu
def test_autotune_on_the_gpu(cache_dir):
    import cupy as cp
    scale = _scale_kernel()
    x = cp.random.random((64, 4096), dtype=cp.float32)
    out = cp.zeros_like(x)
    scale[lambda m: (m.M,)](x, out, 2.0)
    cp.testing.assert_allclose(out, 2 * x, rtol=1e-6)
    assert len(scale.last_tuning) == 4 and all(st == "ok" for _, _, st, _ in scale.last_tuning)
    assert scale.tuned((x, out, 2.0))[0][1] > 0


def test_num_ctas_is_a_cluster_launch_on_sm_90a_only():
    x = np.zeros(64, np.float32)
    ck = ts.compile(axpy, x, x, 1.0, target="sm_90a", num_ctas=2)
    assert ck.metadata["cluster"] == [2, 1, 1]
    assert ts.compile(axpy, x, x, 1.0, target="sm_90a").metadata["cluster"] == [1, 1, 1]
    with pytest.raises(ts.CompilationError, match="needs sm_90a"):
        ts.compile(axpy, x, x, 1.0, target="sm_80", num_ctas=2)
    with pytest.raises(ts.CompilationError, match="num_ctas must be"):
        ts.compile(axpy, x, x, 1.0, target="sm_90a", num_ctas=32)


@pytest.mark.gpu
def test_cluster_launch_on_the_gpu():
    import cupy as cp
    if cp.cuda.Device().compute_capability != "90":
        pytest.skip("clusters need sm_90")
    x = cp.arange(256, dtype=cp.float32)
    y = cp.zeros_like(x)
    axpy[(8,)](x, y, 2.0, num_ctas=2)
    cp.testing.assert_allclose(y, 2 * x)
    with pytest.raises(ts.CompilationError, match="whole number of clusters"):
        axpy[(3,)](x, y, 2.0, num_ctas=2)


def test_config_lists_and_stacking_on_ts_kernel(cache_dir):
    @ts.kernel.autotune(configs=[{"BLOCK": 16, "num_warps": 4}, {"BLOCK": 64, "num_warps": 8}], key=["N"])
    @ts.kernel
    def inc(x: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr):
        i = tile.program_id(0) * BLOCK
        tile.store(x[i:i + BLOCK], tile.load(x[i:i + BLOCK]) + 1.0)
    assert inc.configs == [{"BLOCK": 16, "num_warps": 4}, {"BLOCK": 64, "num_warps": 8}]
    x = np.zeros(100, np.float32)
    inc.restore_value = ["x"]
    inc[lambda m: ((m.N + m.BLOCK - 1) // m.BLOCK,)](x)
    assert (x == 1).all() and len(inc.last_tuning) == 2


def test_keywords_fix_space_entries_and_compile_errors_stay_compile_errors(cache_dir):
    from tessera.runtime import recompile
    recompile.reset()
    scale = _scale_kernel()
    x = np.ones((2, 40), np.float32)
    out = np.zeros_like(x)
    ck = scale[lambda m: (m.M,)](x, out, 2.0, BLOCK_N=32)  # tuned over num_warps only
    assert ck.metadata["constexprs"]["BLOCK_N"] == 32
    assert sorted(c["num_warps"] for c, _, _, _ in scale.last_tuning) == [4, 8]
    assert all(c["BLOCK_N"] == 32 for c, _, _, _ in scale.last_tuning)
    assert (out == 2).all()
    assert ts.explain_recompiles(scale.kernel).events == [], "compiling each config while tuning is not a recompile"

    @ts.kernel.autotune(space=dict(BLOCK=[8, 16]), key=["N"])
    def broken(x: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr):
        tile.store(x[0:BLOCK], undefined_name)  # noqa: F821
    with pytest.raises(ts.CompilationError, match="undefined_name") as err:
        broken[(1,)](np.zeros(8, np.float32))
    assert not isinstance(err.value, ts.OutOfResources)
    with pytest.raises(ts.CompilationError, match="undefined_name"):
        ts.compile(broken, np.zeros(8, np.float32), target="sm_90a")

    with pytest.raises(ts.CompilationError, match="restore_value"):
        ts.kernel.autotune(space=dict(BLOCK=[8]), restore_value=["nope"])(broken.kernel.fn)
    with pytest.raises(ts.CompilationError, match="names what is being tuned"):
        ts.kernel.autotune(space=dict(BLOCK=[8]), key=["BLOCK"])(broken.kernel.fn)


def test_a_compiled_autotuned_kernel_launches_with_its_config(cache_dir):
    @ts.kernel.autotune(space=dict(BLOCK=[16, 64]), key=["N"])
    def twice(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr):
        i = tile.program_id(0) * BLOCK
        tile.store(out[i:i + BLOCK], tile.load(x[i:i + BLOCK]) * 2.0)
    x = np.arange(100, dtype=np.float32)
    out = np.zeros_like(x)
    ck = ts.compile(twice, x, out)
    ck[lambda m: ((m.N + m.BLOCK - 1) // m.BLOCK,)](x, out)  # BLOCK comes from the compiled config
    assert (out == 2 * x).all()
    with pytest.raises(ts.CompilationError, match="compiled with BLOCK=16, not 64"):
        ck[(2,)](x, out, BLOCK=64)
    with pytest.raises(ts.CompilationError, match="compiled with num_warps=4, not 8"):
        ck[(7,)](x, out, num_warps=8)


@ts.kernel
def reads_launch_options(out: tile.Tensor["N", ts.f32]):
    ctx = tile.context()
    code = ctx.num_warps * 100 + ctx.num_stages * 10 + ctx.num_ctas
    tile.store(out[0:2], tile.zeros([2], ts.f32) + tile.cast(code, ts.f32))


def test_context_reads_the_launch_options(cache_dir):
    """DESIGN §4: `ctx.num_warps` / `ctx.num_stages` (and the other launch options) are the values the
    variant is compiled for, as compile-time constants; unset ones take the launch defaults."""
    out = np.zeros(2, np.float32)
    reads_launch_options[(1,)](out, num_warps=8, num_stages=2)
    assert out[0] == 821
    reads_launch_options[(1,)](out)
    assert out[0] == 431
    with pytest.raises(ts.CompilationError, match="launch options"):
        @ts.kernel
        def unknown(out: tile.Tensor["N", ts.f32]):
            tile.store(out[0:2], tile.zeros([2], ts.f32) + tile.context().num_threads)
        unknown[(1,)](out)
