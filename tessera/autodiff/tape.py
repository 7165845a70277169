"""`autodiff.gradient_tape()`: the eager form of seed 000 (`tape.watch`, `tape.gradient(target, sources,
output_gradients=)`), in two settings:

- inside a traced @ts.function body (the values are traced tensors): `gradient` emits the backward ops of
  the ops between the sources and the target into the graph being traced, right there (the same VJP rules
  as autodiff.grad);
- on concrete arrays (host code, or a body that runs eagerly after a graph break, as seed 000's
  `optimized_delta_backward` does): the tape records every compiled @ts.function call (and every op of an
  eagerly run body, each a compiled one-op function) made while it is open; `gradient` replays the
  recorded calls from the watched arrays as one traced graph, differentiates it and runs it compiled.
  Arithmetic done outside tessera calls (NumPy on the host) is not recorded: its results are constants.

A tape is used for one `gradient` call per target, like TensorFlow's non-persistent tape; watching is
required (nothing is watched implicitly)."""
from __future__ import annotations

import threading

from ..errors import CompilationError
from ..frontend import dsl
from ..frontend.function import GraphFunction, GraphTensor, Parameters, Signature, user_frame

_ACTIVE = threading.local()


def active_tapes():
    return getattr(_ACTIVE, "tapes", [])


def record(gf, args, kwargs, out):
    """Called by GraphFunction.__call__ after a compiled host-level call."""
    for t in active_tapes():
        t._calls.append((gf, args, kwargs, out))


class GradientTape:
    def __init__(self):
        self._watched, self._calls = [], []

    def __enter__(self):
        _ACTIVE.tapes = active_tapes() + [self]
        return self

    def __exit__(self, *exc):
        _ACTIVE.tapes = [t for t in active_tapes() if t is not self]
        return False

    def watch(self, xs):
        """Differentiate with respect to these tensors (one or a list)."""
        for x in (xs if isinstance(xs, (list, tuple)) else [xs]):
            self._watched.append(x)

    def gradient(self, target, sources, output_gradients=None):
        """d target / d source for each source (a list for a list, one for one); `output_gradients` is the
        target's cotangent (required unless the target has one element)."""
        many = isinstance(sources, (list, tuple))
        srcs = list(sources) if many else [sources]
        for s in srcs:
            if not any(s is w for w in self._watched):
                raise CompilationError("tape.gradient: a source was not watched (tape.watch(x) before computing "
                                       "with it)", *user_frame())
        if isinstance(target, GraphTensor):
            grads = _in_graph(target, srcs, output_gradients)
        else:
            grads = _replayed(self._calls, target, srcs, output_gradients)
        return grads if many else grads[0]


def gradient_tape():
    return GradientTape()


def _in_graph(target, srcs, dy):
    from mlir import ir
    from .transform import _Emitter, cotangents
    from .vjp import cast, zeros
    if not all(isinstance(s, GraphTensor) for s in srcs) or (dy is not None and not isinstance(dy, GraphTensor)):
        raise CompilationError("tape.gradient inside a traced function takes traced tensors", *user_frame())
    tracer = dsl.TRACING[-1]
    block = ir.InsertionPoint.current.block
    emitter = _Emitter(tracer)
    emitter.location = tracer.loc()
    dsl.TRACING.append(emitter)
    try:
        if dy is None and (target.shape or (1,)) != (1,) and target.shape != ():
            raise CompilationError(f"tape.gradient of a tensor of shape {list(target.shape)} needs output_gradients=",
                                   *user_frame())
        cts = cotangents(list(block.operations), target, dy, [s.v for s in srcs], emitter)
        emitter.location = tracer.loc()
        out = []
        for s in srcs:
            g = cts.get(s.v)
            g = zeros(s.shape, s.dtype) if g is None else g
            out.append(cast(g, s.dtype) if s.dtype.is_float else g)
        return out
    finally:
        dsl.TRACING.pop()


def _array(x):
    from .. import frontend
    return x.a if isinstance(x, frontend.eager.EagerTensor) else x


def _replayed(calls, target, srcs, dy):
    """Replay the recorded calls as one graph over the sources (and the target's cotangent), differentiate
    it and run it."""
    import numpy as np
    from ..frontend import eager  # noqa: F401 - EagerTensor for _array
    src_arrays = [_array(s) for s in srcs]
    tgt = _array(target)
    produced = {id(a) for *_, out in calls for a in _flat_arrays(out)}
    if id(tgt) not in produced:
        raise CompilationError("tape.gradient: the target was not computed by tessera calls made while the tape "
                               "was open", *user_frame())
    fn = _ReplayFunction(calls, src_arrays, tgt, dy is not None)
    args = (src_arrays, np.asarray(_array(dy))) if dy is not None else (src_arrays,)
    grads = fn(*args)
    wrap = eager.wrap if dsl.EAGER else (lambda g: g)
    return [wrap(g) for g in grads]


def _flat_arrays(out):
    return [o for o in (out if isinstance(out, (tuple, list)) else [out]) if hasattr(o, "shape")]


class _ReplayFunction(GraphFunction):
    def __init__(self, calls, srcs, target, with_dy):
        self.calls, self.srcs, self.target = calls, srcs, target

        def replay(sources, dy=None):
            env = {id(a): g for a, g in zip(srcs, sources)}
            from ..graph.ops import constants
            for gf, args, kwargs, out in calls:
                def bind(x):
                    return env.get(id(x), x) if hasattr(x, "shape") else x
                a = dsl.tree_map(bind, list(args))
                kw = dsl.tree_map(bind, dict(kwargs))
                res = gf.fn(*constants(a), **constants(kw))
                for arr, g in zip(_flat_arrays(out), res if isinstance(res, (tuple, list)) else [res]):
                    env[id(arr)] = g
            return env[id(target)]
        replay.__name__ = "tape_gradient"
        super().__init__(replay)
        self.parameters = Parameters()
        self.with_dy = with_dy

    def trace(self, args, kwargs=None, params=None):
        from ..graph.ops import trace_function
        from .transform import differentiate
        sig = Signature(self.fn, args, kwargs or {}, params)
        traced = trace_function(self, sig)
        n = len(self.srcs)
        from ..graph.compile import GRAPH_PIPELINE
        differentiate(traced, list(range(n)), output_gradients=n if self.with_dy else None, pipeline=GRAPH_PIPELINE)
        traced.asm = traced.module.operation.get_asm(enable_debug_info=True)
        traced.result_layout, traced.scalar_results = "tuple", ()
        traced.pack = list
        return traced
