"""The pass registry and the pipeline builder shared by the compiler and tessera-opt.

A pipeline string mixes tessera passes (Python, from PASSES) and upstream MLIR passes, e.g.
`tessera-lower-tile-to-cpu,canonicalize,func.func(cse)`. Tessera passes run on the module; runs of
consecutive upstream passes are handed to MLIR's own parser as one piece."""
from __future__ import annotations

from ..errors import PipelineError
from . import options, preconditions
from . import (lower_tile_to_cpu, lower_deallocations, widen_i1_memrefs, lower_tile_to_gpu, use_tma, use_wgmma, pipeline_mma,
               fuse_delta_connections, prune_sparse_deltas, optimize_gating_networks, lower_graph_to_tile,
               expand_fp8, narrow_index, tma_shared_address, place_layout_conversions, lower_tensor_lists,
               cpu_bf16_runtime, erase_dead_graph_ops, cpu_matmul, cpu_exp, cpu_reduce, cpu_scratch)

# name → module with `name`, `run(module_op, **options)` and a docstring
PASSES = {m.name: m for m in [
    lower_tile_to_cpu,
    lower_deallocations,
    widen_i1_memrefs,
    lower_tile_to_gpu,
    use_tma,
    use_wgmma,
    pipeline_mma,
    fuse_delta_connections,
    prune_sparse_deltas,
    optimize_gating_networks,
    erase_dead_graph_ops,
    lower_graph_to_tile,
    expand_fp8,
    narrow_index,
    tma_shared_address,
    place_layout_conversions,
    lower_tensor_lists,
    cpu_bf16_runtime,
    cpu_matmul,
    cpu_exp,
    cpu_reduce,
    cpu_scratch,
]}

MAX_PIPELINE_DEPTH = 32  # nested pipelines deeper than this are refused, not recursed into
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class Element:
    def __init__(self, name, options=None, nested=None):
        self.name, self.options, self.nested = name, options, nested

    def text(self):
        s = self.name + (self.options or "")
        if self.nested is not None:
            s += "(" + ",".join(e.text() for e in self.nested) + ")"
        return s


def parse_pipeline(text: str) -> list[Element]:
    """`a{opts},b(c,d(e))` → Elements. Iterative (an explicit stack), so no input can exhaust
    Python's recursion limit; nesting is capped at MAX_PIPELINE_DEPTH."""
    src = text.strip()

    def fail(why, at):
        shown = src if len(src) <= 120 else f"...{src[max(0, at - 40):at + 40]}..."
        raise PipelineError(f"cannot parse pass pipeline '{shown}': {why} at column {at + 1}")

    stack: list[list[Element]] = [[]]
    i, n, expect_element = 0, len(src), True
    while True:
        while i < n and src[i].isspace():
            i += 1
        if expect_element:
            j = i
            while j < n and src[j] in _NAME_CHARS:
                j += 1
            if j == i or not (src[i].isalpha() or src[i] == "_"):
                if i < n and src[i] == ")" and stack[-1] == [] and len(stack) > 1:  # an empty nested pipeline
                    expect_element = False
                    continue
                fail("expected a pass name", i)
            elem = Element(src[i:j])
            i = j
            if i < n and src[i] == "{":
                depth, j = 0, i
                while j < n:
                    depth += {"{": 1, "}": -1}.get(src[j], 0)
                    if depth == 0:
                        break
                    if depth > 2:
                        fail("option values nest braces too deeply", j)
                    j += 1
                if j >= n:
                    fail("unterminated '{'", i)
                elem.options = src[i:j + 1]
                i = j + 1
            stack[-1].append(elem)
            while i < n and src[i].isspace():
                i += 1
            if i < n and src[i] == "(":
                if len(stack) > MAX_PIPELINE_DEPTH:
                    fail(f"pipelines nest deeper than {MAX_PIPELINE_DEPTH} levels", i)
                elem.nested = []
                stack.append(elem.nested)
                i += 1
                continue
            expect_element = False
            continue
        if i >= n:
            if len(stack) > 1:
                fail("missing ')'", i)
            break
        if src[i] == ",":
            expect_element = True
            i += 1
        elif src[i] == ")" and len(stack) > 1:
            stack.pop()
            i += 1
        else:
            fail(f"unexpected '{src[i]}'", i)
    elems = stack[0]
    if len(elems) == 1 and elems[0].name == "builtin.module" and elems[0].nested is not None:
        elems = elems[0].nested
    return elems


