"""tessera-lower-graph-to-tile: fusion groups of a ts function → generated tile kernels.

Groups (tessera.graph.plan): consecutive elementwise ops of one shape form one group; every other
op (gemm, fused_delta_gating, reductions, ...) is a group of its own. Each group's kernel is
generated from a DSL template, compiled through the normal frontend for the group's shapes and
dtypes, and its tile IR is added to the module (`func.func` with `tessera.kernel`); the graph
function gets `tessera.kernels`, the kernel names in launch order. The runtime launches them on
row-major [rows, last-dim] views of the arrays. Assumes one `tessera.function` per module, run
after the graph passes (prune, fuse). Ops with no kernel yet are reported at their location. The
collectives (ts.all_reduce, ...) stay host steps of the plan and get no kernel.
"""
from __future__ import annotations

from mlir import ir

name = "tessera-lower-graph-to-tile"


def run(module_op):
    import tessera as ts
    from ..graph.plan import build_plan

    class _M:  # build_plan wants .body
        body = module_op.regions[0].blocks[0]
    if not any(op.operation.name == "func.func" and "tessera.function" in op.operation.attributes
               for op in _M.body.operations):
        return  # no graph function: nothing to lower
    plan = build_plan(_M)
    names = []
    # one symbol per launch, none the graph function's own (a function may be named like a template)
    taken = {ir.StringAttr(op.attributes["sym_name"]).value for op in _M.body.operations
             if "sym_name" in op.operation.attributes}
    for st in plan.steps:
        if st.kernel is None:   # a host step (a collective, tessera.graph.collective_steps): no kernel
            continue
        ck = ts.compile(st.kernel, *st.examples, target="cpu", **st.constexprs)
        name_ = ck.name if ck.name not in taken else f"{ck.name}_{len(names)}"
        while name_ in taken:
            name_ += "_"
        taken.add(name_)
        names.append(name_)
        parsed = ir.Module.parse(ck.asm["tile"], context=module_op.context)
        for op in list(parsed.body.operations):
            op.operation.detach_from_parent()
            op.operation.attributes["sym_name"] = ir.StringAttr.get(name_)
            module_op.regions[0].blocks[0].append(op.operation)
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name == "func.func" and "tessera.function" in f.attributes:
            f.attributes["tessera.kernels"] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in names])
