"""DSL templates for the optimiser kernels: one `@ts.kernel` source per (update rule, dtype, structural
flags), generated as text and loaded through `tessera.gdn.generated.load` (cached by name and digest), so
it goes through the same frontend, caches and backends as hand-written kernels.

Every kernel here works on lists of flattened (1-D) tensors with a **flat block index**: the grid is
one program per BLOCK elements of every tensor of the list, `starts[i]` the first block of tensor i
(`starts[len]` = the grid size). A program finds its tensor by binary search over `starts` (STEPS =
ceil(log2(len)) compile-time steps), then updates one block of it; out-of-range lanes of a tensor's last
block are masked by the load/store bounds checks, which read each element's own size from the list's table.
So one launch covers all parameters whatever their sizes, and a program never idles over a small tensor.

Values are computed in ACC (f32; f64 for f64 tensors); 16-bit parameters are read, updated in f32 and
stored back rounded to nearest even. Learning rate, bias corrections and every other hyper-parameter are
runtime scalar arguments: changing them between steps reuses the compiled kernel. Flags that change the
code (momentum buffer or not, Nesterov, weight decay, which form of lerp) are part of the kernel's name.
"""
from __future__ import annotations

BLOCK = 1024   # elements per program: 8 per thread at the default 4 warps on NVIDIA

# the largest finite value of each accumulation dtype: |x| <= it is false exactly for inf and NaN
_FINITE = {"f32": "3.4028234663852886e+38", "f64": "1.7976931348623157e+308"}


def acc_of(dtype: str) -> str:
    """The dtype updates and state are computed in: f64 for f64 parameters, else f32."""
    return "f64" if dtype == "f64" else "f32"


def _lst(name: str, dtype: str) -> str:
    return f"{name}: list[tile.Tensor[ts.{dtype}]]"


def _source(name: str, lists, scalars, body, tensors=()):
    """The module text of kernel `name`: list parameters, the block table, per-block outputs, scalars,
    the search prologue (`i`: this program's tensor, `o`: its first element), then `body`."""
    params = list(lists) + ['starts: tile.Tensor["S", ts.i64]'] + list(tensors) + list(scalars)
    params += ["STEPS: ts.constexpr = 0", f"BLOCK: ts.constexpr = {BLOCK}"]
    first = lists[0].split(":")[0]
    lines = ["@ts.kernel",
             f"def {name}(" + ",\n        ".join(params) + "):",
             "    b = tile.program_id(0)",
             "    i = 0",
             f"    hi = len({first})",
             "    for _ in tile.static_range(STEPS):   # binary search: starts[i] <= b < starts[hi]",
             "        mid = (i + hi) // 2",
             "        go = tile.load_scalar(starts[mid]) <= b",
             "        i = tile.where(go, mid, i)",
             "        hi = tile.where(go, hi, mid)",
             "    o = (b - tile.load_scalar(starts[i])) * BLOCK"]
    lines += ["    " + ln for ln in body]
    from ..gdn.generated import HEADER, load
    return load(name, HEADER + "\n".join(lines) + "\n")


def _get(lst: str, acc: str) -> str:
    return f"tile.cast(tile.load({lst}[i][o:o + BLOCK]), ts.{acc})"


def _put(lst: str, value: str) -> str:
    return f"tile.store({lst}[i][o:o + BLOCK], {value})"


