"""Seed 000 compressed delta storage: low-rank (truncated SVD) deltas and their reconstruction.

The SVD is a compiled one-sided Jacobi kernel (column rotations until the columns are orthogonal:
A·V = U·Σ), then a kernel that picks the top-k columns by norm (selection, descending) and writes
U[:, :k], σ[:k] and Vᵀ[:k, :]. One program does a whole [B·S, D] matrix; a row of V is one tile of
BN ≥ D elements (the next power of two, masked past D), so any hidden size works, at O(D²) column
rotations per sweep; the driver is eager since the rank is chosen from the shape."""
from __future__ import annotations

import numpy as np

import tessera as ts
from tessera import tile


@ts.kernel
def jacobi_svd(a: tile.Tensor["M", "N", ts.f32], v: tile.Tensor["N", "N", ts.f32],
               SWEEPS: ts.constexpr = 10, BM: ts.constexpr = 64, BN: ts.constexpr = 32):
    """In place: a ← A·V with orthogonal columns, v ← V (both f32)."""
    m = a.shape[0]
    n = a.shape[1]
    for i in range(n):
        tile.store(v[i, 0:BN], tile.where(tile.arange(0, BN) == i, 1.0, 0.0))
    for sweep in range(SWEEPS):
        for p in range(n):
            for q in range(p + 1, n):
                alpha = 0.0
                beta = 0.0
                gamma = 0.0
                for r0 in range(0, m, BM):
                    ap = tile.load(a[r0:r0 + BM, p])
                    aq = tile.load(a[r0:r0 + BM, q])
                    alpha = alpha + tile.sum(ap * ap)
                    beta = beta + tile.sum(aq * aq)
                    gamma = gamma + tile.sum(ap * aq)
                if tile.abs(gamma) > 1e-30:
                    zeta = (beta - alpha) / (2.0 * gamma)
                    sgn = tile.where(zeta >= 0.0, 1.0, -1.0)
                    t = sgn / (tile.abs(zeta) + tile.sqrt(1.0 + zeta * zeta))
                    c = 1.0 / tile.sqrt(1.0 + t * t)
                    s = c * t
                    for r0 in range(0, m, BM):
                        ap = tile.load(a[r0:r0 + BM, p])
                        aq = tile.load(a[r0:r0 + BM, q])
                        tile.store(a[r0:r0 + BM, p], c * ap - s * aq)
                        tile.store(a[r0:r0 + BM, q], s * ap + c * aq)
                    vp = tile.load(v[0:BN, p])
                    vq = tile.load(v[0:BN, q])
                    tile.store(v[0:BN, p], c * vp - s * vq)
                    tile.store(v[0:BN, q], s * vp + c * vq)


@ts.kernel
def svd_top_k(a: tile.Tensor["M", "N", ts.f32], v: tile.Tensor["N", "N", ts.f32], norms: tile.Tensor["N", ts.f32],
              u_out: tile.Tensor["M", "K", ts.f32], s_out: tile.Tensor["K", ts.f32], vt_out: tile.Tensor["K", "N", ts.f32],
              BM: ts.constexpr = 64, BN: ts.constexpr = 32):
    """σ_j = ‖a[:, j]‖; the k largest, in descending order, with their U and Vᵀ."""
    m = a.shape[0]
    n = a.shape[1]
    for j in range(n):
        acc = 0.0
        for r0 in range(0, m, BM):
            col = tile.load(a[r0:r0 + BM, j])
            acc = acc + tile.sum(col * col)
        tile.store(norms[j], tile.sqrt(acc))
    for i in range(u_out.shape[1]):
        best = -1.0
        bj = 0
        for j in range(n):
            x = tile.load_scalar(norms[j])
            if x > best:
                best = x
                bj = j
        tile.store(norms[bj], -2.0)
        tile.store(s_out[i], best)
        inv = 1.0 / tile.maximum(best, 1e-30)
        for r0 in range(0, m, BM):
            tile.store(u_out[r0:r0 + BM, i], tile.load(a[r0:r0 + BM, bj]) * inv)
        tile.store(vt_out[i, 0:BN], tile.load(v[0:BN, bj]))


@ts.function
def as_f32_matrix(delta):
    return ts.reshape(ts.cast(delta, ts.f32), (-1, delta.shape[-1]))


@ts.function
def reconstruct(u, sigma, vt):
    return ts.gemm(u * sigma, vt)


def svd(matrix):
    """The thin SVD of an [M, N] matrix (any float dtype; computed in f32) by the two kernels above:
    (U [M, k], σ [k] descending, Vᵀ [k, N]) with k = min(M, N) (ts.ops.svd)."""
    M, N = matrix.shape
    bn = max(32, 1 << (N - 1).bit_length())
    a = as_f32_matrix(matrix)
    xp = np if isinstance(a, np.ndarray) else __import__("cupy")
    a = xp.array(a, copy=True)
    v = xp.empty((N, N), np.float32)
    jacobi_svd[(1,)](a, v, BN=bn)
    k = min(M, N)
    u, s, vt = xp.empty((M, k), np.float32), xp.empty(k, np.float32), xp.empty((k, N), np.float32)
    svd_top_k[(1,)](a, v, xp.empty(N, np.float32), u, s, vt, BN=bn)
    return u, s, vt


def compressed_delta_storage(delta_activations, compression_ratio=0.1):
    """For each [B, S, D] delta: ({U [B·S, k], sigma [k], Vt [k, D], original_shape}, k) with
    k = max(1, int(D · compression_ratio)) — the seed's list of dicts and list of ranks."""
    compressed, ranks = [], []
    for delta in delta_activations:
        B, S, D = delta.shape
        bn = max(32, 1 << (D - 1).bit_length())   # V's rows as one masked tile: any hidden size
        a = as_f32_matrix(delta)
        xp = np if isinstance(a, np.ndarray) else __import__("cupy")
        a = xp.array(a, copy=True)  # the SVD works in place; an f32 input would otherwise be overwritten
        v = xp.empty((D, D), np.float32)
        jacobi_svd[(1,)](a, v, BN=bn)
        k = max(1, int(D * compression_ratio))
        u, s, vt = xp.empty((B * S, k), np.float32), xp.empty(k, np.float32), xp.empty((k, D), np.float32)
        svd_top_k[(1,)](a, v, xp.empty(D, np.float32), u, s, vt, BN=bn)
        compressed.append({"U": u, "sigma": s, "Vt": vt, "original_shape": [B, S, D]})
        ranks.append(k)
    return compressed, ranks


def reconstruct_compressed_delta(compressed_delta, reconstruction_param=None):
    """U · diag(σ) · Vᵀ reshaped to the original [B, S, D]."""
    m = reconstruct(compressed_delta["U"], compressed_delta["sigma"], compressed_delta["Vt"])
    return m.reshape(compressed_delta["original_shape"])
