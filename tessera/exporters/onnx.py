"""ONNX export of a traced `@ts.function` graph (docs/export.md).

The exporter walks the `ts`-dialect module of a `CompiledFunction` with the MLIR Python bindings and
builds the ONNX graph with the `onnx` package: function arguments become graph inputs (or
initializers), `arith.constant`s become initializers, each op becomes one or a few ONNX nodes (the
converters live in onnx_ops.py and onnx_gating.py), and the returned values become graph outputs.

Which stage is exported: by default the graph as traced (`asm["ts"]`), not the optimised one
(`asm["ts.opt"]`). The traced graph is what the user wrote and holds only the ops the tracer emits;
the graph pipeline adds fused ops (`ts.fused_delta_gating`, `ts.gemm_epilogue`) whose set grows with
the passes, and ONNX runtimes fuse on their own. `stage="ts.opt"` exports the optimised graph (the
fused ops are decomposed back into ONNX nodes); use it where the pipeline pruned delta connections
(tessera-prune-sparse-deltas with bound parameters, or run-time skipping of small coefficients), since
only that stage reproduces the pruned numerics tessera runs.
"""
from __future__ import annotations

import numpy as np
import onnx
from mlir import ir
from onnx import TensorProto, helper, numpy_helper

from ..errors import TesseraError
from ..ir.locations import error_at, source_position

DEFAULT_OPSET = 18
MIN_OPSET = 13          # Softmax over one axis, Squeeze/Unsqueeze/ReduceSum axes as inputs

# MLIR element types → ONNX tensor element types
ELEMENT_TYPES = {
    "f32": TensorProto.FLOAT, "f64": TensorProto.DOUBLE, "f16": TensorProto.FLOAT16,
    "bf16": TensorProto.BFLOAT16, "i1": TensorProto.BOOL, "i8": TensorProto.INT8,
    "i16": TensorProto.INT16, "i32": TensorProto.INT32, "i64": TensorProto.INT64,
    "ui8": TensorProto.UINT8, "index": TensorProto.INT64,
    "f8E4M3FN": TensorProto.FLOAT8E4M3FN, "f8E5M2": TensorProto.FLOAT8E5M2,
}
_LOW_PRECISION = (TensorProto.FLOAT16, TensorProto.BFLOAT16)
# ONNX types NumPy has no dtype for: their tensors are built from f32 values by onnx.helper.make_tensor
_NO_NUMPY = (TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2)


def export_onnx(compiled, path=None, *, stage="ts", input_names=None, output_names=None,
                initializers=None, opset=DEFAULT_OPSET, low_precision_math="native", model_name=None,
                external_data=False):
    """Export a `ts.compile`d `@ts.function` as an ONNX model; returns the `onnx.ModelProto`
    (checked with `onnx.checker.check_model`) and saves it to `path` when one is given.

    compiled:      the `CompiledFunction` of `ts.compile(fn, *example_args)`. Shapes and dtypes are
                   those of the example arguments (ONNX inputs have static shapes).
    stage:         "ts" (default: the graph as traced) or "ts.opt" (after the graph pipeline); see the
                   module docstring for why the traced graph is the default.
    input_names:   {argument label: ONNX name}. Argument labels are the function's parameter names,
                   list elements as "name[i]" (the `tessera.arg_names` of the graph: "input_ids",
                   "params[3]", ...). Unmapped arguments keep their label as their ONNX name.
    output_names:  one name per result (default "output", or "output_0", "output_1", ...).
    initializers:  {argument label: array} — these arguments become initializers (weights stored in
                   the model) instead of graph inputs; a list argument's name may map to the list of
                   its arrays ({"params": params}). Values must have the argument's shape; they are
                   converted to its dtype.
    opset:         the default-domain opset to target (>= 13; default 18).
    low_precision_math: "native" (default) computes elementwise math on f16 / bf16 values in their
                   own type, as the graph says; "f32" casts them to f32 around each elementwise node
                   and back, for runtimes without f16 / bf16 arithmetic kernels (onnxruntime's CPU
                   provider has no bf16 Add, Sub, ...). GEMMs and reductions accumulate in f32 anyway.
    model_name:    the ONNX graph name (default: the function's name).
    external_data: save the initializers to a file next to `path` (needed for models over 2 GB).

    Results tessera returns as 0-d arrays are 0-d ONNX outputs. An op without an ONNX mapping raises
    a CompilationError naming the op, at the user's source line that produced it.
    """
    try:
        return _export(compiled, path, stage, input_names, output_names, initializers, opset, low_precision_math,
                       model_name, external_data)
    except TesseraError as e:   # the user's location, not the exporter's frames (unless TESSERA_DEBUG=1)
        from ..frontend.kernel import _reraise
        _reraise(e)