def _parse_options(opts: str | None) -> dict:
    if not opts:
        return {}
    out = {}
    for part in opts[1:-1].split():
        k, _, v = part.partition("=")
        out[k] = v if "=" in part else True
    return out


def _check_upstream(elems, where=None):
    """Tessera passes only at the top; the options of upstream passes that abort on bad values
    (options.UPSTREAM) checked here, before MLIR parses them. Iterative: nesting is bounded already."""
    todo = [(e, where) for e in elems]
    while todo:
        e, parent = todo.pop()
        if e.name in PASSES:
            if parent is not None:
                raise PipelineError(f"tessera pass '{e.name}' must run on the module, not nested in '{parent}'")
        else:
            for k, v in _parse_options(e.options).items():
                spec = options.UPSTREAM.get(e.name, {}).get(k)
                if spec is not None:
                    _check_value(e.name, k, v, spec)
        todo.extend((n, e.name) for n in e.nested or ())


def _check_value(pass_name, key, value, spec):
    try:
        return spec.parse(value)
    except (ValueError, OverflowError):
        shown = "(no value)" if value is True else f"'{value}'"
        raise PipelineError(f"pass '{pass_name}': option {key}={shown} is not accepted: "
                            f"{key} takes {spec.accepted()}") from None


def tessera_pass(entry, options: dict):
    """The callable a PassManager runs for a tessera pass, its options parsed and range-checked here
    against the pass's OPTIONS (a bad value is our error, not a ValueError or an abort inside the pass)."""
    spec = getattr(entry, "OPTIONS", {})
    typed = {}
    for k, v in options.items():
        if k not in spec:
            raise PipelineError(f"pass '{entry.name}' has no option '{k}' (options: {', '.join(spec) or 'none'})")
        typed[k] = _check_value(entry.name, k, v, spec[k])

    def run(op):
        entry.run(op, **typed)
    return run


def build_pass_manager(text: str, *, print_after_all=None):
    """A PassManager for a pipeline string. `print_after_all(name, op)` is called after each pass."""
    from mlir import passmanager
    from ..ir import compat
    elems = parse_pipeline(text)
    pm = passmanager.PassManager("builtin.module")
    upstream: list[Element] = []

    def flush():
        if not upstream:
            return
        chunk = ",".join(e.text() for e in upstream)
        try:
            sub = passmanager.PassManager.parse(f"builtin.module({chunk})")
        except Exception as e:  # noqa: BLE001 - MLIR's parse error text is the useful part
            raise PipelineError(f"bad upstream pass pipeline '{chunk}': {str(e).strip()}") from None
        del sub
        run = []  # consecutive upstream passes handed to MLIR as one piece
        for e in upstream:
            checks = preconditions.needed(e)
            if run and (print_after_all or checks):
                pm.add(",".join(run))
                run = []
            for check in checks:
                compat.add_python_pass(pm, check, "check-before-" + e.name)
            run.append(e.text())
            if print_after_all:
                pm.add(run.pop())
                _add_printer(pm, e.text(), print_after_all)
        if run:
            pm.add(",".join(run))
        upstream.clear()

    _check_upstream(elems)
    for e in elems:
        if e.name in PASSES:
            flush()
            if e.nested is not None:
                raise PipelineError(f"tessera pass '{e.name}' takes no nested pipeline")
            fn = tessera_pass(PASSES[e.name], _parse_options(e.options))
            compat.add_python_pass(pm, fn, e.name)
            if print_after_all:
                _add_printer(pm, e.name, print_after_all)
        else:
            upstream.append(e)
    flush()
    return pm


def _add_printer(pm, label, cb):
    from ..ir import compat
    compat.add_python_pass(pm, lambda op: cb(label, op), "print-after-" + label.split("{")[0].split("(")[0])
