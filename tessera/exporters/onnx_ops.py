"""ONNX converters of the elementwise (arith / math), constant, shape and reduction ops of `ts` graphs.

A converter takes the OnnxGraphBuilder and the MLIR op and returns the ONNX name of each result (a
str for one result). CONVERTERS maps op names to converters; onnx_gating.py has those of the GEMM and
GDN gating ops.
"""
from __future__ import annotations

import numpy as np
from mlir import ir
from onnx import TensorProto

def registry(table):
    """A decorator factory: @converter("op.name", ...) records the function in `table`."""
    def converter(*names):
        def register(f):
            for n in names:
                table[n] = f
            return f
        return register
    return converter


CONVERTERS = {}
converter = registry(CONVERTERS)


def _operands(b, op):
    return [b.name_of(v) for v in op.operands]


# -- elementwise --------------------------------------------------------------------------------
# arith / math ops whose ONNX counterpart has the same operands and numpy broadcasting semantics.
# (Integer division: arith.divsi and ONNX Div on integers both truncate toward zero.)
_SAME_OPERANDS = {
    "arith.addf": "Add", "arith.addi": "Add", "arith.subf": "Sub", "arith.subi": "Sub",
    "arith.mulf": "Mul", "arith.muli": "Mul", "arith.divf": "Div", "arith.divsi": "Div",
    "arith.maximumf": "Max", "arith.maxnumf": "Max", "arith.maxsi": "Max",
    "arith.minimumf": "Min", "arith.minnumf": "Min", "arith.minsi": "Min",
    "arith.negf": "Neg", "arith.andi": "And", "arith.ori": "Or", "arith.xori": "Xor",
    "arith.select": "Where",
    "math.exp": "Exp", "math.log": "Log", "math.sqrt": "Sqrt", "math.tanh": "Tanh",
    "math.absf": "Abs", "math.absi": "Abs", "math.powf": "Pow", "math.erf": "Erf",
    "math.floor": "Floor", "math.ceil": "Ceil", "math.sin": "Sin", "math.cos": "Cos",
    "ts.sigmoid": "Sigmoid",
}


def _same_operands(op_type):
    return lambda b, op: b.math(op_type, list(op.operands), b.elem(op.results[0]))


for _name, _op_type in _SAME_OPERANDS.items():
    converter(_name)(_same_operands(_op_type))


@converter("math.rsqrt")
def _rsqrt(b, op):
    return b.node("Reciprocal", [b.node("Sqrt", _operands(b, op))])


# arith's integer and float comparison predicates (their enum values) → (ONNX op, negate the result)
_CMPI = {0: ("Equal", False), 1: ("Equal", True), 2: ("Less", False), 3: ("LessOrEqual", False),
         4: ("Greater", False), 5: ("GreaterOrEqual", False)}          # eq ne slt sle sgt sge
_CMPF = {1: ("Equal", False), 2: ("Greater", False), 3: ("GreaterOrEqual", False), 4: ("Less", False),
         5: ("LessOrEqual", False), 6: ("Equal", True), 8: ("Equal", False), 9: ("Greater", False),
         10: ("GreaterOrEqual", False), 11: ("Less", False), 12: ("LessOrEqual", False), 13: ("Equal", True)}
# (ordered oeq ogt oge olt ole one, unordered ueq ugt uge ult ule une: NaN operands are not modelled)


@converter("arith.cmpi", "arith.cmpf")
def _compare(b, op):
    table = _CMPI if op.name == "arith.cmpi" else _CMPF
    pred = ir.IntegerAttr(op.attributes["predicate"]).value
    if pred not in table:
        raise b.error(op, f"cannot export '{op.name}' with predicate {pred} to ONNX")
    op_type, negate = table[pred]
    r = b.math(op_type, list(op.operands), TensorProto.BOOL)
    return b.node("Not", [r]) if negate else r


@converter("arith.extf", "arith.truncf", "arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.fptoui",
           "arith.extsi", "arith.extui", "arith.trunci", "arith.index_cast", "ts.cast")
def _cast(b, op):
    return b.node("Cast", _operands(b, op), to=b.elem(op.results[0]))


# -- constants ----------------------------------------------------------------------------------
@converter("arith.constant")
def _constant(b, op):
    """An initializer of the constant's value (a splat is stored whole: ONNX has no splat initializer,
    and the tracer's splats are small shape-sized constants)."""
    res = op.results[0]
    onnx_type, shape = b.elem(res), b.shape(res)
    attr = op.attributes["value"]
    if isinstance(attr, (ir.FloatAttr, ir.IntegerAttr)):
        value = np.asarray(attr.value)
    elif isinstance(attr, (ir.DenseFPElementsAttr, ir.DenseIntElementsAttr)):
        if attr.is_splat:   # (also the one way to read bf16 / fp8 values: NumPy has no such dtypes)
            value = np.full(shape, attr.get_splat_value().value)
        else:
            try:
                value = np.array(attr).reshape(shape)
            except (TypeError, ValueError, RuntimeError) as e:
                raise b.error(op, f"cannot export the constant of type {res.type} to ONNX ({e})") from None
    else:
        raise b.error(op, f"cannot export the constant {attr} to ONNX")
    return b.const(value, onnx_type, "const")