def _export(compiled, path, stage, input_names, output_names, initializers, opset, low_precision_math,
            model_name, external_data):
    if opset < MIN_OPSET:
        raise TesseraError(f"export_onnx: opset {opset} is too old; tessera exports opset {MIN_OPSET} or newer")
    if low_precision_math not in ("native", "f32"):
        raise TesseraError(f"export_onnx: low_precision_math must be 'native' or 'f32', got {low_precision_math!r}")
    module_text, ctx, scalar_results, default_name = _stage_text(compiled, stage)
    with ctx, ir.Location.unknown():
        module = ir.Module.parse(module_text)
        func_op = _entry_function(module)
        builder = OnnxGraphBuilder(opset, low_precision_math == "f32")
        _convert_function(builder, func_op, input_names or {}, output_names, initializers or {}, scalar_results)
    graph = helper.make_graph(builder.nodes, model_name or default_name, builder.inputs, builder.outputs,
                              initializer=builder.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="tessera",
                              ir_version=helper.find_min_ir_version_for(opsets))
    try:
        if path is not None:
            from pathlib import Path
            onnx.save_model(model, str(path), save_as_external_data=external_data,
                            location=f"{Path(path).name}.data")   # (used only with external data)
            onnx.checker.check_model(str(path), full_check=True)   # by path: works past 2 GB too
        else:
            onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        # e.g. fp8 operands of ops whose ONNX schema does not take fp8 (Gather of fp8 weights)
        raise TesseraError(f"the exported ONNX model does not pass onnx.checker: {str(e).strip()[:600]}") from None
    return model


def _stage_text(compiled, stage):
    """(module text, MLIR context to parse it in, 0-d result indices, graph name) of `compiled`."""
    asm = getattr(compiled, "asm", None)
    traced = getattr(compiled, "traced", None)
    if not isinstance(asm, dict) or traced is None:
        raise TesseraError(f"export_onnx takes the result of ts.compile(fn, ...) of a @ts.function, got {compiled!r}")
    if stage not in ("ts", "ts.opt") or stage not in asm:
        raise TesseraError(f"export_onnx: stage must be 'ts' or 'ts.opt' (stages here: {list(asm)}), got {stage!r}")
    name = getattr(getattr(compiled, "fn", None), "__name__", "tessera_graph")
    return asm[stage], traced.tracer.ctx, tuple(traced.scalar_results), name


def _entry_function(module):
    funcs = [op.operation for op in module.body.operations if op.operation.name == "func.func"]
    tagged = [f for f in funcs if "tessera.function" in f.attributes]
    if len(tagged or funcs) != 1:
        raise TesseraError(f"export_onnx: expected one graph function in the module, found {len(tagged or funcs)}")
    return (tagged or funcs)[0]


def _expand_initializers(initializers, labels):
    """{label: array} from the caller's mapping, where a list argument's name may map to its list."""
    out = {}
    for key, value in initializers.items():
        if key in labels:
            out[key] = value
        elif isinstance(value, (list, tuple)) and f"{key}[0]" in labels:
            n = sum(1 for lab in labels if lab.startswith(f"{key}["))
            if len(value) != n:
                raise TesseraError(f"export_onnx: initializers[{key!r}] has {len(value)} arrays, the argument {n}")
            out.update({f"{key}[{i}]": v for i, v in enumerate(value)})
        else:
            raise TesseraError(f"export_onnx: initializers names {key!r}, which is no argument of the graph "
                               f"(arguments: {_short_list(labels)})")
    return out


