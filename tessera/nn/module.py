"""`ts.Module`: parameters and submodules as attributes, as in PyTorch, over NumPy arrays.

    class Block(ts.Module):
        def __init__(self, d):
            super().__init__()
            self.norm = ts.nn.RMSNorm(d)
            self.proj = ts.nn.Linear(d, d)
            self.scale = ts.nn.Parameter(np.ones(d, np.float32))

        def forward(self, x):
            return self.proj(self.norm(x)) * self.scale

    y = Block(16)(x)            # traced and compiled on the first call, like a @ts.function

How a module runs compiled: a module passed to a @ts.function (as `self` of a `@ts.jit` forward, or as any
argument) is a graph input of its parameters, not a constant. While its graph is traced, each parameter
attribute reads as the traced value of that input (`bound_parameters`), so updating a parameter in place or
through `load_state_dict` never retraces, and a module's arrays are never baked into its graph. Calling a
module outside a trace compiles `forward` through one GraphFunction per module class (keyed by the module's
identity and its parameters' shapes). Parameters are named by attribute path (`layers.0.mlp.up.weight`),
deduplicated by identity (a tied weight is one input)."""
from __future__ import annotations

import threading

import numpy as np

from ..errors import ShapeError, DTypeError, TesseraError

_BINDING = threading.local()


class Parameter:
    """`ts.nn.Parameter(array)`: marks an array as a learnable parameter when assigned to a module attribute
    (it is stored as a C-contiguous NumPy array; the attribute then reads as that array)."""

    def __init__(self, value, dtype=None, requires_grad=True):
        from ..dtypes import DType
        if dtype is not None and isinstance(dtype, DType):
            dtype = dtype.to_numpy()
        a = np.asarray(value, dtype=dtype)
        if a.dtype.kind not in "fV" and a.dtype.name not in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
            raise DTypeError(f"ts.nn.Parameter holds floating-point values, got {a.dtype}")
        self.array = np.ascontiguousarray(a)
        self.requires_grad = bool(requires_grad)


def bound_parameters():
    """{id(array): traced value} of the modules being traced on this thread (innermost first), or None."""
    stack = getattr(_BINDING, "stack", None)
    return stack[-1] if stack else None


class bind_parameters:
    """While tracing: module parameters (arrays, by identity) read as these traced values."""

    def __init__(self, values_by_id):
        self.values = values_by_id

    def __enter__(self):
        stack = getattr(_BINDING, "stack", None)
        if stack is None:
            stack = _BINDING.stack = []
        merged = dict(stack[-1]) if stack else {}
        merged.update(self.values)
        stack.append(merged)
        return self

    def __exit__(self, *exc):
        _BINDING.stack.pop()
        return False