# -- shapes -------------------------------------------------------------------------------------
@converter("ts.broadcast")
def _broadcast(b, op):
    return b.node("Expand", [b.name_of(op.operands[0]), b.ints(b.shape(op.results[0]))])


@converter("ts.reshape")
def _reshape(b, op):
    return b.node("Reshape", [b.name_of(op.operands[0]), b.ints(b.shape(op.results[0]))])


@converter("ts.transpose")
def _transpose(b, op):
    return b.node("Transpose", _operands(b, op), perm=list(ir.DenseI64ArrayAttr(op.attributes["perm"])))


@converter("ts.concatenate")
def _concatenate(b, op):
    return b.node("Concat", _operands(b, op), axis=ir.IntegerAttr(op.attributes["axis"]).value)


@converter("ts.slice")
def _slice(b, op):
    """x[offsets : offsets + sizes] on every axis, then the squeezed (integer-indexed) axes dropped."""
    offsets = list(ir.DenseI64ArrayAttr(op.attributes["offsets"]))
    sizes = list(ir.DenseI64ArrayAttr(op.attributes["sizes"]))
    squeeze = [i for i, q in enumerate(ir.DenseI64ArrayAttr(op.attributes["squeeze"])) if q]
    axes = list(range(len(offsets)))
    r = b.node("Slice", [b.name_of(op.operands[0]), b.ints(offsets), b.ints([o + s for o, s in zip(offsets, sizes)]),
                         b.ints(axes)])
    return b.node("Squeeze", [r, b.ints(squeeze)]) if squeeze else r


@converter("tensor.extract")
def _extract(b, op):
    """x[i, j, ...] → a 0-d value: one Gather per index with a 0-d index, each dropping the leading axis."""
    x = b.name_of(op.operands[0])
    for idx in list(op.operands)[1:]:
        x = b.node("Gather", [x, b.operand(idx, TensorProto.INT64)], axis=0)
    return x


@converter("ts.embedding")
def _embedding(b, op):
    ids, table = op.operands
    return b.node("Gather", [b.name_of(table), b.name_of(ids)], axis=0)


# -- reductions and normalisations --------------------------------------------------------------
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin"}


@converter("ts.reduce")
def _reduce(b, op):
    kind = ir.StringAttr(op.attributes["kind"]).value
    axes = list(ir.DenseI64ArrayAttr(op.attributes["axes"]))
    keepdims = ir.BoolAttr(op.attributes["keepdims"]).value
    x = b.operand(op.operands[0], b.elem(op.results[0]))   # f16 / bf16 inputs reduce in f32 (the result's type)
    return b.reduce(_REDUCE[kind], x, axes, keepdims)


@converter("ts.l2_norm")
def _l2_norm(b, op):
    axis = ir.IntegerAttr(op.attributes["axis"]).value
    keepdims = ir.BoolAttr(op.attributes["keepdims"]).value
    return b.reduce("ReduceL2", b.operand(op.operands[0], b.elem(op.results[0])), [axis], keepdims)


@converter("ts.softmax")
def _softmax(b, op):
    return b.node("Softmax", _operands(b, op), axis=ir.IntegerAttr(op.attributes["axis"]).value)


# -- ops with no ONNX export: converters that explain why -----------------------------------------
@converter("ts.dropout")
def _dropout(b, op):
    raise b.error(op, "cannot export 'ts.dropout' to ONNX: training-mode dropout draws its mask from "
                      "tessera's counter-based hash; export a graph traced with ts.ops.dropout(..., training=False)")


@converter("ts.all_reduce", "ts.all_gather", "ts.reduce_scatter", "ts.dist_broadcast")
def _collective(b, op):
    raise b.error(op, f"cannot export '{op.name}' to ONNX: a collective over a device mesh has no ONNX "
                      "counterpart (export the single-device graph)")


# -- results ------------------------------------------------------------------------------------
def convert_return(b, op, output_names, scalar_results):
    """Graph outputs: an Identity per result under its output name (a result may be an input or a
    constant, which ONNX cannot list as an output directly); 0-d results are reshaped to 0-d."""
    values = list(op.operands)
    if output_names is None:
        output_names = ["output"] if len(values) == 1 else [f"output_{i}" for i in range(len(values))]
    output_names = list(output_names)
    if len(output_names) != len(values):
        from ..errors import TesseraError
        raise TesseraError(f"export_onnx: output_names has {len(output_names)} names for {len(values)} results")
    from onnx import helper
    for i, (v, name) in enumerate(zip(values, output_names)):
        b.claim(name, "an output")
        src, shape = b.name_of(v), b.shape(v)
        if i in scalar_results:   # traced as a 1-element tensor, returned by tessera as a 0-d array
            src, shape = b.node("Reshape", [src, b.ints([])]), []
        b.nodes.append(helper.make_node("Identity", [src], [name], name=b.fresh("output_identity")))
        b.outputs.append(helper.make_tensor_value_info(name, b.elem(v), shape))