def _short_list(labels, n=8):
    return ", ".join(labels[:n]) + (f", ... ({len(labels)} in all)" if len(labels) > n else "")


def _convert_function(b, func_op, input_names, output_names, initializers, scalar_results):
    from . import onnx_gating, onnx_ops
    converters = {**onnx_ops.CONVERTERS, **onnx_gating.CONVERTERS}
    block = func_op.regions[0].blocks[0]
    args = list(block.arguments)
    labels = [ir.StringAttr(a).value for a in ir.ArrayAttr(func_op.attributes["tessera.arg_names"])] \
        if "tessera.arg_names" in func_op.attributes else [f"arg{i}" for i in range(len(args))]
    unknown = set(input_names) - set(labels)
    if unknown:
        raise TesseraError(f"export_onnx: input_names names {sorted(unknown)}, which are no arguments of the graph "
                           f"(arguments: {_short_list(labels)})")
    values = _expand_initializers(initializers, labels)
    for arg, label in zip(args, labels):
        name = input_names.get(label, label)
        if label in values:
            b.initializer_for_argument(arg, name, values[label], label)
        else:
            b.graph_input(arg, name)
    for op in block.operations:
        op = op.operation
        b.current_op = op
        if op.name == "func.return":
            onnx_ops.convert_return(b, op, output_names, scalar_results)
            continue
        convert = converters.get(op.name)
        if convert is None:
            raise b.error(op, f"cannot export '{op.name}' to ONNX: the exporter has no mapping for it")
        results = convert(b, op)
        for res, name in zip(op.results, [results] if isinstance(results, str) else results):
            b.bind(res, name)


