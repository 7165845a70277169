"""Running an optimised ts graph: each fusion group becomes a tile kernel (generated from DSL
templates, compiled by the normal kernel path for the arrays' backend) launched in program order
on row-major [rows, last-dim] views of the arrays. The plan is built once per traced signature."""
from __future__ import annotations

import numpy as np
from mlir import ir

from .errors import CompilationError
from .ir.locations import error_at
from .passes.graph_match import op_of, strip_casts


def _shape(t):
    return tuple(ir.RankedTensorType(t).shape)


def _np_dtype(t):
    from .frontend.codegen.base import dtype_of
    return dtype_of(ir.RankedTensorType(t).element_type).to_numpy()


class Step:
    def __init__(self, kernel, grid, args, constexprs, out_slot, out_shape, out_dtype, label):
        self.kernel, self.grid, self.args, self.constexprs = kernel, grid, args, constexprs
        self.out_slot, self.out_shape, self.out_dtype, self.label = out_slot, out_shape, out_dtype, label


class Plan:
    def __init__(self, n_args):
        self.n_args = n_args
        self.steps = []
        self.constants = {}   # slot -> numpy array
        self.outputs = []

    @property
    def kernel_count(self):
        return len(self.steps)


def _rows(shape):
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


def build_plan(module) -> Plan:
    from .gdn import generated
    f = next(op.operation for op in module.body.operations if op.operation.name == "func.func")
    block = f.regions[0].blocks[0]
    plan = Plan(len(block.arguments))
    slots = {}

    def slot_of(v):
        key = v.get_name() if hasattr(v, "get_name") else str(v)
        return slots.get(key)

    def bind(v, s):
        slots[v.get_name()] = s

    for i, a in enumerate(block.arguments):
        bind(a, ("arg", i))
    for op in block.operations:
        op = op.operation
        name = op.name
        if name == "ts.fused_delta_gating":
            seg = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
            ops = list(op.operands)
            n = seg[1]
            target, srcs, ws, coeffs = ops[0], ops[1:1 + n], ops[1 + n:1 + 2 * n], ops[1 + 2 * n:1 + 3 * n]
            residual = bool(seg[4])
            sparse = bool(ir.BoolAttr(op.attributes["sparse"]).value)
            dists = list(ir.DenseF64ArrayAttr(op.attributes["distances"]))
            coeff_slot, cidx = _coefficients(op, coeffs, slot_of, plan, len(slots) + len(plan.constants))
            k = generated.fused_delta_gating(n, residual, sparse, "tensor")
            shape = _shape(op.results[0].type)
            ce = {f"D{i}": float(d) for i, d in enumerate(dists)}
            ce.update({f"C{i}": int(c) for i, c in enumerate(cidx)})
            ce.update(RESIDUAL=residual, SPARSE=sparse, BLOCK_R=32)
            out = ("tmp", len(plan.steps))
            args = [slot_of(target)] + [slot_of(s) for s in srcs] + [slot_of(w) for w in ws] + [coeff_slot, out]
            if any(a is None for a in args):
                raise error_at(op.location, "ts.fused_delta_gating: an operand is not a tensor argument or a computed tensor")
            plan.steps.append(Step(k, (-(-_rows(shape) // 32),), args, ce, out, shape,
                                   _np_dtype(op.results[0].type), "fused_delta_gating"))
            bind(op.results[0], out)
        elif name == "func.return":
            plan.outputs = [slot_of(v) for v in op.operands]
        elif name in ("arith.constant", "tensor.extract", "ts.cast") and not isinstance(op.results[0].type, ir.RankedTensorType):
            continue  # scalars feed the kernels that use them (coefficients)
        else:
            raise error_at(op.location, f"'{name}' cannot run yet: tessera-lower-graph-to-tile handles "
                                        "ts.fused_delta_gating so far")
    return plan


def _coefficients(op, coeffs, slot_of, plan, fresh):
    """Coefficient operands → (slot of a 1-D tensor, index of each coefficient in it)."""
    sources = []
    for c in coeffs:
        v = strip_casts(c)
        o = op_of(v)
        if o is not None and o.name == "tensor.extract":
            t = o.operands[0]
            shape = _shape(t.type)
            idx = []
            for i in list(o.operands)[1:]:
                io = op_of(i)
                if io is None or io.name != "arith.constant":
                    raise error_at(op.location, "coefficient indices must be constants")
                idx.append(ir.IntegerAttr(io.attributes["value"]).value)
            sources.append(("extract", slot_of(t), int(np.ravel_multi_index(idx, shape))))
        elif o is not None and o.name == "arith.constant":
            sources.append(("const", None, float(ir.FloatAttr(o.attributes["value"]).value)))
        else:
            raise error_at(op.location, "coefficients must be constants or elements of a tensor argument")
    if all(k == "const" for k, _, _ in sources):
        slot = ("const", len(plan.constants))
        plan.constants[slot] = np.array([v for _, _, v in sources], np.float32)
        return slot, list(range(len(sources)))
    tensors = {s for k, s, _ in sources if k == "extract"}
    if len(tensors) != 1 or any(k == "const" for k, _, _ in sources):
        raise error_at(op.location, "coefficients must all come from one tensor (or all be constants)")
    return ("flat", tensors.pop()), [i for _, _, i in sources]


def run(plan: Plan, args, xp):
    """Execute with NumPy (CPU backend) or CuPy (GPU) arrays; returns the outputs."""
    values = {("arg", i): a for i, a in enumerate(args)}
    for slot, arr in plan.constants.items():
        values[slot] = xp.asarray(arr)

    def get(slot, for_kernel=True):
        if slot[0] == "flat":
            return get(slot[1]).reshape(-1)
        v = values[slot]
        if for_kernel and v.ndim != 2 and slot[0] in ("arg", "tmp"):
            if v.ndim < 1:
                raise CompilationError("a scalar cannot be a kernel tensor")
            return v.reshape(-1, v.shape[-1])
        return v

    for st in plan.steps:
        out = xp.empty(st.out_shape, dtype=st.out_dtype)
        values[st.out_slot] = out
        st.kernel[st.grid](*[get(a) for a in st.args], **st.constexprs)
    return [values[s] for s in plan.outputs]
