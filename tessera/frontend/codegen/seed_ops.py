"""The seeds' higher-level tile names (issue 11, Deliver 2; docs/guide.md, "The seeds' tile names").

- The program's block: `tile.load_block(t)` / `tile.async_load_block(t)` / `tile.store_block(t, v)` /
  `tile.async_store_block(t, v)` without start indices address this program's block of `t`.
- Gating: `tile.apply_gating`, `tile.fused_gating_accumulate` (the GDN gate of the seeds' gating kernel).
- Attention: `tile.compute_attention_score` (per-row scaled dot product of projected blocks).
- Indexing tiles and shared buffers (`buf[:, j]`, `x[:, None]`), `tile.load_shared` / `tile.store_shared`.

All of them are built from the DSL's own tile ops (views, mma, elementwise, reductions), so every backend
lowers them the same way.
"""
from __future__ import annotations

import ast

from ... import dtypes as dt
from ...ir import builders as tb
from .base import INDEX, Val
from .calls import _bind, _REQ


def _user_name(d) -> bool:
    return isinstance(d, str) and ".shape[" not in d


class SeedOps:
    # -- the program's block ---------------------------------------------------------------------
    def _dim_names(self, t: Val):
        """The tensor's dim names; unnamed dims take the names of a parameter of the same rank."""
        names = list(t.shape)
        if all(_user_name(d) or isinstance(d, int) for d in names):
            return names
        for p in self.spec.params:
            if p.kind in ("tensor", "tensor_list") and len(p.dims) == len(names) and all(_user_name(d) for d in p.dims):
                return [d if _user_name(d) else p.dims[i] for i, d in enumerate(names)]
        return names

    def program_block(self, t: Val, node, what) -> Val:
        """This program's block of a whole tensor: the last dim whole; leading dim k (program axis k) in
        blocks of the constexpr `BLOCK_<name of dim k>`, else (the dim before the last) `BLOCK_SIZE`, else
        one index per program (the dim is dropped)."""
        names = self._dim_names(t)
        rank = len(names)
        lead = list(range(rank - 1)) if rank > 1 else [0]
        if len(lead) > 3:
            self.error(node, f"{what}: the program's block of a rank-{rank} tensor needs {len(lead)} program axes (at most 3)")
        offsets, sizes, squeeze, found = [0] * rank, [None] * rank, [False] * rank, False
        for k in lead:
            size = self.constexprs.get(f"BLOCK_{names[k]}") if isinstance(names[k], str) else None
            if size is None and k == lead[-1]:
                size = self.constexprs.get("BLOCK_SIZE")
            found = found or size is not None
            pid = Val("scalar", tb.program_id(k, self.loc(node)), INDEX)
            if size is None:
                offsets[k], sizes[k], squeeze[k] = pid, 1, True
            else:
                size = self.static_int(size, node, "a static block size")
                offsets[k], sizes[k] = self.binop("mul", pid, size, node), size
        if not found:
            wanted = " or ".join(f"BLOCK_{n}" for n in names[:len(lead)] if isinstance(n, str))
            self.error(node, f"{what}({t.name}) without start indices loads this program's block, whose size comes "
                             f"from a constexpr ({wanted + ' or ' if wanted else ''}BLOCK_SIZE); give one, or pass start "
                             "indices and sizes")
        for d in range(rank):
            if sizes[d] is None:
                sizes[d] = self.static_dim(t, d, node)
        shape = tuple(s for s, q in zip(sizes, squeeze) if not q)
        self.check_tile_size(shape, node, f"the program's block of '{t.name}'")
        return Val("view", None, t.dtype, shape, base=t, offsets=offsets, sizes=sizes, squeeze=squeeze)

    def b_tile_async_store_block(self, node, args, kwargs):
        return self.b_tile_store_block(node, args, kwargs)

    # -- gating ----------------------------------------------------------------------------------
    def matmul_rows(self, x: Val, w: Val, node, what) -> Val:
        """x @ w for an n-d x (its leading dims flattened into the rows of one tile.mma), f32."""
        x = self.to_val(x)
        w = self.to_val(self.load_whole(w, node, what))
        if x.kind != "tile" or w.kind != "tile" or len(w.shape) != 2 or not x.shape:
            self.error(node, f"{what}: expects a tile (rows × {w.shape[0] if w.shape else 'K'}) and a 2-d matrix")
        k, n = w.shape
        if x.shape[-1] != k:
            self.error(node, f"{what}: the block's last dim is {x.shape[-1]}, the matrix has {k} rows")
        rows = 1
        for d in x.shape[:-1]:
            rows *= d
        x2 = self.reshape_tile(x, (rows, k), any_shape=True)
        if x2.dtype is not w.dtype:
            d = self.promote(x2.dtype, w.dtype)
            x2, w = self.cast(x2, d), self.cast(w, d)
        if not x2.dtype.is_float:
            x2, w = self.cast(x2, dt.f32), self.cast(w, dt.f32)
        from mlir import ir
        rt = ir.RankedTensorType.get([rows, n], ir.F32Type.get())
        prod = Val("tile", tb.mma(x2.v, w.v, None, rt, self.loc(node)), dt.f32, (rows, n))
        return self.reshape_tile(prod, tuple(x.shape[:-1]) + (n,), any_shape=True)

    def load_whole(self, w, node, what):
        if isinstance(w, Val) and w.kind in ("tensor", "view"):
            v = self._view_arg(w, node, what)
            return self.load_view(v, None, None, node)
        return w

    def gate(self, delta, params, layer_distance, gate_weight, node, what) -> Val:
        """delta · sigmoid(distance_scaling(d) · (delta @ W)) · weight, in f32 (the seeds' gating kernel)."""
        delta = self.to_val(delta)
        logits = self.matmul_rows(delta, params, node, what)
        if layer_distance is not None:
            scale = self.b_ops_distance_scaling(node, [layer_distance], {})
            logits = self.binop("mul", logits, scale, node)
        g = self.binop("mul", self.cast(delta, dt.f32), self.sigmoid(logits, node, safe=True), node)
        if gate_weight is not None:
            w = self.scalar_value(gate_weight, node)
            g = self.binop("mul", g, self.cast(self.to_val(w, dt.f32), dt.f32), node)
        return g

    def scalar_value(self, v, node):
        """A number, scalar, or single-element view (loaded)."""
        if isinstance(v, Val) and v.kind in ("view", "tensor"):
            v = self._view_arg(v, node, "a gate weight")
            if v.shape:
                self.error(node, f"a gate weight must be one element, got a view of shape {list(v.shape)}")
            return self.load_view(v, None, None, node)
        return v

    def b_tile_apply_gating(self, node, args, kwargs):
        a = _bind(node, self, "tile.apply_gating", [("delta", _REQ), ("gate_params", _REQ), ("layer_distance", None),
                                                     ("gate_weight", None)], args, kwargs)
        return self.gate(a["delta"], a["gate_params"], a["layer_distance"], a["gate_weight"], node, "tile.apply_gating")

    def b_tile_fused_gating_accumulate(self, node, args, kwargs):
        a = _bind(node, self, "tile.fused_gating_accumulate",
                  [("delta", _REQ), ("gate_params", _REQ), ("gate_weight", None), ("layer_distance", None),
                   ("accumulator", _REQ)], args, kwargs)
        g = self.gate(a["delta"], a["gate_params"], a["layer_distance"], a["gate_weight"], node,
                      "tile.fused_gating_accumulate")
        self.b_tile_accumulate(node, [a["accumulator"], g], {})
        return g

    # -- attention -------------------------------------------------------------------------------
    def b_tile_compute_attention_score(self, node, args, kwargs):
        """Row r: ((q @ W)[r] · (k @ W)[r]) / sqrt(A): the score of each position against the same position
        of another layer (the seeds' per-layer selection), f32 of the blocks' leading shape."""
        a = _bind(node, self, "tile.compute_attention_score", [("query", _REQ), ("key", _REQ), ("params", _REQ),
                                                               ("scale", None)], args, kwargs)
        q = self.matmul_rows(a["query"], a["params"], node, "tile.compute_attention_score")
        k = self.matmul_rows(a["key"], a["params"], node, "tile.compute_attention_score")
        if q.shape != k.shape:
            self.error(node, f"tile.compute_attention_score: query block {list(q.shape)} and key block {list(k.shape)} differ")
        scale = a["scale"] if a["scale"] is not None else 1.0 / float(q.shape[-1]) ** 0.5
        s = self.reduce("sum", self.binop("mul", q, k, node), -1, False, node)
        return self.binop("mul", s, scale, node)

    # -- indexing tiles and shared buffers --------------------------------------------------------
    def index_spec(self, base: Val, node):
        """Per dim of `base`: None (whole), an index (int / scalar Val) or "new" (None: a unit dim)."""
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        spec = []
        for e in elts:
            if isinstance(e, ast.Constant) and e.value is None:
                spec.append("new")
            elif isinstance(e, ast.Slice):
                if e.lower is not None or e.upper is not None or e.step is not None:
                    self.error(e, f"a {base.kind} is indexed by whole slices (:), indices and None; sub-ranges are "
                                  "not supported")
                spec.append(None)
            else:
                i = self.expr(e)
                if isinstance(i, bool) or not (isinstance(i, int) or (isinstance(i, Val) and i.kind == "scalar"
                                                                       and i.dtype.is_int)):
                    self.error(e, f"a {base.kind} index must be an integer, got {i!r}")
                spec.append(i)
        dims = sum(1 for s in spec if s != "new")
        if dims > len(base.shape):
            self.error(node, f"too many indices for a {base.kind} of shape {list(base.shape)}")
        return spec + [None] * (len(base.shape) - dims)

    def subscript_tile(self, base: Val, node) -> Val:
        spec = self.index_spec(base, node)
        if base.kind == "shared":   # an lvalue for tile.store_shared; read as a tile anywhere else
            return Val("sview", None, base.dtype, self._indexed_shape(base.shape, spec), base=base, offsets=spec)
        return self.extract(base, spec, node)

    @staticmethod
    def _indexed_shape(shape, spec):
        out, d = [], 0
        for s in spec:
            if s == "new":
                out.append(1)
                continue
            if s is None:
                out.append(shape[d])
            d += 1
        return tuple(out)

    def _onehot(self, n, i, node):
        """A bool tile of n elements, true at index i."""
        ar = Val("tile", tb.arange(0, n, self.loc(node)), dt.i32, (n,))
        if isinstance(i, int) and not -n <= i < n:
            self.error(node, f"index {i} is out of range for a dim of size {n}")
        if isinstance(i, int):
            i %= n
        return self.binop("eq", ar, self.cast(self.to_val(i, dt.i32), dt.i32), node)

    def _along(self, t: Val, d, rank):
        """A 1-d tile placed along dim d of a rank-`rank` shape (unit dims elsewhere)."""
        shape = [1] * rank
        shape[d] = t.shape[0]
        return self.reshape_tile(t, tuple(shape))

    def extract(self, x: Val, spec, node) -> Val:
        """x[spec]: indexed dims picked by a one-hot masked sum (any index, runtime included)."""
        x = self.to_val(x)
        rank = len(x.shape)
        d = 0
        picked = []
        for s in spec:
            if s == "new":
                continue
            if s is not None:
                mask = self._along(self._onehot(x.shape[d], s, node), d, rank)
                x = self.select(mask, x, self.cast(self.to_val(0, x.dtype), x.dtype), node)
                picked.append(d)
            d += 1
        for ax in sorted(picked, reverse=True):
            dtype = x.dtype
            x = self.reduce("sum", x, ax, False, node)
            x = self.cast(x, dtype) if x.dtype is not dtype else x
        target = []
        kept = iter(x.shape if x.kind == "tile" else ())
        for s in spec:
            if s == "new":
                target.append(1)
            elif s is None:
                target.append(next(kept))
        if x.kind == "tile" and tuple(target) != x.shape:
            x = self.reshape_tile(x, tuple(target))
        elif x.kind == "scalar" and target:
            x = self.broadcast_to(x, tuple(target))
        return x

    def read_sview(self, v: Val, node) -> Val:
        return self.extract(self.read_shared(v.base), v.offsets, node)

    def b_tile_load_shared(self, node, args, kwargs):
        src = _bind(node, self, "tile.load_shared", [("src", _REQ)], args, kwargs)["src"]
        if not isinstance(src, Val) or src.kind not in ("shared", "sview", "tile"):
            self.error(node, "tile.load_shared reads a shared buffer (or an indexed part of one)")
        return self.to_val(src)

    def b_tile_store_shared(self, node, args, kwargs):
        a = _bind(node, self, "tile.store_shared", [("dst", _REQ), ("value", _REQ)], args, kwargs)
        dst = a["dst"]
        if isinstance(dst, Val) and dst.kind == "shared":
            self.write_shared(dst, a["value"], node)
            return
        if not isinstance(dst, Val) or dst.kind != "sview":
            self.error(node, "tile.store_shared writes a shared buffer or an indexed part of one (buf[:, j])")
        buf, spec = dst.base, dst.offsets
        value = self._fit(a["value"], buf.dtype, dst.shape, node, "tile.store_shared")
        rank = len(buf.shape)
        d, mask = 0, None   # the value gets unit dims where the buffer is indexed, the mask is true there
        kept = list(value.shape) if value.kind == "tile" else []
        vshape, ki = [], 0
        for s in spec:
            if s == "new":
                ki += 1
                continue
            if s is None:
                vshape.append(kept[ki] if ki < len(kept) else 1)
                ki += 1
            else:
                vshape.append(1)
                m = self._along(self._onehot(buf.shape[d], s, node), d, rank)
                mask = m if mask is None else self.logical("and", mask, m, node)
            d += 1
        if value.kind == "tile":
            value = self.reshape_tile(value, tuple(vshape))
        if mask is None:
            self.write_shared(buf, value, node)
            return
        value = self._fit(value, buf.dtype, buf.shape, node, "tile.store_shared")
        tb.store(buf.v, value.v, self.broadcast_to(mask, buf.shape).v, self.loc(node))   # only the indexed elements
