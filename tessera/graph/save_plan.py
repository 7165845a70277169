"""Saving a compiled @ts.function for a process without MLIR: `CompiledFunction.save(directory, target=None)`
writes the plan's steps, constants and one compiled artifact per distinct kernel (the format is in
tessera.runtime.saved_plan, which loads it: `tessera.runtime.load_plan(directory)`).

The kernels are compiled here, for the saved target, exactly as a run compiles them: each step's kernel with
its example views and its launch constexprs (Step.launch_config(target)); a callable grid is resolved for
that target now, so the loader needs neither the kernels' sources nor the grid functions."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from ..errors import TesseraError
from ..runtime.saved_plan import CONSTANTS, FORMAT, PLAN_MANIFEST, dtype_from_name, dtype_name, encode, sha256


def describe_arguments(sig) -> list[dict]:
    """A call's parameters (tessera.frontend.function.Signature) as the loader checks them: arrays by shape
    and dtype, lists of arrays element by element, constants by repr (they were compiled in)."""
    out = []
    for name, kind, v in sig.items:
        if kind == "tensor":
            out.append({"name": name, "kind": "tensor", "shape": [int(n) for n in v.shape], "dtype": dtype_name(v.dtype)})
        elif kind == "list":
            out.append({"name": name, "kind": "list", "elements": [
                {"shape": [int(n) for n in x.shape], "dtype": dtype_name(x.dtype)} for x in v]})
        elif kind == "module":   # a ts.Module: its parameters, by dotted name (the loader takes a state dict)
            out.append({"name": name, "kind": "module", "parameters": [
                {"name": n, "shape": [int(k) for k in a.shape], "dtype": dtype_name(a.dtype)}
                for n, a in v.named_parameters()]})
        elif kind == "bound":
            out.append({"name": name, "kind": "bound"})
        else:
            out.append({"name": name, "kind": "const", "repr": repr(v)})
    return out


def _check_saveable(cf, target):
    from .. import TARGET_ALIASES
    from ..compiler import TARGETS
    if cf.plan is None:
        raise cf.plan_error
    if getattr(cf.traced, "pack", None) is not None:
        raise TesseraError(f"{cf.fn.__name__}: a gradient function's result structure cannot be saved yet; "
                           "save the plain function")
    if getattr(cf, "arg_spec", None) is None:
        raise TesseraError(f"{cf.fn.__name__}: this compiled function has no record of its parameters to save")
    target = TARGET_ALIASES.get(target, target)
    if target not in TARGETS:
        raise TesseraError(f"unknown target '{target}' (known: {', '.join(TARGETS)})")
    host = sorted({st.label for st in cf.plan.steps if st.kernel is None})
    if host:
        raise TesseraError(f"{cf.fn.__name__}: its plan has host steps ({', '.join(host)}): collectives run "
                           "tessera.dist on the host and cannot be saved as kernels; save a plan without them")
    return target


def _constexprs_json(ce):
    return {k: v for k, v in ce.items() if isinstance(v, (bool, int, float, str))}


def save_plan(cf, directory, target=None) -> str:
    """Write the compiled function `cf` (tessera.graph.compile.CompiledFunction) to `directory` for `target`
    (default: the target it was compiled for). Returns the directory."""
    import tessera as ts
    from ..compiler import COMPILER_ID
    target = _check_saveable(cf, target or cf.target)
    directory = os.fspath(directory)
    if os.path.isfile(os.path.join(directory, PLAN_MANIFEST)):   # saving over an older plan: none of its kernels stay
        shutil.rmtree(os.path.join(directory, "kernels"), ignore_errors=True)
        if os.path.exists(os.path.join(directory, CONSTANTS)):
            os.remove(os.path.join(directory, CONSTANTS))
    os.makedirs(os.path.join(directory, "kernels"), exist_ok=True)
    kernel_dirs, steps = {}, []   # id(CompiledKernel) -> its artifact folder (one per distinct kernel)
    for st in cf.plan.steps:
        grid, ce = st.launch_config(target)
        ck = ts.compile(st.kernel, *st.examples, target=target, **ce)
        if id(ck) not in kernel_dirs:
            rel = f"kernels/{len(kernel_dirs):03d}_{ck.name}"
            ck.save(os.path.join(directory, rel))
            kernel_dirs[id(ck)] = rel
        steps.append({"label": st.label, "kernel": kernel_dirs[id(ck)], "grid": [int(g) for g in grid],
                      "constexprs": _constexprs_json(ce), "args": encode(st.args),
                      "outs": [[encode(slot), encode(shape), dtype_name(dtype)] for slot, shape, dtype in st.outs]})
    constants = []
    arrays = {}
    for i, (slot, arr) in enumerate(cf.plan.constants.items()):
        arr = np.ascontiguousarray(arr)
        key = f"c{i}"
        native = _is_native(arr.dtype)
        arrays[key] = arr if native else arr.view(f"u{arr.dtype.itemsize}")   # bf16 / fp8: their bits
        constants.append({"slot": encode(slot), "key": key, "shape": list(arr.shape), "dtype": dtype_name(arr.dtype)})
    if arrays:
        np.savez(os.path.join(directory, CONSTANTS), **arrays)
    files = {}
    for root, _, names in os.walk(directory):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), directory).replace(os.sep, "/")
            if rel != PLAN_MANIFEST:
                files[rel] = sha256(os.path.join(root, n))
    manifest = {
        "kind": "tessera.saved_plan", "format": FORMAT, "function": cf.fn.__name__, "target": target,
        "compiler": COMPILER_ID, "n_args": cf.plan.n_args, "signature": cf.arg_spec,
        "kernels": sorted(kernel_dirs.values()), "steps": steps, "constants": constants,
        "outputs": encode(cf.plan.outputs), "scalar_results": [int(i) for i in cf.traced.scalar_results],
        "result_layout": cf.traced.result_layout, "files": dict(sorted(files.items())),
    }
    with open(os.path.join(directory, PLAN_MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return directory


def _is_native(dtype) -> bool:
    """A dtype NumPy's .npz stores and reads back as itself (not ml_dtypes' bf16 / fp8)."""
    try:
        return dtype_from_name(dtype.name) == dtype and dtype.isbuiltin == 1
    except TesseraError:
        return False