def sgd(dtype: str, momentum: bool, nesterov: bool, weight_decay: bool):
    """torch.optim.SGD (dampening 0): g += wd·p; buf = μ·buf + g (buf starts at 0, so the first step
    gives buf = g as torch's clone does); g = g + μ·buf (Nesterov) or buf; p += (−lr)·g."""
    acc = acc_of(dtype)
    name = f"optim_sgd_{dtype}" + "_m" * momentum + "_nesterov" * nesterov + "_wd" * weight_decay
    lists = [_lst("ps", dtype), _lst("gs", dtype)] + ([_lst("bufs", acc)] if momentum else [])
    scalars = [f"neg_lr: ts.{acc}", f"weight_decay: ts.{acc}", f"momentum: ts.{acc}"]
    body = [f"p = {_get('ps', acc)}", f"g = {_get('gs', acc)}"]
    if weight_decay:
        body.append("g = g + weight_decay * p")
    if momentum:
        body += [f"buf = tile.load(bufs[i][o:o + BLOCK]) * momentum + g", _put("bufs", "buf")]
        body.append("g = g + momentum * buf" if nesterov else "g = buf")
    body.append(_put("ps", "p + neg_lr * g"))
    return _source(name, lists, scalars, body)


def adamw(dtype: str, high_weight: bool):
    """torch.optim.AdamW: p *= 1 − lr·wd; m = lerp(m, g, 1 − β1); v = β2·v + (1 − β2)·g·g;
    p += (−lr / bc1)·m / (sqrt(v) / sqrt(bc2) + eps). `high_weight`: torch's lerp form for weights ≥ 0.5
    (g − (g − m)·(1 − w)) instead of m + w·(g − m)."""
    acc = acc_of(dtype)
    name = f"optim_adamw_{dtype}" + "_hw" * high_weight
    lists = [_lst("ps", dtype), _lst("gs", dtype), _lst("ms", acc), _lst("vs", acc)]
    scalars = [f"decay: ts.{acc}", f"w1: ts.{acc}", f"beta2: ts.{acc}", f"w2: ts.{acc}",
               f"neg_step: ts.{acc}", f"bc2_sqrt: ts.{acc}", f"eps: ts.{acc}"]
    lerp = "g - (g - m) * w1" if high_weight else "m + w1 * (g - m)"   # w1 = 1 - weight for the high form
    body = [f"p = {_get('ps', acc)} * decay",
            f"g = {_get('gs', acc)}",
            "m = tile.load(ms[i][o:o + BLOCK])",
            f"m = {lerp}",
            "v = tile.load(vs[i][o:o + BLOCK]) * beta2 + w2 * g * g",
            _put("ms", "m"), _put("vs", "v"),
            _put("ps", "p + neg_step * m / (tile.sqrt(v) / bc2_sqrt + eps)")]
    return _source(name, lists, scalars, body)


def scale_check(dtype: str):
    """gs *= factor in place, and flags[b] = 1 when block b held an inf or NaN (before scaling), else 0:
    the unscale of a LossScaler and the scaling of clip_grad_norm_."""
    acc = acc_of(dtype)
    body = [f"g = {_get('gs', acc)}",
            f"tile.store(flags[b], tile.max(tile.where(tile.abs(g) <= {_FINITE[acc]}, 0.0, 1.0)))",
            _put("gs", "g * factor")]
    return _source(f"optim_scale_check_{dtype}", [_lst("gs", dtype)], [f"factor: ts.{acc}"], body,
                   tensors=[f'flags: tile.Tensor["P", ts.{acc}]'])


def norm_partials(dtype: str, kind: str):
    """partials[b] = Σ |g|^p over block b (kind "2": g·g, "1": |g|, "p": exp(p·log|g|)) or max |g| (kind
    "inf"); the host combines the partials (a sum, or a max) into the total norm."""
    acc = acc_of(dtype)
    a = "tile.abs(g)"
    reduce = {"2": "tile.sum(g * g)", "1": f"tile.sum({a})", "inf": f"tile.max({a})",
              "p": f"tile.sum(tile.exp(pw * tile.log({a})))"}[kind]
    body = [f"g = {_get('gs', acc)}", f"tile.store(partials[b], {reduce})"]
    return _source(f"optim_norm_{kind}_{dtype}", [_lst("gs", dtype)], [f"pw: ts.{acc}"], body,
                   tensors=[f'partials: tile.Tensor["P", ts.{acc}]'])
