"""DSL templates for the kernels graph functions run on: elementwise fusion groups, GEMMs with an
optional sigmoid epilogue, last-axis reductions / softmax / l2-norm, gating and delta connections.
Every tensor is seen as a row-major [rows, last-dim] matrix."""
from __future__ import annotations

import hashlib

from ..gdn.generated import HEADER, load

ROWS = 'tile.Tensor["R", "C"]'


def _name(prefix, body):
    return f"{prefix}_{hashlib.sha256(body.encode()).hexdigest()[:10]}"


def elementwise(inputs, scalars, lines, outputs):
    """inputs: [(name, kind)] with kind "full" | "row" ([1, C]) | "col" ([R, 1]); scalars: [name] (1-element-per-index tensors
    read with load_scalar at constexpr index I_<name>); lines: DSL statements computing values;
    outputs: [(name, value)]."""
    params = []
    for n, kind in inputs:
        params.append({"full": f'{n}: tile.Tensor["R", "C"]', "row": f'{n}: tile.Tensor["RB_{n}", "C"]',
                       "col": f'{n}: tile.Tensor["R", "CB_{n}"]'}[kind])
    params += [f"{n}: tile.Tensor" for n in scalars]
    params += [f'{n}: tile.Tensor["R", "C"]' for n, _ in outputs]
    params += [f"I_{n}: ts.constexpr = 0" for n in scalars]
    params += ["BLOCK_R: ts.constexpr = 4", "BLOCK_C: ts.constexpr = 128"]
    body = ["    r0 = tile.program_id(0) * BLOCK_R", "    c0 = tile.program_id(1) * BLOCK_C"]
    for n, kind in inputs:
        rows = "0:1" if kind == "row" else "r0:r0 + BLOCK_R"
        cols = "0:1" if kind == "col" else "c0:c0 + BLOCK_C"
        body.append(f"    v_{n} = tile.load({n}[{rows}, {cols}])")
    for n in scalars:
        body.append(f"    v_{n} = tile.load_scalar({n}[I_{n}])")
    body += ["    " + ln for ln in lines]
    for n, v in outputs:
        body.append(f"    tile.store({n}[r0:r0 + BLOCK_R, c0:c0 + BLOCK_C], {v})")
    src = "\n".join(body)
    name = _name("elementwise", src + repr(params))
    return load(name, HEADER + f"@ts.kernel\ndef {name}({', '.join(params)}):\n{src}\n")


def gemm(epilogue: bool, has_scale: bool):
    """c[R, N] = a[R, K] @ b[K, N] (f32 accumulation); with the epilogue: m · sigmoid(s · (a @ b))."""
    extra = (", m: tile.Tensor[\"R\", \"N\"]" if epilogue else "") + (", s: tile.Tensor" if has_scale else "")
    lines = ["    pm, pn = tile.program_id(0), tile.program_id(1)",
             "    acc = tile.zeros([BM, BN], ts.f32)",
             "    for k0 in tile.range(0, a.shape[1], BK):",
             "        acc = tile.mma(tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK]),",
             "                       tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN]), acc)"]
    if epilogue:
        if has_scale:
            lines.append("    acc = acc * tile.cast(tile.load_scalar(s[0]), ts.f32)")
        lines.append("    acc = ts.ops.sigmoid_safe(acc) * tile.load(m[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN])")
    lines.append("    tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)")
    name = f"gemm{'_epilogue' if epilogue else ''}{'_scaled' if has_scale else ''}"
    src = (f'@ts.kernel\ndef {name}(a: tile.Tensor["R", "K"], b: tile.Tensor["K", "N"], c: tile.Tensor["R", "N"]{extra},\n'
           f"         BM: ts.constexpr = 32, BN: ts.constexpr = 32, BK: ts.constexpr = 32):\n" + "\n".join(lines) + "\n")
    return load(name, HEADER + src)


def gemm_f64(batched: bool):
    """c = a @ b in f64 (products and sums in f64, as gradient checks need): tile.mma accumulates in f32, so
    this is a sum of rank-1 updates, one k at a time (slow; f64 graphs are for checking, not speed)."""
    b3, ix = ('"Bt", ', "pb, ") if batched else ("", "")
    src = (f'@ts.kernel\ndef gemm_f64{"_batched" if batched else ""}(a: tile.Tensor[{b3}"M", "K"], b: tile.Tensor[{b3}"K", "N"], '
           f'c: tile.Tensor[{b3}"M", "N"],\n'
           "             BM: ts.constexpr = 16, BN: ts.constexpr = 16):\n"
           "    pm, pn, pb = tile.program_id(0), tile.program_id(1), tile.program_id(2)\n"
           "    acc = tile.zeros([BM, BN], ts.f64)\n"
           f"    for k in tile.range(0, a.shape[{2 if batched else 1}]):\n"
           f"        acc = acc + tile.load(a[{ix}pm * BM:pm * BM + BM, k:k + 1]) * tile.load(b[{ix}k:k + 1, pn * BN:pn * BN + BN])\n"
           f"    tile.store(c[{ix}pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)\n")
    return load(f"gemm_f64{'_batched' if batched else ''}", HEADER + src)


