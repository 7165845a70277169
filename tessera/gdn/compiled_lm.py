"""The GDN causal LM as one object holding its named parameters: what seed 002's PyTorch wrapper expects of
"a tessera compiled model" (`get_parameters()`, `update_parameters()`, a call with named inputs).

    lm = CompiledGDNLM(GDNConfig(vocab_size=32, hidden_size=16, ...), seed=0)
    logits = lm(input_ids=ids)                      # [B, S, vocab]: causal_lm_forward, compiled on first call
    info = lm.get_parameters()["lm_head"]           # .shape, .dtype, .torch_dtype, .requires_grad, .array
    lm.update_parameters({"lm_head": new_values})   # copied into the held array (shape and dtype checked)

The parameters are NumPy arrays named by `param_names(config)`, kept in that order; `param_list()` is the
flat list `causal_lm_forward` / `causal_lm_loss` take, so tessera's own autodiff and optimisers work on the
same arrays (`update_parameters` writes into them in place, never replaces them). `functional()` gives
(function, static arguments) for routing the forward through `tessera.integrations.torch.op`, which is how
`TesseraGDNPyTorchWrapper` gets gradients into torch Parameters.

A small, honest stand-in: `ts.Module` / `ts.CompiledModule` (a later issue) may adopt it. Importing this
module never imports torch (`ParameterInfo.torch_dtype` imports it when asked)."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from ..errors import DTypeError, ShapeError, TesseraError
from .model import (GDNConfig, causal_lm_forward, causal_lm_forward_padded, init_params, padding_key_bias,
                    param_shapes)

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class ParameterInfo:
    """One named parameter of a CompiledGDNLM: its array (the model's own, not a copy) and what a framework
    needs to mirror it."""
    name: str
    array: np.ndarray
    requires_grad: bool = True

    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def torch_dtype(self):
        import torch     # only here: tessera.gdn must import without torch
        table = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                 "bfloat16": torch.bfloat16, "float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2}
        if self.array.dtype.name not in table:
            raise DTypeError(f"parameter {self.name!r}: no torch dtype for {self.array.dtype}")
        return table[self.array.dtype.name]


class CompiledGDNLM:
    """The seed-002 GDN causal LM with named NumPy parameters; calls run `causal_lm_forward` compiled."""

    def __init__(self, config: GDNConfig, params=None, seed: int = 0, dtype=np.float32):
        if not isinstance(config, GDNConfig):
            raise TesseraError(f"CompiledGDNLM takes a tessera.gdn.GDNConfig, got {type(config).__name__}")
        self.config = config
        shapes = param_shapes(config)
        self.names = [n for n, _ in shapes]
        if params is None:
            arrays = init_params(config, seed=seed, dtype=dtype)
        else:
            if isinstance(params, dict):
                missing = [n for n in self.names if n not in params]
                extra = [n for n in params if n not in set(self.names)]
                if missing or extra:
                    raise TesseraError(f"CompiledGDNLM: params lack {missing[:3]} / have unknown {extra[:3]} "
                                       f"(names come from tessera.gdn.param_names(config))")
                params = [params[n] for n in self.names]
            if len(params) != len(shapes):
                raise TesseraError(f"CompiledGDNLM: got {len(params)} parameters, the config has {len(shapes)}")
            # copies: the model owns its arrays (update_parameters writes into them)
            arrays = [np.array(_as_numpy(p, n), copy=True) for p, (n, _) in zip(params, shapes)]
        for a, (name, shape) in zip(arrays, shapes):
            _check(name, a, shape, arrays[0].dtype)
        self._arrays = dict(zip(self.names, arrays))

    def __repr__(self):
        n = sum(a.size for a in self._arrays.values())
        return f"<CompiledGDNLM {len(self.names)} parameters ({n} values, {self.dtype}) {self.config}>"

    @property
    def dtype(self) -> np.dtype:
        return self._arrays[self.names[0]].dtype

    # -- running -----------------------------------------------------------------------------------------
    def __call__(self, input_ids, attention_mask=None):
        """logits[B, S, vocab] for integer input_ids[B, S] (NumPy or torch; torch in, torch out).
        `attention_mask` [B, S] of 0/1 is a padding mask: padded keys are masked in every attention (a
        second graph, causal_lm_forward_padded); None or all ones runs the plain causal graph."""
        bias = padding_bias(attention_mask, input_ids)
        if bias is None:
            return causal_lm_forward(_int_ids(input_ids), self.param_list(), self.config)
        return causal_lm_forward_padded(_int_ids(input_ids), bias, self.param_list(), self.config)

    def functional(self):
        """(function, static keyword arguments): `function(input_ids, params_list, **static)` is this model's
        forward as a pure function of its parameters — e.g. for tessera.integrations.torch.op."""
        return causal_lm_forward, {"config": self.config}

    # -- parameters -----------------------------------------------------------------------------------
    def param_list(self) -> list:
        """The parameter arrays (the model's own) in the order of tessera.gdn.param_names(config)."""
        return [self._arrays[n] for n in self.names]

    def get_parameters(self) -> dict:
        """{name: ParameterInfo} in the order of param_names; each info's .array is the model's array."""
        return {n: ParameterInfo(n, self._arrays[n]) for n in self.names}

    def update_parameters(self, updates: dict):
        """Copy new values (NumPy arrays or torch tensors, keyed by parameter name) into the model's arrays.
        Every entry is checked before any is written: unknown names, wrong shapes and other dtypes are
        errors naming the parameter."""
        if not isinstance(updates, dict):
            raise TesseraError(f"update_parameters takes a dict {{name: array}}, got {type(updates).__name__}")
        checked = []
        for name, value in updates.items():
            if name not in self._arrays:
                raise TesseraError(f"update_parameters: the model has no parameter {name!r} "
                                   f"(names come from tessera.gdn.param_names(config))")
            target = self._arrays[name]
            value = _as_numpy(value, name)
            _check(name, value, target.shape, target.dtype)
            checked.append((target, value))
        for target, value in checked:
            np.copyto(target, value)


def padding_bias(attention_mask, input_ids):
    """None (no mask, or all ones: the plain causal graph runs) or the [B, 1, 1, S] additive key bias of a
    [B, S] 0/1 padding mask (tessera.gdn.model.padding_key_bias; causal_lm_forward_padded takes it)."""
    if attention_mask is None:
        return None
    mask = _as_numpy(attention_mask, "attention_mask")
    if tuple(mask.shape) != tuple(input_ids.shape):
        raise ShapeError(f"attention_mask has shape {tuple(mask.shape)}, input_ids {tuple(input_ids.shape)}")
    return padding_key_bias(mask)


def _int_ids(ids):
    """input_ids as int32 (tessera's embedding takes i32 ids): torch stays torch, anything else → NumPy."""
    if _is_torch(ids):
        import torch
        return ids.to(torch.int32)
    a = np.asarray(ids)
    if a.dtype.kind not in "iu":
        raise DTypeError(f"input_ids must be integers, got {a.dtype}")
    return a.astype(np.int32, copy=False)


def _is_torch(x) -> bool:
    # torch is never imported here: a torch tensor can only exist when torch is already loaded
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _as_numpy(value, name):
    if _is_torch(value):
        if value.is_cuda:
            value = value.cpu()
        if value.dtype.is_floating_point and value.dtype not in _torch_numpy_floats():
            raise DTypeError(f"parameter {name!r}: torch dtype {value.dtype} has no NumPy counterpart here "
                             "(the model holds f32 or f64 parameters)")
        return value.detach().numpy()
    if not isinstance(value, np.ndarray):
        raise TesseraError(f"parameter {name!r}: expected a NumPy array or a torch tensor, got "
                           f"{type(value).__name__}")
    return value


def _torch_numpy_floats():
    import torch
    return (torch.float32, torch.float64)


def _check(name, value, shape, dtype):
    if tuple(value.shape) != tuple(shape):
        raise ShapeError(f"parameter {name!r} has shape {tuple(shape)}, got {tuple(value.shape)}")
    if value.dtype not in _FLOAT_DTYPES:
        raise DTypeError(f"parameter {name!r}: CompiledGDNLM holds f32 or f64 parameters, got {value.dtype}")
    if value.dtype != dtype:
        raise DTypeError(f"parameter {name!r} is {np.dtype(dtype)}, got {value.dtype} (convert it first: "
                         "a silent cast would desynchronise the copies)")


__all__ = ["CompiledGDNLM", "ParameterInfo", "padding_bias"]
