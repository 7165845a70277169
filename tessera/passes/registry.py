"""The pass registry and the pipeline builder shared by the compiler and tessera-opt.

A pipeline string mixes tessera passes (Python, from PASSES) and upstream MLIR passes, e.g.
`tessera-lower-tile-to-cpu,canonicalize,func.func(cse)`. Tessera passes run on the module; runs of
consecutive upstream passes are handed to MLIR's own parser as one piece."""
from __future__ import annotations

import inspect

from lark import Lark, Transformer, LarkError

from ..errors import TesseraError
from . import (lower_tile_to_cpu, lower_deallocations, widen_i1_memrefs, lower_tile_to_gpu, use_tma, use_wgmma, pipeline_mma,
               fuse_delta_connections, prune_sparse_deltas, optimize_gating_networks, lower_graph_to_tile,
               expand_fp8, narrow_index, tma_shared_address, place_layout_conversions, lower_tensor_lists,
               cpu_bf16_runtime)

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
    lower_graph_to_tile,
    expand_fp8,
    narrow_index,
    tma_shared_address,
    place_layout_conversions,
    lower_tensor_lists,
    cpu_bf16_runtime,
]}

_GRAMMAR = r"""
pipeline: element ("," element)*
element: NAME options? nested?
nested: "(" pipeline? ")"
options: OPTS
OPTS: /\{([^{}]|\{[^{}]*\})*\}/
NAME: /[A-Za-z_][A-Za-z0-9_\-\.]*/
%import common.WS
%ignore WS
"""
_PARSER = Lark(_GRAMMAR, start="pipeline", parser="lalr")


class PipelineError(TesseraError):
    """A pass pipeline string that cannot be parsed or names an unknown pass."""


class Element:
    def __init__(self, name, options, nested):
        self.name, self.options, self.nested = name, options, nested

    def text(self):
        s = self.name + (self.options or "")
        if self.nested is not None:
            s += "(" + ",".join(e.text() for e in self.nested) + ")"
        return s


class _Build(Transformer):
    def pipeline(self, items):
        return list(items)

    def element(self, items):
        name = str(items[0])
        options = nested = None
        for it in items[1:]:
            if isinstance(it, tuple) and it[0] == "opts":
                options = it[1]
            elif isinstance(it, tuple) and it[0] == "nested":
                nested = it[1]
        return Element(name, options, nested)

    def options(self, items):
        return ("opts", str(items[0]))

    def nested(self, items):
        return ("nested", items[0] if items else [])


def parse_pipeline(text: str) -> list[Element]:
    try:
        elems = _Build().transform(_PARSER.parse(text.strip()))
    except LarkError as e:
        raise PipelineError(f"cannot parse pass pipeline '{text}': {str(e).splitlines()[0]}") from None
    if len(elems) == 1 and elems[0].name == "builtin.module" and elems[0].nested is not None:
        elems = elems[0].nested
    return elems


def _parse_options(opts: str | None) -> dict:
    if not opts:
        return {}
    out = {}
    for part in opts.strip("{}").split():
        if "=" not in part:
            out[part] = True
            continue
        k, v = part.split("=", 1)
        out[k] = v
    return out


def _check_no_tessera(elems, where):
    for e in elems:
        if e.name in PASSES:
            raise PipelineError(f"tessera pass '{e.name}' must run on the module, not nested in '{where}'")
        if e.nested:
            _check_no_tessera(e.nested, e.name)


def tessera_pass(entry, options: dict):
    """The callable a PassManager runs for a tessera pass, with options validated here (an unknown
    option is our error, not an abort inside MLIR)."""
    sig = inspect.signature(entry.run)
    known = [p for p in list(sig.parameters)[1:]]
    for k in options:
        if k not in known:
            raise PipelineError(f"pass '{entry.name}' has no option '{k}' (options: {', '.join(known) or 'none'})")

    def run(op):
        entry.run(op, **options)
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
        if print_after_all:
            for e in upstream:
                pm.add(e.text())
                _add_printer(pm, e.text(), print_after_all)
        else:
            pm.add(chunk)
        upstream.clear()

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
            if e.nested:
                _check_no_tessera(e.nested, e.name)
            upstream.append(e)
    flush()
    return pm


def _add_printer(pm, label, cb):
    from ..ir import compat
    compat.add_python_pass(pm, lambda op: cb(label, op), "print-after-" + label.split("{")[0].split("(")[0])
