"""SGD and AdamW whose step is one compiled kernel launch over all parameters (DESIGN §12).

`opt = AdamW(params, lr=1e-3)`; `opt.step(grads)` updates the parameter arrays in place, with PyTorch's
formulas. Parameters are grouped by dtype (one `list[tile.Tensor]` holds one dtype): a model whose
parameters share a dtype — the usual case — is updated by exactly one launch per step. The optimiser keeps
its state (momentum buffers, exp_avg, exp_avg_sq) as flat f32 arrays (f64 for f64 parameters) where the
parameters live; `state_dict()` / `load_state_dict()` checkpoint it as NumPy arrays. The learning rate,
the bias corrections and the other hyper-parameters are runtime scalars of the kernel, so an LR scheduler
assigning `opt.lr` every step never recompiles.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import CompilationError, DTypeError, ShapeError
from . import kernels, multi
from .multi import check_finite_scalar, error


class _Group:
    """The parameters of one dtype: their indices, flat views, block plan and flat state buffers."""

    def __init__(self, dtype, indices, flats, orders, state_names):
        self.dtype, self.indices, self.flats, self.orders = dtype, indices, flats, orders
        self.plan = multi.Plan([f.shape[0] for f in flats], flats[0])
        acc = kernels.acc_of(dtype)
        self.state = {s: [multi.zeros(f, f.shape[0], acc) for f in flats] for s in state_names}


class Optimizer:
    """What SGD and AdamW share: parameter checks, dtype groups, gradient checks, lr, checkpoints."""

    STATE = ()          # names of the per-parameter state buffers
    HYPER = ()          # names of the hyper-parameters saved in state_dict (lr included)

    def __init__(self, params, lr):
        if isinstance(params, (list, tuple)):
            params = list(params)
        elif params is not None and hasattr(params, "__iter__") and not hasattr(params, "shape"):
            params = list(params)
        else:
            raise error(f"{type(self).__name__}: params must be a list of arrays, got {type(params).__name__}",
                        CompilationError)
        if not params:
            raise error(f"{type(self).__name__} got an empty parameter list", CompilationError)
        self.lr = lr
        self.params = params
        self.step_count = 0
        seen, views, dtypes = {}, [], []
        for i, p in enumerate(params):
            f, order, d = multi.writable_float(p, f"params[{i}]", type(self).__name__)
            ptr = _address(f)
            if ptr is not None and f.shape[0] and ptr in seen:
                raise error(f"params[{i}] is the same array as params[{seen[ptr]}]: each parameter may appear "
                            "once", CompilationError)
            seen[ptr] = i
            views.append((f, order))
            dtypes.append(d)
        kinds = {multi.kind(f) for f, _ in views}
        if len(kinds) > 1:
            raise error(f"{type(self).__name__}: params mix {' and '.join(sorted(kinds))} arrays; they must live "
                        "in one place (all NumPy, or all on the GPU)")
        self._dtypes = dtypes
        self._shapes = [tuple(multi.as_array(p, "").shape) for p in params]
        self._groups = []
        for d in dict.fromkeys(dtypes):
            idx = [i for i, x in enumerate(dtypes) if x == d]
            self._groups.append(_Group(d, idx, [views[i][0] for i in idx], [views[i][1] for i in idx], self.STATE))

    # -- hyper-parameters ------------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_finite_scalar(value, "learning rate (lr)")

    # -- a step ----------------------------------------------------------------------------------------
    def step(self, grads):
        """Update every parameter in place from `grads` (a list in the order of params): one kernel
        launch per dtype group."""
        flats = self._check_grads(grads)
        self.step_count += 1
        for g in self._groups:
            self._update(g, [flats[i] for i in g.indices])

    def _check_grads(self, grads):
        if not isinstance(grads, (list, tuple)):
            raise error(f"{type(self).__name__}.step: grads must be a list of arrays in the order of params, "
                        f"got {type(grads).__name__}")
        if len(grads) != len(self.params):
            raise error(f"{type(self).__name__}.step: got {len(grads)} gradients for {len(self.params)} parameters")
        out = [None] * len(grads)
        kind = multi.kind(self._groups[0].flats[0])
        for grp in self._groups:
            for i, order in zip(grp.indices, grp.orders):
                g = multi.as_array(grads[i], f"grads[{i}]")
                if multi.kind(g) != kind:
                    raise error(f"grads[{i}] is a {multi.kind(g)} array, params[{i}] a {kind} one")
                if tuple(g.shape) != self._shapes[i]:
                    raise error(f"grads[{i}] has shape {tuple(g.shape)}, params[{i}] has {self._shapes[i]}", ShapeError)
                d = multi.dtype_name(g, f"grads[{i}]")
                if d != self._dtypes[i]:
                    raise error(f"grads[{i}] has dtype {d}, params[{i}] has {self._dtypes[i]}: a gradient has its "
                                "parameter's dtype", DTypeError)
                out[i] = multi.flat_like(g, order)
        return out

    def _update(self, group, grads):
        raise NotImplementedError

    # -- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"step": n, "hyper": {name: value}, <state name>: [NumPy array shaped like params[i], ...]}."""
        out = {"step": self.step_count, "hyper": {h: getattr(self, h) for h in self.HYPER}}
        for s in self.STATE:
            arrays = [None] * len(self.params)
            for g in self._groups:
                for i, order, buf in zip(g.indices, g.orders, g.state[s]):
                    arrays[i] = np.array(multi.to_host(buf)).reshape(self._shapes[i], order=order)
            out[s] = arrays
        return out

    def load_state_dict(self, state: dict):
        """Restore what state_dict() returned (same parameters: count, shapes; the step count, the
        hyper-parameters and the state buffers, copied into this optimiser's own buffers)."""
        if not isinstance(state, dict) or "step" not in state:
            raise error(f"{type(self).__name__}.load_state_dict expects the dict state_dict() returns")
        for s in self.STATE:
            arrays = state.get(s)
            if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self.params):
                raise error(f"state dict entry '{s}' must be a list of {len(self.params)} arrays")
            for i, a in enumerate(arrays):
                if int(np.prod(np.shape(a))) != int(np.prod(self._shapes[i])):
                    raise error(f"state dict '{s}'[{i}] has shape {np.shape(a)}, params[{i}] has "
                                f"{self._shapes[i]}", ShapeError)
        for h, v in state.get("hyper", {}).items():
            if h in self.HYPER:
                setattr(self, h, v)
        for s in self.STATE:
            for g in self._groups:
                acc = kernels.acc_of(g.dtype)
                for k, (i, order) in enumerate(zip(g.indices, g.orders)):
                    host = np.asarray(state[s][i]).astype(np.float64 if acc == "f64" else np.float32)
                    g.state[s][k] = multi.from_host(host.reshape(-1, order=order), g.flats[k])
        self.step_count = int(state["step"])

    def __repr__(self):
        hyper = ", ".join(f"{h}={getattr(self, h)!r}" for h in self.HYPER)
        return f"<{type(self).__name__} {len(self.params)} params, {hyper}>"