class Module:
    """Base class of tessera modules (see the module docstring)."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_requires_grad", {})
        object.__setattr__(self, "training", False)

    # -- attributes ---------------------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise TesseraError(f"{type(self).__name__}.__init__ must call super().__init__() before setting "
                               f"attribute '{name}'")
        params, modules = self._parameters, self._modules
        params.pop(name, None)
        modules.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value.array
            self._requires_grad[name] = value.requires_grad
            self.__dict__.pop(name, None)
        elif isinstance(value, Module):
            modules[name] = value
            self.__dict__.pop(name, None)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):   # only for names not in __dict__: parameters and submodules
        d = self.__dict__
        if "_parameters" in d and name in d["_parameters"]:
            array = d["_parameters"][name]
            bound = bound_parameters()
            return bound.get(id(array), array) if bound else array
        if "_modules" in d and name in d["_modules"]:
            return d["_modules"][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, value):
        setattr(self, name, value if isinstance(value, Parameter) else Parameter(value))

    # -- traversal ---------------------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def children(self):
        return list(self._modules.values())

    def named_parameters(self):
        """(dotted name, array) of every parameter, each array once (the first name of a tied weight)."""
        seen = set()
        for prefix, m in self.named_modules():
            for name, a in m._parameters.items():
                if id(a) not in seen:
                    seen.add(id(a))
                    yield (f"{prefix}.{name}" if prefix else name), a

    def parameters(self):
        """The parameter arrays (the module's own, not copies) in named_parameters order."""
        return [a for _, a in self.named_parameters()]

    def state_dict(self):
        """{dotted name: array} (the module's own arrays; copy them to keep a snapshot)."""
        return dict(self.named_parameters())

    def load_state_dict(self, state, strict=True):
        """Copy arrays (NumPy or anything np.asarray takes) into the parameters in place: shapes must match,
        values are cast to each parameter's dtype. strict: missing and unexpected names are errors."""
        own = self.state_dict()
        missing = [n for n in own if n not in state]
        unexpected = [n for n in state if n not in own]
        if strict and (missing or unexpected):
            raise TesseraError(f"load_state_dict: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                               f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        checked = []
        for name, target in own.items():
            if name not in state:
                continue
            value = np.asarray(_to_numpy(state[name]))
            if value.shape != target.shape:
                raise ShapeError(f"load_state_dict: '{name}' has shape {target.shape}, got {value.shape}")
            checked.append((target, value))
        for target, value in checked:   # every entry checked before any is written
            np.copyto(target, value.astype(target.dtype, copy=False))
        return self

    def parameter_count(self):
        return int(sum(a.size for a in self.parameters()))

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # -- running -----------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise TesseraError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args, **kwargs):
        from ..frontend import dsl
        if dsl.TRACING:   # inside a traced graph: the forward's ops join it
            return self.forward(*args, **kwargs)
        return module_function(type(self))(self, *args, **kwargs)

    def __repr__(self):
        lines = [f"{type(self).__name__}("]
        for name, m in self._modules.items():
            lines.append(f"  ({name}): " + repr(m).replace("\n", "\n  "))
        for name, a in self._parameters.items():
            lines.append(f"  {name}: {a.dtype}{list(a.shape)}")
        return "\n".join(lines) + ")" if len(lines) > 1 else f"{type(self).__name__}()"


def _to_numpy(x):
    import sys
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def forward_function(cls):
    """The plain Python forward of a module class (unwrapping a @ts.jit forward)."""
    from ..frontend.function import GraphFunction
    fwd = cls.forward
    return fwd.fn if isinstance(fwd, GraphFunction) else fwd


def module_function(cls):
    """The GraphFunction that runs `cls.forward(self, ...)` compiled (one per class: a @ts.jit forward's own,
    else one made on first use)."""
    from ..frontend.function import GraphFunction
    fwd = cls.__dict__.get("forward")
    if isinstance(fwd, GraphFunction):
        return fwd
    made = cls.__dict__.get("_tessera_forward_function")
    if made is None:
        made = GraphFunction(forward_function(cls))
        made.__name__ = f"{cls.__name__}.forward"
        type.__setattr__(cls, "_tessera_forward_function", made)
    return made


def module_inputs(module, name):
    """(labels, arrays) of a module given as graph argument `name`: its parameters by dotted name."""
    items = list(module.named_parameters())
    return [f"{name}.{n}" for n, _ in items], [a for _, a in items]


class ModuleList(Module):
    """`ts.nn.ModuleList([...])`: submodules named 0, 1, ...; indexable, iterable, appendable."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TesseraError(f"ModuleList holds ts.Module objects, got {type(module).__name__}")
        self._modules[str(len(self._modules))] = module
        return self

    def __getitem__(self, i):
        items = list(self._modules.values())
        if isinstance(i, slice):
            return ModuleList(items[i])
        return items[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def forward(self, *args, **kwargs):
        raise TesseraError("a ModuleList has no forward: call its modules")


class Sequential(ModuleList):
    """`ts.nn.Sequential(a, b, c)`: calls each module on the previous one's output."""

    def __init__(self, *modules):
        super().__init__(modules)

    def forward(self, x):
        for m in self:
            x = m(x)
        return x


def export(cls):
    """`@ts.export`: declares a ts.Module class a deployment entry point: its `forward`'s parameters name the
    inputs of `ts.compile(model, input_shapes=...)`, of its ONNX graph and of a deployment package."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TesseraError(f"@ts.export decorates a ts.Module subclass, got {cls!r}")
    if forward_function(cls) is Module.forward:
        raise TesseraError(f"@ts.export: {cls.__name__} defines no forward()")
    type.__setattr__(cls, "__tessera_export__", True)
    EXPORTED[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def module(cls):
    """`@ts.module` (seed 002 spells module classes this way): checks that `cls` is a ts.Module subclass."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TesseraError(f"@ts.module decorates a ts.Module subclass, got {cls!r}")
    return cls


EXPORTED: dict = {}