def batched_gemm():
    """c[b] = a[b] @ b[b] for [Bt, M, K] @ [Bt, K, N] (f32 accumulation); the batch is program axis 2."""
    src = ('@ts.kernel\ndef batched_gemm(a: tile.Tensor["Bt", "M", "K"], b: tile.Tensor["Bt", "K", "N"], '
           'c: tile.Tensor["Bt", "M", "N"],\n'
           "                 BM: ts.constexpr = 32, BN: ts.constexpr = 32, BK: ts.constexpr = 32):\n"
           "    pm, pn, pb = tile.program_id(0), tile.program_id(1), tile.program_id(2)\n"
           "    acc = tile.zeros([BM, BN], ts.f32)\n"
           "    for k0 in tile.range(0, a.shape[2], BK):\n"
           "        acc = tile.mma(tile.load(a[pb, pm * BM:pm * BM + BM, k0:k0 + BK]),\n"
           "                       tile.load(b[pb, k0:k0 + BK, pn * BN:pn * BN + BN]), acc)\n"
           "    tile.store(c[pb, pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)\n")
    return load("batched_gemm", HEADER + src)


def strided_copy(rank: int):
    """out = x for same-shaped rank-`rank` tensors of any strides (a transpose is a copy from the
    permuted strided view of its input); one program per row of the leading dims."""
    dims = [f"N{i}" for i in range(rank)]
    ann = 'tile.Tensor[' + ", ".join(f'"{d}"' for d in dims) + "]"
    lines = ["    p = tile.program_id(0)"]
    idx = []
    rest = "p"
    for i in range(rank - 2, -1, -1):
        lines.append(f"    i{i} = {rest} % out.shape[{i}]")
        lines.append(f"    q{i} = {rest} // out.shape[{i}]")
        rest = f"q{i}"
        idx.insert(0, f"i{i}")
    lead = ", ".join(idx)
    lines += [f"    for c0 in tile.range(0, out.shape[{rank - 1}], BLOCK_C):",
              f"        tile.store(out[{lead}, c0:c0 + BLOCK_C], tile.load(x[{lead}, c0:c0 + BLOCK_C]))"]
    src = (f"@ts.kernel\ndef strided_copy{rank}(x: {ann}, out: {ann}, BLOCK_C: ts.constexpr = 128):\n"
           + "\n".join(lines) + "\n")
    return load(f"strided_copy{rank}", HEADER + src)


def embedding():
    """out[r, :] = table[ids[r], :] (one program per id)."""
    src = ('@ts.kernel\ndef embedding(ids: tile.Tensor["R"], table: tile.Tensor["V", "D"], out: tile.Tensor["R", "D"],\n'
           "              BLOCK_D: ts.constexpr = 128):\n"
           "    r = tile.program_id(0)\n"
           "    i = tile.load_scalar(ids[r])\n"
           "    for d0 in tile.range(0, out.shape[1], BLOCK_D):\n"
           "        tile.store(out[r, d0:d0 + BLOCK_D], tile.load(table[i, d0:d0 + BLOCK_D]))\n")
    return load("embedding", HEADER + src)


def dropout():
    """Inverted dropout, one row per program: element e = r·C + c keeps iff hash(e, SEED) ≥ P, where
    hash is the murmur3 finaliser in wrapping i32 arithmetic (24 bits → [0, 1))."""
    src = ('@ts.kernel\ndef dropout(x: tile.Tensor["R", "C"], out: tile.Tensor["R", "C"], P: ts.constexpr = 0.1,\n'
           "            SEED: ts.constexpr = 0, BLOCK_C: ts.constexpr = 128):\n"
           "    r = tile.program_id(0)\n"
           "    for c0 in tile.range(0, x.shape[1], BLOCK_C):\n"
           "        e = tile.arange(0, BLOCK_C) + tile.cast(r * x.shape[1] + c0, ts.i32)\n"
           "        h = e * -1640531535 + SEED\n"
           "        h = h ^ ((h >> 16) & 65535)\n"
           "        h = h * -2048144789\n"
           "        h = h ^ ((h >> 13) & 524287)\n"
           "        h = h * -1028477387\n"
           "        h = h ^ ((h >> 16) & 65535)\n"
           "        u = tile.cast(h & 16777215, ts.f32) * (1.0 / 16777216.0)\n"
           "        v = tile.load(x[r, c0:c0 + BLOCK_C])\n"
           "        tile.store(out[r, c0:c0 + BLOCK_C], tile.where(u >= P, v * (1.0 / (1.0 - P)), 0.0))\n")
    return load("dropout", HEADER + src)


