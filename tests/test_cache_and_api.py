"""ts.compile, specialisation, the in-memory and on-disk caches, and the lazy mlir import."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import tessera as ts
from tessera import tile


@ts.kernel
def scale(x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["M", "N", ts.f32], alpha: float,
          BLOCK_N: ts.constexpr = 32):
    row = tile.program_id(0)
    for n0 in tile.range(0, out.shape[1], BLOCK_N):
        tile.store(out[row, n0:n0 + BLOCK_N], tile.load(x[row, n0:n0 + BLOCK_N]) * alpha)


def test_compile_api_stages_and_metadata():
    x = np.zeros((4, 8), np.float32)
    ck = ts.compile(scale, x, x, 1.0, target="cpu", BLOCK_N=16)
    assert list(ck.asm) == ["tile", "llvm"]
    assert '"tile.view"' in ck.asm["tile"] and "scf.for" in ck.asm["tile"]
    assert "llvm.func @scale_grid" in ck.asm["llvm"]
    assert ck.metadata["args"] == [
        {"name": "x", "kind": "tensor", "dtype": "f32", "rank": 2},
        {"name": "out", "kind": "tensor", "dtype": "f32", "rank": 2},
        {"name": "alpha", "kind": "scalar", "dtype": "f32", "abi": "f32"}]
    # every tile op carries the user's location
    assert "test_cache_and_api.py" in ck.asm["tile"]
    out = np.zeros((3, 40), np.float32)
    xin = np.ones((3, 40), np.float32)
    ck[(3,)](xin, out, 2.5)
    assert (out == 2.5).all()


def test_in_memory_cache_and_specialisation():
    a = np.ones((2, 10), np.float32)
    o = np.zeros_like(a)
    ck1 = scale[(2,)](a, o, 1.0)
    ck2 = scale[(2,)](np.ones((5, 70), np.float32), np.zeros((5, 70), np.float32), 3.0)
    assert ck1 is ck2, "dims that are only used at run time do not specialise"
    ck3 = scale[(2,)](a, o, 1.0, BLOCK_N=8)
    assert ck3 is not ck1, "a different constexpr compiles again"
    ck4 = scale[(2,)](a.astype(np.float32), o, 1)
    assert ck4 is ck1


SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np, tessera as ts
    from tessera import tile

    @ts.kernel
    def twice(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 16):
        i = tile.program_id(0) * BLOCK
        tile.store(out[i:i + BLOCK], tile.load(x[i:i + BLOCK]) * 2.0)

    x = np.arange(40, dtype=np.float32)
    out = np.zeros_like(x)
    ck = twice[(3,)](x, out)
    assert (out == 2 * x).all(), out
    print(json.dumps({"disk": bool(ck.metadata.get("from_disk_cache"))}))
''')


def _run(tmp_path, cache_dir):
    script = tmp_path / "k.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, TESSERA_CACHE_DIR=str(cache_dir))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_disk_cache_across_processes(tmp_path):
    cache_dir = tmp_path / "cache"
    assert _run(tmp_path, cache_dir) == {"disk": False}
    assert _run(tmp_path, cache_dir) == {"disk": True}


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    cache_dir = tmp_path / "cache"
    _run(tmp_path, cache_dir)
    files = [p for p in cache_dir.rglob("kernel.llvm")]
    assert len(files) == 1
    files[0].write_text(files[0].read_text().replace("llvm.func", "llvm.fun", 1))
    assert _run(tmp_path, cache_dir) == {"disk": False}, "a corrupt entry must not be trusted"
    assert _run(tmp_path, cache_dir) == {"disk": True}


def test_import_tessera_does_not_import_mlir():
    code = ("import sys, tessera, tessera.runtime, tessera.tile, tessera.ops, tessera.runtime.autotune, "
            "tessera.runtime.tuning_db, tessera.runtime.recompile, tessera.runtime.prepared, tessera.runtime.native, "
            "tessera.runtime.cuda, tessera.runtime.artifact, tessera.tools.cli; print('mlir' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


def test_a_repeated_launch_skips_specialising_and_stays_exact(monkeypatch):
    """Launches with the signature of an earlier one (shapes, dtypes, strides, scalar values) reuse its compiled
    kernel without specialising again; anything that differs takes the full path, and a cleared in-memory
    cache is noticed."""
    calls = []
    real = scale.specialise

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(scale, "specialise", counting)
    x = np.arange(3 * 40, dtype=np.float32).reshape(3, 40)
    out = np.zeros_like(x)
    scale[(3,)](x, out, 2.0, BLOCK_N=16)
    first = len(calls)
    for _ in range(3):
        scale[(3,)](x, out, 2.0, BLOCK_N=16)
    assert len(calls) == first and np.array_equal(out, x * 2.0)
    scale[(3,)](x, out, 3.0, BLOCK_N=16)                 # another scalar value: the full path, the right result
    assert len(calls) > first and np.array_equal(out, x * 3.0)
    wide = np.ones((3, 80), np.float32)[:, ::2]          # other strides
    out2 = np.zeros((3, 40), np.float32)
    scale[(3,)](wide, out2, 1.5, BLOCK_N=16)
    assert np.array_equal(out2, np.full((3, 40), 1.5, np.float32))
    scale._compiled.clear()
    n = len(calls)
    scale[(3,)](x, out, 2.0, BLOCK_N=16)
    assert len(calls) > n and np.array_equal(out, x * 2.0)