def _address(a):
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    if hasattr(a, "data_ptr"):
        return a.data_ptr()
    ptr = getattr(getattr(a, "data", None), "ptr", None)
    return int(ptr) if ptr is not None else None


class SGD(Optimizer):
    """torch.optim.SGD(params, lr, momentum=0, weight_decay=0, nesterov=False) with dampening 0:
    g = grad + weight_decay·p; buf = momentum·buf + g (first step: buf = g); g = g + momentum·buf with
    Nesterov, else buf; p = p − lr·g. The momentum buffers exist only when momentum > 0."""

    HYPER = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        self.momentum = check_finite_scalar(momentum, "momentum")
        self.weight_decay = check_finite_scalar(weight_decay, "weight_decay")
        if not isinstance(nesterov, bool):
            raise error(f"nesterov must be True or False, got {nesterov!r}", CompilationError)
        if nesterov and self.momentum <= 0:
            raise error("Nesterov momentum requires a momentum > 0 (and zero dampening)", CompilationError)
        self.nesterov = nesterov
        self.STATE = ("momentum_buffer",) if self.momentum > 0 else ()
        self._has_momentum = self.momentum > 0
        super().__init__(params, lr)

    def load_state_dict(self, state):
        hyper = state.get("hyper", {}) if isinstance(state, dict) else {}
        if "momentum" in hyper and (float(hyper["momentum"]) > 0) != self._has_momentum:
            raise error("this state dict's momentum and this SGD's differ in whether there are momentum buffers")
        super().load_state_dict(state)

    def _update(self, group, grads):
        k = kernels.sgd(group.dtype, self._has_momentum, self.nesterov, self.weight_decay != 0)
        lists = [group.flats, grads] + ([group.state["momentum_buffer"]] if self._has_momentum else [])
        multi.launch(k, group.plan, lists, scalars=[-self.lr, self.weight_decay, self.momentum])


class AdamW(Optimizer):
    """torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01): decoupled weight
    decay p = p·(1 − lr·wd), then Adam with bias-corrected moments; one step count for all parameters."""

    STATE = ("exp_avg", "exp_avg_sq")
    HYPER = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise error(f"betas must be a pair (beta1, beta2), got {betas!r}", CompilationError)
        self.betas = (check_finite_scalar(betas[0], "beta parameter at index 0", 0.0, 1.0, high_open=True),
                      check_finite_scalar(betas[1], "beta parameter at index 1", 0.0, 1.0, high_open=True))
        self.eps = check_finite_scalar(eps, "epsilon value (eps)")
        self.weight_decay = check_finite_scalar(weight_decay, "weight_decay")
        super().__init__(params, lr)

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.betas = tuple(float(b) for b in self.betas)

    def _update(self, group, grads):
        beta1, beta2 = self.betas
        t, lr = self.step_count, self.lr
        f = np.float64 if group.dtype == "f64" else np.float32
        weight = f(1.0 - beta1)
        high = not abs(weight) < 0.5          # torch's lerp switches form at weight 0.5
        w1 = f(1) - weight if high else weight
        bc1 = 1.0 - beta1 ** t
        bc2 = 1.0 - beta2 ** t
        scalars = [1.0 - lr * self.weight_decay, float(w1), beta2, 1.0 - beta2, -(lr / bc1), math.sqrt(bc2), self.eps]
        k = kernels.adamw(group.dtype, high)
        lists = [group.flats, grads, group.state["exp_avg"], group.state["exp_avg_sq"]]
        multi.launch(k, group.plan, lists, scalars=scalars)


__all__ = ["Optimizer", "SGD", "AdamW"]
