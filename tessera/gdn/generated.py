"""Kernels generated from DSL templates (a variable number of tensor parameters, e.g. one per
delta-connection source). The source is written to a file under the cache directory and imported,
so it goes through the same frontend, caches and backends as hand-written kernels, and errors
point at readable generated code."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import uuid
from pathlib import Path

from .. import knobs
from ..runtime import cache

_LOADED = {}
_PRIVATE = None


def load(name: str, source: str):
    """The kernel `name` defined by `source` (a module importing tessera as ts and tile)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    key = (name, digest)
    if key in _LOADED:
        return _LOADED[key]
    path = _written(f"{name}_{digest}.py", source)
    spec = importlib.util.spec_from_file_location(f"tessera_generated_{name}_{digest}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _LOADED[key] = getattr(mod, name)
    return _LOADED[key]


def _written(filename: str, source: str) -> Path:
    """A file holding exactly `source`: the one under the cache directory, rewritten when it is
    missing or differs (a different file there is quarantined), else one in a private temporary
    directory when the cache directory cannot hold it."""
    d = knobs.cache_dir() / "generated"
    if cache.ensure_dir(d):
        path = d / filename
        try:
            if path.read_text() == source:
                return path
        except (OSError, ValueError):
            pass
        if not os.path.lexists(path) or cache.quarantine(path, "not-a-file" if path.is_dir() else "checksum"):
            if _replace(path, source):
                return path
    global _PRIVATE
    if _PRIVATE is None:  # the generated code still needs a file: tracebacks and the frontend read it
        _PRIVATE = Path(tempfile.mkdtemp(prefix="tessera-generated-"))
    path = _PRIVATE / filename
    if not path.exists():
        path.write_text(source)
    return path


def _replace(path: Path, source: str) -> bool:
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex}")
    try:
        tmp.write_text(source)
        os.replace(tmp, path)
        return True
    except OSError:
        return False
    finally:
        if os.path.lexists(tmp):
            cache.remove(tmp)


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


def fused_delta_gating_grad(n_sources: int, sparse: bool):
    """The backward pass of fused_delta_gating (without its residual, whose gradient is dy itself), one
    kernel: for each row block, each source i: δ = t − s_i, g = σ(k_i · δ @ W_i), dz = c_i · dy · δ · g(1 − g) · k_i,
    dδ = c_i · dy · g + dz @ W_iᵀ; d s_i = −dδ, d t = Σ_i dδ; the cross-row sums d W_i = Σ δᵀ @ dz and
    d c_i = Σ dy · δ · g accumulate in the one program, which walks every row block (no atomics needed, and
    the weights' gradients stay in registers). With SPARSE, a connection whose |c_i| is below THRESH
    contributes nothing, as in the forward pass."""
    n = n_sources
    srcs = ", ".join(f's{i}: tile.Tensor["R", "D"]' for i in range(n))
    ws = ", ".join(f'w{i}: tile.Tensor["D", "D"]' for i in range(n))
    dsrcs = ", ".join(f'ds{i}: tile.Tensor["R", "D"]' for i in range(n))
    dws = ", ".join(f'dw{i}: tile.Tensor["D", "D"]' for i in range(n))
    dists = ", ".join(f"D{i}: ts.constexpr = 1.0" for i in range(n))
    cidx = ", ".join(f"C{i}: ts.constexpr = 0" for i in range(n))
    lines = ["@ts.kernel",
             f'def fused_delta_gating_grad_{n}(t: tile.Tensor["R", "D"], {srcs}, {ws}, coeffs: tile.Tensor["C"],',
             f'                                dy: tile.Tensor["R", "D"], dt: tile.Tensor["R", "D"], {dsrcs}, {dws},',
             f'                                dc: tile.Tensor["N"], {dists}, {cidx}, BLOCK_R: ts.constexpr = 32,',
             "                                SPARSE: ts.constexpr = False, THRESH: ts.constexpr = 0.01):",
             "    ctx = tile.context()"]
    for i in range(n):
        lines += [f"    c{i} = tile.cast(tile.load_scalar(coeffs[C{i}]), ts.f32)",
                  f"    k{i} = ts.ops.distance_scaling(D{i})",
                  f"    W{i} = tile.cast(tile.load(w{i}), ts.f32)",
                  f"    gw{i} = tile.zeros([ctx.D, ctx.D], ts.f32)",
                  f"    gc{i} = 0.0"]
        if sparse:   # a skipped connection: no gradient anywhere
            lines.append(f"    c{i} = tile.where(tile.abs(c{i}) >= THRESH, c{i}, 0.0)")
    lines += ["    for r0 in tile.range(0, t.shape[0], BLOCK_R):",
              "        tgt = tile.cast(tile.load(t[r0:r0 + BLOCK_R]), ts.f32)",
              "        g_out = tile.cast(tile.load(dy[r0:r0 + BLOCK_R]), ts.f32)",
              "        g_t = tile.zeros([BLOCK_R, ctx.D], ts.f32)"]
    for i in range(n):
        lines += [f"        delta = tgt - tile.cast(tile.load(s{i}[r0:r0 + BLOCK_R]), ts.f32)",
                  f"        gate = ts.ops.sigmoid_safe(tile.mma(delta, W{i}) * k{i})",
                  f"        dz = g_out * delta * gate * (1.0 - gate) * (c{i} * k{i})",
                  f"        d_delta = g_out * gate * c{i} + tile.mma(dz, W{i}.T)",
                  f"        tile.store(ds{i}[r0:r0 + BLOCK_R], 0.0 - d_delta)",
                  "        g_t = g_t + d_delta",
                  f"        gw{i} = tile.mma(delta.T, dz, gw{i})",
                  f"        gc{i} = gc{i} + tile.sum(g_out * delta * gate)"]
    lines.append("        tile.store(dt[r0:r0 + BLOCK_R], g_t)")
    for i in range(n):
        lines.append(f"    tile.store(dw{i}[0:ctx.D, 0:ctx.D], gw{i})")
        if sparse:
            lines.append(f"    gc{i} = tile.where(tile.abs(tile.cast(tile.load_scalar(coeffs[C{i}]), ts.f32)) >= THRESH, gc{i}, 0.0)")
        lines.append(f"    tile.store(dc[{i}], gc{i})")
    return load(f"fused_delta_gating_grad_{n}", HEADER + "\n".join(lines) + "\n")
