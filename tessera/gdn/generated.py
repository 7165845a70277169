"""Kernels generated from DSL templates (a variable number of tensor parameters, e.g. one per
delta-connection source). The source is written to a file under the cache directory and imported,
so it goes through the same frontend, caches and backends as hand-written kernels, and errors
point at readable generated code."""
from __future__ import annotations

import hashlib
import importlib.util
import os

from .. import knobs

_LOADED = {}


def load(name: str, source: str):
    """The kernel `name` defined by `source` (a module importing tessera as ts and tile)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    key = (name, digest)
    if key in _LOADED:
        return _LOADED[key]
    d = knobs.cache_dir() / "generated"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}_{digest}.py"
    if not path.exists():
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(f"tessera_generated_{name}_{digest}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _LOADED[key] = getattr(mod, name)
    return _LOADED[key]


HEADER = "import tessera as ts\nfrom tessera import tile\n\n\n"


def fused_delta_gating(n_sources: int, residual: bool, sparse: bool, coeff_kind: str):
    """Σ_i c_i · (t − s_i) · sigmoid(exp(−0.1·d_i) · ((t − s_i) @ W_i)) (+ t), one program per
    BLOCK_R rows of the [R, D] target: the target is read once, each source once, the output
    written once. With SPARSE, a connection whose |c_i| is below THRESH is skipped at run time."""
    n = n_sources
    srcs = ", ".join(f's{i}: tile.Tensor["R", "D"]' for i in range(n))
    ws = ", ".join(f'w{i}: tile.Tensor["D", "D"]' for i in range(n))
    dists = ", ".join(f"D{i}: ts.constexpr = 1.0" for i in range(n))
    cidx = ", ".join(f"C{i}: ts.constexpr = 0" for i in range(n))
    lines = [f"@ts.kernel",
             f'def fused_delta_gating_{n}(t: tile.Tensor["R", "D"], {srcs}, {ws}, coeffs: tile.Tensor["C"],',
             f'                           out: tile.Tensor["R", "D"], {dists}, {cidx},',
             f"                           BLOCK_R: ts.constexpr = 32, RESIDUAL: ts.constexpr = False,",
             f"                           SPARSE: ts.constexpr = False, THRESH: ts.constexpr = 0.01):",
             f"    ctx = tile.context()",
             f"    r0 = tile.program_id(0) * BLOCK_R",
             f"    tgt = tile.load(t[r0:r0 + BLOCK_R])",
             f"    acc = tile.zeros([BLOCK_R, ctx.D], ts.f32)"]
    for i in range(n):
        body = [f"x{i} = tile.load(s{i}[r0:r0 + BLOCK_R])",
                f"delta{i} = tgt - x{i}",
                f"gate{i} = ts.ops.sigmoid_safe(tile.mma(delta{i}, tile.load(w{i})) * ts.ops.distance_scaling(D{i}))",
                f"acc = acc + c{i} * tile.cast(delta{i}, ts.f32) * gate{i}"]
        lines.append(f"    c{i} = tile.cast(tile.load_scalar(coeffs[C{i}]), ts.f32)")
        if sparse:
            lines.append(f"    if tile.abs(c{i}) >= THRESH:")
            lines += ["        " + b for b in body]
        else:
            lines += ["    " + b for b in body]
    if residual:
        lines.append("    acc = acc + tile.cast(tgt, ts.f32)")
    lines.append("    tile.store(out[r0:r0 + BLOCK_R], acc)")
    del coeff_kind
    return load(f"fused_delta_gating_{n}", HEADER + "\n".join(lines) + "\n")
