"""Kernel-level GDN components of seed 000/001, launched directly on arrays (NumPy → CPU backend,
CuPy/torch → GPU): the fused delta gating kernel and the sparse delta computation that skips inactive
connections. Both are the generated `fused_delta_gating_<n>` kernel (tessera.gdn.generated)."""
from __future__ import annotations

import numpy as np

from .generated import fused_delta_gating as _fused


def _rows(a):
    return a.reshape(-1, a.shape[-1])


# The seed's autotuning space (BLOCK_B × BLOCK_S × num_warps × num_stages over [B, S, D]), mapped
# onto this kernel: its row block is the seed's BLOCK_B·BLOCK_S tile flattened (capped at what one
# program holds); the key is the flattened rows and D (the number of layers is in the kernel itself).
AUTOTUNE_SPACE = {"BLOCK_R": [16, 32, 64], "num_warps": [4, 8, 16]}
AUTOTUNE_KEY = ["R", "D"]
_TUNED = {}


def tuned_kernel(n_sources, residual, sparse):
    """The generated fused kernel under `@ts.kernel.autotune(space=AUTOTUNE_SPACE, key=AUTOTUNE_KEY)`."""
    import tessera as ts
    k = (n_sources, residual, sparse)
    if k not in _TUNED:
        _TUNED[k] = ts.kernel.autotune(space=AUTOTUNE_SPACE, key=AUTOTUNE_KEY)(_fused(n_sources, residual, sparse,
                                                                                      "tensor"))
    return _TUNED[k]


def _launch(source_layers, target_layer, gate_params, coefficients, distances, residual, sparse, block_rows, out,
            autotune=False):
    L = len(source_layers)
    distances = distances if distances is not None else [L - i for i in range(L)]
    xp = np if isinstance(target_layer, np.ndarray) else __import__("cupy")
    out = out if out is not None else xp.empty(target_layer.shape, np.float32)
    rows = int(np.prod(target_layer.shape[:-1]))
    ce = {f"D{i}": float(d) for i, d in enumerate(distances)}
    ce.update({f"C{i}": i for i in range(L)})
    if sparse:
        ce["THRESH"] = 0.5
    args = [_rows(target_layer), *[_rows(s) for s in source_layers], *gate_params,
            xp.asarray(coefficients).reshape(-1), _rows(out)]
    if autotune:
        tuned_kernel(L, residual, sparse)[lambda m: (-(-m.R // m.BLOCK_R),)](*args, RESIDUAL=residual, SPARSE=sparse,
                                                                            **ce)
    else:
        _fused(L, residual, sparse, "tensor")[(-(-rows // block_rows),)](*args, RESIDUAL=residual, SPARSE=sparse,
                                                                         BLOCK_R=block_rows, **ce)
    return out


def fused_delta_gating_kernel(source_layers, target_layer, gate_params, coefficients, distances=None,
                              residual=False, block_rows=32, out=None, autotune=False):
    """out = Σ_i c_i · (t − s_i) · sigmoid(exp(−0.1·d_i)·((t − s_i) @ W_i)) (+ t), in one kernel.
    d_i defaults to L − i (the seeds' layer distance); `coefficients` is a 1-D array of c_i. With
    `autotune`, the block size and warps come from `@ts.kernel.autotune` over AUTOTUNE_SPACE (timed once
    per key and device, remembered in the tuning database)."""
    return _launch(source_layers, target_layer, gate_params, coefficients, distances, residual, False, block_rows, out,
                   autotune)


def sparse_delta_computation_kernel(source_layers, target_layer, gate_params, active_mask, block_rows=32, out=None):
    """Σ over the active connections only (seed 000): a connection whose mask entry is false is
    skipped inside the kernel at run time (its source and gate are never read)."""
    coeffs = np.asarray(active_mask, np.float32) if isinstance(active_mask, (list, tuple, np.ndarray)) else \
        active_mask.astype(np.float32)
    return _launch(source_layers, target_layer, gate_params, coeffs, None, False, True, block_rows, out)
