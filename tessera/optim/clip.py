"""Gradient clipping by total norm (torch.nn.utils.clip_grad_norm_), computed by compiled kernels.

One reduction launch per dtype group writes a partial per block of BLOCK elements (Σ|g|^p, or max|g|);
the partials — one per 1024 gradient elements — are combined in f64 where they live, the total norm comes
back as a Python float, and when it exceeds max_norm one scaling launch per dtype group multiplies the
gradients in place by max_norm / (total + 1e-6).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import CompilationError
from . import kernels, multi
from .multi import error


class GradGroup:
    """Gradients of one dtype updated in place: their flat views and the block plan of a launch."""

    def __init__(self, dtype, flats):
        self.dtype, self.flats = dtype, flats
        self.plan = multi.Plan([f.shape[0] for f in flats], flats[0])
        self.acc = kernels.acc_of(dtype)


def grad_groups(grads, what: str):
    """A list of gradient arrays (or one array) → GradGroups by dtype; every array float, contiguous (it is
    written in place) and living where the others do."""
    if hasattr(grads, "shape") and hasattr(grads, "dtype"):
        grads = [grads]
    if not isinstance(grads, (list, tuple)):
        try:
            grads = list(grads)
        except TypeError:
            raise error(f"{what}: expected a list of gradient arrays, got {type(grads).__name__}",
                        CompilationError) from None
    by_dtype, kinds = {}, set()
    for i, g in enumerate(grads):
        f, _, d = multi.writable_float(g, f"grads[{i}]", what)
        kinds.add(multi.kind(f))
        by_dtype.setdefault(d, []).append(f)
    if len(kinds) > 1:
        raise error(f"{what}: the gradients mix {' and '.join(sorted(kinds))} arrays")
    return [GradGroup(d, fl) for d, fl in by_dtype.items()]


def scale_(groups, factor: float) -> bool:
    """Multiply every gradient by `factor` in place (one launch per group); True when any element was
    inf or NaN before the scaling."""
    found = False
    for g in groups:
        if g.plan.programs == 0:
            continue
        flags = multi.zeros(g.flats[0], g.plan.programs, g.acc)
        multi.launch(kernels.scale_check(g.dtype), g.plan, [g.flats], [flags], [factor])
        found = found or bool(float(flags.max()) > 0)
    return found


def _norm_kind(norm_type):
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "+inf"):
        return "inf", math.inf
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise error(f"clip_grad_norm_: norm_type must be a number or 'inf', got {norm_type!r}",
                    CompilationError) from None
    if isinstance(norm_type, bool) or math.isnan(p) or p <= 0:
        raise error(f"clip_grad_norm_: norm_type must be > 0 (or inf), got {norm_type!r}", CompilationError)
    if math.isinf(p):
        return "inf", p
    return {2.0: "2", 1.0: "1"}.get(p, "p"), p


def total_norm(groups, norm_type=2.0) -> float:
    """The p-norm of all gradients together (the norm of the per-tensor norms, as torch computes it)."""
    kind, p = _norm_kind(norm_type)
    parts = []
    for g in groups:
        if g.plan.programs == 0:
            continue
        partials = multi.zeros(g.flats[0], g.plan.programs, g.acc)
        multi.launch(kernels.norm_partials(g.dtype, kind), g.plan, [g.flats], [partials], [p if kind == "p" else 0.0])
        host = np.asarray(multi.to_host(partials), np.float64)
        parts.append(host.max() if kind == "inf" else host.sum())
    if not parts:
        return 0.0
    if kind == "inf":
        return float(np.max(parts))
    s = float(np.sum(parts))
    return math.sqrt(s) if kind == "2" else s if kind == "1" else s ** (1.0 / p)


def clip_grad_norm_(grads, max_norm, norm_type=2.0) -> float:
    """torch.nn.utils.clip_grad_norm_ on a list of gradient arrays: the total norm over all of them;
    when it exceeds max_norm every gradient is scaled in place by max_norm / (total + 1e-6) (a NaN or
    infinite total scales too, as in torch). Returns the total norm (before clipping) as a float."""
    multi.check_finite_scalar(max_norm, "max_norm")
    groups = grad_groups(grads, "clip_grad_norm_")
    total = total_norm(groups, norm_type)
    coef = float(max_norm) / (total + 1e-6)
    if not coef >= 1.0:       # below 1, or NaN: torch multiplies by the clamped coefficient
        scale_(groups, coef)
    return total
