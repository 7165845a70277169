"""The process-safe compile cache (several processes, corrupt entries), `tessera cache`, and the
recompile log (`TESSERA_LOG=recompile`, `ts.explain_recompiles()`)."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.runtime import cache, recompile
from tessera.tools.cli import main as cli

WORKER = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np
    start = sys.argv[1]
    while not os.path.exists(start):  # every worker compiles at the same moment
        time.sleep(0.01)
    import tessera as ts
    from tessera import tile

    @ts.kernel
    def shift(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 64):
        i = tile.program_id(0) * BLOCK
        tile.store(out[i:i + BLOCK], tile.load(x[i:i + BLOCK]) + 3.0)

    x = np.arange(200, dtype=np.float32)
    out = np.zeros_like(x)
    ck = shift[(4,)](x, out)
    assert (out == x + 3).all()
    print(json.dumps({"disk": bool(ck.metadata.get("from_disk_cache"))}))
''')


def _spawn(tmp_path, cache_dir, start, n):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, TESSERA_CACHE_DIR=str(cache_dir))
    return [subprocess.Popen([sys.executable, str(script), str(start)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(n)]


def _finish(procs):
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


def _entries(cache_dir):
    base = cache_dir / cache.LAYOUT / "kernels"
    return [e for sub in base.iterdir() for e in sub.iterdir()] if base.exists() else []


def test_processes_compiling_the_same_kernel_leave_one_valid_entry(tmp_path):
    cache_dir, start = tmp_path / "cache", tmp_path / "go"
    procs = _spawn(tmp_path, cache_dir, start, 4)
    time.sleep(0.5)
    start.touch()
    _finish(procs)
    entries = _entries(cache_dir)
    assert len(entries) == 1, entries  # no half-written or temporary directories left either
    assert not entries[0].name.startswith(".")
    key = entries[0].name
    old = os.environ.get("TESSERA_CACHE_DIR")
    os.environ["TESSERA_CACHE_DIR"] = str(cache_dir)
    try:
        assert cache.load(key) is not None  # every checksum holds
    finally:
        os.environ["TESSERA_CACHE_DIR"] = old
    # and a fresh process uses it
    again = _spawn(tmp_path, cache_dir, start, 1)
    assert _finish(again) == [{"disk": True}]


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "delete_file", "garbage_meta", "tampered_meta"])
def test_corrupt_entries_are_detected_and_rebuilt(tmp_path, damage):
    cache_dir, start = tmp_path / "cache", tmp_path / "go"
    start.touch()
    assert _finish(_spawn(tmp_path, cache_dir, start, 1)) == [{"disk": False}]
    entry = _entries(cache_dir)[0]
    target = entry / "kernel.llvm"
    if damage == "flip_byte":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "delete_file":
        target.unlink()
    elif damage == "garbage_meta":
        (entry / "meta.json").write_text("{not json")
    else:  # still valid JSON, but the launch ABI it describes was changed
        info = json.loads((entry / "meta.json").read_text())
        info["meta"]["num_warps"] = 8
        (entry / "meta.json").write_text(json.dumps(info))
    assert _finish(_spawn(tmp_path, cache_dir, start, 1)) == [{"disk": False}], "a corrupt entry must not be trusted"
    assert _finish(_spawn(tmp_path, cache_dir, start, 1)) == [{"disk": True}], "and it is rebuilt"


def test_cache_store_is_atomic_when_publishers_race(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    cache.store("ab" * 32, {"kernel.llvm": b"first"}, {"name": "k"})
    cache.store("ab" * 32, {"kernel.llvm": b"second"}, {"name": "k"})  # the first publisher wins
    files, meta = cache.load("ab" * 32)
    assert files == {"kernel.llvm": b"first"} and meta == {"name": "k"}
    assert [p.name for p in (tmp_path / cache.LAYOUT / "kernels" / "ab").iterdir()] == ["ab" * 32]


def test_cache_cli_list_info_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))

    @ts.kernel
    def neg(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32]):
        tile.store(out[0:16], -tile.load(x[0:16]))
    x = np.ones(16, np.float32)
    neg[(1,)](x, np.zeros_like(x))
    assert cli(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert "neg" in out and "cpu" in out and "1 compiled kernel(s)" in out
    key = next(line.split()[0] for line in out.splitlines() if " neg " in f" {line} ")
    assert cli(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "compiled kernels: 1" in out and str(tmp_path) in out
    assert cli(["cache", "info", key]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "neg" and info["checksums"] == "ok"
    assert cli(["cache", "clear"]) == 0
    assert "removed 1 compiled kernel(s)" in capsys.readouterr().out
    assert cache.entries() == []
    r = subprocess.run([sys.executable, "-m", "tessera.tools.cli", "cache", "info"], capture_output=True, text=True,
                       env=dict(os.environ, TESSERA_CACHE_DIR=str(tmp_path)))
    assert r.returncode == 0 and "compiled kernels: 0" in r.stdout, r.stderr


# -- recompile log ----------------------------------------------------------------------------------

@ts.kernel
def tile_sum(x: tile.Tensor["N", "K"], out: tile.Tensor["N"], BLOCK: ts.constexpr = 16):
    ctx = tile.context()
    i = tile.program_id(0) * BLOCK
    out_tile = tile.sum(tile.load(x[i:i + BLOCK, 0:ctx.K]), axis=1)  # a tile of K columns: K specialises
    tile.store(out[i:i + BLOCK], out_tile)


def test_recompile_log_names_what_changed(capfd, monkeypatch):
    monkeypatch.setenv("TESSERA_LOG", "recompile")
    recompile.reset()
    x = np.ones((32, 8), np.float32)
    tile_sum[(2,)](x, np.zeros(32, np.float32))
    tile_sum[(2,)](np.ones((64, 8), np.float32), np.zeros(64, np.float32))  # N is not specialised: no recompile
    assert capfd.readouterr().err.count("recompiled") == 0
    tile_sum[(2,)](np.ones((32, 4), np.float32), np.zeros(32, np.float32))             # a dim
    tile_sum[(2,)](np.ones((32, 4), np.float64), np.zeros(32, np.float64))             # dtypes
    tile_sum[(1,)](np.ones((32, 4), np.float64), np.zeros(32, np.float64), BLOCK=32)   # a constexpr
    tile_sum[(1,)](np.ones((32, 4), np.float64), np.zeros(32, np.float64), BLOCK=32, num_warps=8)  # an option
    err = capfd.readouterr().err
    assert err.count("recompiled") == 4, err
    report = ts.explain_recompiles(tile_sum)
    lines = report.splitlines()
    assert len(lines) == 4 and len(report.events) == 4
    assert "dim 'K' changed 8 -> 4" in lines[0]
    assert "dtype 'x' changed f32 -> f64" in lines[1] and "dtype 'out' changed f32 -> f64" in lines[1]
    assert "constexpr 'BLOCK' changed 16 -> 32" in lines[2]
    assert "option 'num_warps'" in lines[3]
    assert "test_runtime_cache.py" in lines[0]  # where the recompiling launch is
    # back to an earlier specialisation: a memory-cache hit, not a recompile
    tile_sum[(2,)](x, np.zeros(32, np.float32))
    assert len(ts.explain_recompiles(tile_sum).events) == 4
    assert "no recompilations" in ts.explain_recompiles("some_other_kernel")


def test_recompile_log_stride_class_for_tma():
    recompile.reset()

    @ts.kernel
    def copy2d(x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["M", "N", ts.f32]):
        tile.store(out[0:16, 0:16], tile.load(x[0:16, 0:16]))
    a = np.zeros((16, 16), np.float32)
    ts.compile(copy2d, a, a, target="sm_90a")
    wide = np.zeros((16, 32), np.float32)
    ts.compile(copy2d, wide[:, ::2], a, target="sm_90a")  # a non-unit inner stride: no TMA for x
    (event,) = ts.explain_recompiles(copy2d).events
    assert ("stride", "x", "TMA-compatible", "general") in event.changes


def test_recompile_log_last_dim_whole_chunks():
    recompile.reset()

    @ts.kernel
    def copy1d(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32]):
        tile.store(out[0:64], tile.load(x[0:64]))
    ts.compile(copy1d, np.zeros(64, np.float32), np.zeros(64, np.float32), target="sm_80")
    ts.compile(copy1d, np.zeros(62, np.float32), np.zeros(62, np.float32), target="sm_80")
    (event,) = ts.explain_recompiles(copy1d).events
    assert ("last dim", "x", "whole 16-byte chunks", "any length") in event.changes


NO_MLIR = textwrap.dedent('''
    import json, sys
    if sys.argv[1] == "block":
        sys.modules["mlir"] = None  # any import of mlir now fails
    import numpy as np
    import tessera as ts
    from tessera import tile

    @ts.kernel
    def empty(x: tile.Tensor["N", ts.f32], n: int):
        pass

    ck = ts.compile(empty, np.zeros(16, np.float32), 3, target="sm_90a")
    print(json.dumps({"disk": bool(ck.metadata.get("from_disk_cache")), "cubin": len(ck.asm["cubin"])}))
''')


def test_gpu_kernels_from_the_disk_cache_need_no_mlir(tmp_path):
    """A GPU host without the compiler runs kernels that a compiling machine left in the cache."""
    script = tmp_path / "k.py"
    script.write_text(NO_MLIR)
    env = dict(os.environ, TESSERA_CACHE_DIR=str(tmp_path / "cache"))

    def run(mode):
        r = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])
    first = run("compile")
    assert not first["disk"] and first["cubin"] > 0
    assert run("block") == {"disk": True, "cubin": first["cubin"]}


def test_recompile_log_for_graph_functions():
    recompile.reset()

    @ts.function
    def blend(xs, y, scale):
        return ts.sum([ts.multiply(x, y) for x in xs]) * scale
    a = np.ones((4, 8), np.float32)
    blend([a, a], a, 2.0)
    blend([a, a], a, 2.0)                     # same signature: cached
    blend([a, a, a], a, 2.0)                  # a longer list
    blend([a, a, a], a, 3.0)                  # a Python constant
    events = ts.explain_recompiles(blend).events
    assert len(events) == 2, events
    assert ("length", "xs", 2, 3) in events[0].changes
    assert ("param", "scale", "2.0", "3.0") in events[1].changes