class OnnxGraphBuilder:
    """The ONNX graph under construction: nodes, inputs, outputs, initializers, and the ONNX name
    of every MLIR value converted so far."""

    def __init__(self, opset, low_precision_as_f32=False):
        self.opset = opset
        self.low_precision_as_f32 = low_precision_as_f32
        self.nodes, self.inputs, self.outputs, self.initializers = [], [], [], []
        self.names = {}            # MLIR value → ONNX tensor name
        self.used = set()          # every ONNX name in use
        self.shared_consts = {}    # (dtype, shape, bytes) → initializer name, so shape operands are not repeated
        self.current_op = None     # the op being converted: its source location documents the nodes

    # -- names and types ------------------------------------------------------------------------
    def fresh(self, hint):
        hint = hint.replace(".", "_")
        n, name = 0, hint
        while name in self.used:
            n += 1
            name = f"{hint}_{n}"
        self.used.add(name)
        return name

    def claim(self, name, what):
        if name in self.used:
            raise TesseraError(f"export_onnx: the name {name!r} of {what} is used twice")
        self.used.add(name)
        return name

    def name_of(self, value):
        return self.names[value]

    def bind(self, value, name):
        self.names[value] = name

    def elem(self, value_or_type):
        """The ONNX element type of an MLIR value or type (a tensor's element type, or a scalar's)."""
        t = getattr(value_or_type, "type", value_or_type)
        e = t.element_type if isinstance(t, ir.ShapedType) else t
        try:
            return ELEMENT_TYPES[str(e)]
        except KeyError:
            raise self.error(self.current_op, f"cannot export values of type {t} to ONNX") from None

    @staticmethod
    def shape(value_or_type):
        """The static shape of an MLIR value or type ([] for a scalar)."""
        t = getattr(value_or_type, "type", value_or_type)
        return list(t.shape) if isinstance(t, ir.ShapedType) else []

    def error(self, op, msg):
        return error_at(op.location if op is not None else None, msg)

    def _location_doc(self):
        if self.current_op is None:
            return None
        f, line, col = source_position(self.current_op.location)
        return f"{self.current_op.name} at {f}:{line}:{col}" if f else self.current_op.name

    # -- building -------------------------------------------------------------------------------
    def node(self, op_type, inputs, outputs=1, **attrs):
        """Append one node; returns its output name (a list when outputs > 1)."""
        names = [self.fresh(f"{op_type}_out") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.fresh(op_type),
                                           doc_string=self._location_doc(), **attrs))
        return names[0] if outputs == 1 else names

    def graph_input(self, arg, name):
        self.claim(name, "an input")
        self.inputs.append(helper.make_tensor_value_info(name, self.elem(arg), self.shape(arg)))
        self.bind(arg, name)

    def initializer_for_argument(self, arg, name, value, label):
        value = np.asarray(value)
        if list(value.shape) != self.shape(arg):
            raise TesseraError(f"export_onnx: initializers[{label!r}] has shape {list(value.shape)}, "
                               f"the argument {self.shape(arg)}")
        self.claim(name, "an initializer")
        self.initializers.append(_tensor_proto(name, value, self.elem(arg)))
        self.bind(arg, name)

    def const(self, array, onnx_type=None, hint="const"):
        """An initializer holding `array` (of `onnx_type`, default the array's own); small ones are shared."""
        array = np.asarray(array)
        onnx_type = onnx_type if onnx_type is not None else helper.np_dtype_to_tensor_dtype(array.dtype)
        key = (onnx_type, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self.shared_consts:
            return self.shared_consts[key]
        name = self.fresh(hint)
        self.initializers.append(_tensor_proto(name, array, onnx_type))
        if key is not None:
            self.shared_consts[key] = name
        return name

    def ints(self, values):
        """A 1-d int64 initializer (shapes, axes, starts, ...)."""
        return self.const(np.asarray(list(values), np.int64), TensorProto.INT64, "ints")

    def scalar(self, v, onnx_type):
        """A 0-d initializer of `onnx_type`."""
        return self.const(np.asarray(v, np.float64 if _is_float(onnx_type) else np.int64), onnx_type, "scalar")

    def cast(self, name, from_type, to_type):
        return name if from_type == to_type else self.node("Cast", [name], to=to_type)

    def operand(self, value, onnx_type=None):
        """The ONNX name of an operand, cast to `onnx_type` when given and different."""
        name = self.name_of(value)
        return name if onnx_type is None else self.cast(name, self.elem(value), onnx_type)

    def math(self, op_type, values, result_type, **attrs):
        """An elementwise node on MLIR values; with low_precision_as_f32, its f16 / bf16 operands are cast
        to f32 and a f16 / bf16 result is cast back (onnxruntime's CPU kernels lack that arithmetic)."""
        if not self.low_precision_as_f32 or not any(self.elem(v) in _LOW_PRECISION for v in values):
            return self.node(op_type, [self.name_of(v) for v in values], **attrs)
        names = [self.operand(v, TensorProto.FLOAT) if self.elem(v) in _LOW_PRECISION else self.name_of(v)
                 for v in values]
        r = self.node(op_type, names, **attrs)
        return self.cast(r, TensorProto.FLOAT, result_type) if result_type in _LOW_PRECISION else r

    def reduce(self, op_type, x, axes, keepdims):
        """A Reduce* node: axes are an input from opset 18 (ReduceSum: 13), an attribute before."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op_type, [x], axes=list(axes), keepdims=int(keepdims))


def _is_float(onnx_type):
    return onnx_type in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16) + _NO_NUMPY


def _tensor_proto(name, array, onnx_type):
    if onnx_type in _NO_NUMPY:   # bf16 / fp8: onnx rounds f32 values to the type
        return helper.make_tensor(name, onnx_type, list(array.shape), np.asarray(array, np.float32).ravel())
    return numpy_helper.from_array(np.asarray(array, helper.tensor_dtype_to_np_dtype(onnx_type)), name)
