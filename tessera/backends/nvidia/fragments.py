"""Thread-cyclic fragments: how the generic SIMT lowering spreads a tile over a CTA.

A tile of N elements (row-major flat index e) is held by T = num_warps·32 threads: thread t owns
elements e = t + j·T for j < K = ceil(N / T), as a `vector<K x elem>`. Elementwise ops keep this
layout, so they are plain vector ops; anything that moves elements between threads (broadcast,
reduction, transpose, mma) goes through shared memory with gathers and scatters.
"""
from __future__ import annotations

import math

import numpy as np
from mlir import ir
from mlir.dialects import arith, vector, memref


def numel(shape) -> int:
    return int(np.prod(shape)) if len(shape) else 1


def frag_len(shape, threads: int) -> int:
    return max(1, math.ceil(numel(shape) / threads))


def index_t():
    return ir.IndexType.get()


def cidx(v: int):
    return arith.ConstantOp(index_t(), v).result


def vconst(values, elem):
    vt = ir.VectorType.get([len(values)], elem)
    if isinstance(elem, ir.IndexType) or isinstance(elem, ir.IntegerType):
        arr = np.array(values, dtype=np.int64 if isinstance(elem, ir.IndexType) else
                       {1: np.bool_, 8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[elem.width])
    else:
        arr = np.array(values, dtype=np.float32)
    if isinstance(elem, ir.IndexType):
        attr = ir.DenseElementsAttr.get(arr, type=vt)
    else:
        attr = ir.DenseElementsAttr.get_splat(vt, _scalar_attr(values[0], elem)) if len(set(values)) == 1 else \
            ir.DenseElementsAttr.get(arr, type=vt)
    return arith.ConstantOp(vt, attr).result


def _scalar_attr(v, elem):
    if isinstance(elem, (ir.IntegerType, ir.IndexType)):
        return ir.IntegerAttr.get(elem, int(v))
    return ir.FloatAttr.get(elem, float(v))


def splat(value, k: int):
    return vector.BroadcastOp(ir.VectorType.get([k], value.type), value).result


def vsplat_const(v, elem, k):
    vt = ir.VectorType.get([k], elem)
    return arith.ConstantOp(vt, ir.DenseElementsAttr.get_splat(vt, _scalar_attr(v, elem))).result


class Layout:
    """Per-function helper: thread id, lane vectors and masks for each fragment length."""

    def __init__(self, threads: int, tid, anchor):
        self.T = threads
        self.tid = tid
        self.anchor = anchor  # cached values are built before this op, so they dominate every use
        self._lanes = {}

    def lanes(self, k: int):
        """vector<k x index>: the flat element indices this thread owns."""
        if k not in self._lanes:
            with ir.InsertionPoint(self.anchor), self.anchor.location:
                base = splat(self.tid, k)
                steps = vconst([j * self.T for j in range(k)], index_t())
                self._lanes[k] = arith.AddIOp(base, steps).result
        return self._lanes[k]

    def valid(self, shape):
        """i1 mask of owned elements that exist (None when every lane is real)."""
        n, k = numel(shape), frag_len(shape, self.T)
        if n == k * self.T:
            return None
        return arith.CmpIOp(arith.CmpIPredicate.ult, self.lanes(k), splat(cidx(n), k)).result

    def unravel(self, shape, e=None):
        """Per-dim index vectors of the owned elements of a tile of this shape."""
        k = frag_len(shape, self.T)
        e = self.lanes(k) if e is None else e
        out = []
        for d in range(len(shape)):
            inner = numel(shape[d + 1:])
            v = arith.DivUIOp(e, splat(cidx(inner), k)).result if inner != 1 else e
            if d > 0:
                v = arith.RemUIOp(v, splat(cidx(shape[d]), k)).result
            out.append(v)
        return out


def ravel(idx, shape, k):
    """Flat row-major offsets from per-dim index vectors."""
    off = None
    for d, v in enumerate(idx):
        inner = numel(shape[d + 1:])
        term = arith.MulIOp(v, splat(cidx(inner), k)).result if inner != 1 else v
        off = term if off is None else arith.AddIOp(off, term).result
    return off if off is not None else splat(cidx(0), k)


def and_masks(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return arith.AndIOp(a, b).result


def full_mask(k):
    return vsplat_const(1, ir.IntegerType.get_signless(1), k)


def gather(flat, offsets, mask, passthru, k, elem):
    vt = ir.VectorType.get([k], elem)
    return vector.GatherOp(vt, flat, [cidx(0)], offsets, mask if mask is not None else full_mask(k), passthru).result


def scatter(flat, offsets, mask, value, k):
    vector.ScatterOp(None, flat, [cidx(0)], offsets, mask if mask is not None else full_mask(k), value)


def flat_global(m, big=1 << 40):
    """A 1-D memref over the whole allocation of a strided memref, plus its element offset,
    sizes and strides (index values)."""
    mt = ir.MemRefType(m.type)
    r = mt.rank
    md = memref.ExtractStridedMetadataOp(m)
    base, off = md.results[0], md.results[1]
    sizes = list(md.results)[2:2 + r]
    strides = list(md.results)[2 + r:]
    dyn = ir.ShapedType.get_dynamic_size()
    flat_t = ir.MemRefType.get([dyn], mt.element_type, memory_space=mt.memory_space)
    flat = memref.ReinterpretCastOp(flat_t, base, [], [cidx(big)], [], ir.DenseI64ArrayAttr.get([0]),
                                    ir.DenseI64ArrayAttr.get([dyn]), ir.DenseI64ArrayAttr.get([1])).result
    return flat, off, sizes, strides