_IDENT = {"sum": "0.0", "mean": "0.0", "max": '-float("inf")', "min": 'float("inf")'}


def row_op(kind: str, acc: str = "f32"):
    """One row per program over a [R, C] input (BLOCK_C ≥ C): sum | mean | max | min (out [R, 1]),
    softmax (out [R, C]) or l2 (out [R, 1]), computed in `acc` (f32; f64 for f64 inputs)."""
    other = _IDENT.get(kind, '-float("inf")' if kind == "softmax" else "0.0")
    lines = ["    r = tile.program_id(0)",
             f"    v = tile.cast(tile.load(x[r, 0:BLOCK_C], other={other}), ts.{acc})"]
    if kind == "softmax":
        lines.append("    tile.store(out[r, 0:BLOCK_C], tile.softmax(v, axis=0))")
    elif kind == "l2":
        lines.append("    tile.store(out[r, 0], tile.sqrt(tile.sum(v * v)))")
    elif kind == "mean":
        lines.append("    tile.store(out[r, 0], tile.sum(v) / x.shape[1])")
    else:
        lines.append(f"    tile.store(out[r, 0], tile.{kind}(v))")
    name = f"row_{kind}" + ("" if acc == "f32" else f"_{acc}")
    src = (f'@ts.kernel\ndef {name}(x: tile.Tensor["R", "C"], out: tile.Tensor["R", "K"], BLOCK_C: ts.constexpr = 128):\n'
           + "\n".join(lines) + "\n")
    return load(name, HEADER + src)


def gating(with_delta_product: bool, from_pair: bool, f64: bool = False):
    """gate = sigmoid(exp(-0.1·d) · (delta @ W)) per [BLOCK_R, D] row block; with the product,
    out = delta · gate; from_pair computes delta = t - s first (ts.delta_connection). In f64 the GEMM is
    a sum of rank-1 updates in f64 (tile.mma accumulates in f32; f64 graphs are for gradient checks)."""
    ins = 's: tile.Tensor["R", "D"], t: tile.Tensor["R", "D"]' if from_pair else 'x: tile.Tensor["R", "D"]'
    lines = ["    r0 = tile.program_id(0) * BLOCK_R"]

    def rows(cols):
        if from_pair:
            return f"(tile.load(t[r0:r0 + BLOCK_R{cols}]) - tile.load(s[r0:r0 + BLOCK_R{cols}]))"
        return f"tile.load(x[r0:r0 + BLOCK_R{cols}])"
    lines.append(f"    delta = {rows('')}")
    if f64:
        lines += ["    z = tile.zeros([BLOCK_R, E], ts.f64)",
                  "    for k in tile.range(0, w.shape[0]):",
                  f"        z = z + tile.cast({rows(', k:k + 1')}, ts.f64) * tile.cast(tile.load(w[k:k + 1, 0:E]), ts.f64)"]
    else:
        lines.append("    z = tile.mma(delta, tile.load(w))")
    lines.append("    gate = ts.ops.sigmoid_safe(z * ts.ops.distance_scaling(DIST))")
    lines.append("    tile.store(out[r0:r0 + BLOCK_R], " + ("tile.cast(delta, ts.f32) * gate)" if with_delta_product else "gate)"))
    name = (f"{'delta_connection' if from_pair else 'gating'}{'_product' if with_delta_product and not from_pair else ''}"
            + ("_f64" if f64 else ""))
    src = (f'@ts.kernel\ndef {name}({ins}, w: tile.Tensor["D", "E"], out: tile.Tensor["R", "E"],\n'
           f"         DIST: ts.constexpr = 1.0, BLOCK_R: ts.constexpr = 32" + (", E: ts.constexpr = 16" if f64 else "")
           + "):\n" + "\n".join(lines) + "\n")
    return load(name, HEADER + src)
