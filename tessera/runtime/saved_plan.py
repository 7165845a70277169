"""Loading a saved @ts.function plan (`CompiledFunction.save(dir)`, tessera.graph.save_plan) and running it
without MLIR: `load_plan(dir)(*args)` returns what the compiled function returns.

A saved plan directory:
  plan.json       the manifest: the function's parameters (shapes, dtypes, the constants it was compiled
                  with), the steps (kernel artifact, grid, argument views, outputs), the plan's outputs,
                  its 0-d results and result layout, and a sha256 of every other file
  constants.npz   the plan's constant arrays (one entry per constant slot)
  kernels/NNN_<name>/  one artifact per distinct compiled kernel (tessera.runtime.artifact): a shared object
                  for target "cpu", a cubin (+ ptx and the other stages) for sm_80 / sm_90a

The steps run through the same executor loop as a live plan (tessera.graph.execute.run), on views of the
same slots. Slots and view kinds are tuples in a plan; JSON writes them as lists (and slices as
{"slice": [start, stop, step]}), and decode() turns them back into the exact tuples."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .. import knobs
from ..errors import DTypeError, ShapeError, TesseraError

PLAN_MANIFEST = "plan.json"
CONSTANTS = "constants.npz"
FORMAT = 1


def encode(x):
    """A slot / view kind / shape as JSON: tuples become lists, slices {"slice": [...]}, NumPy scalars Python's."""
    if isinstance(x, (tuple, list)):
        return [encode(v) for v in x]
    if isinstance(x, slice):
        return {"slice": [encode(x.start), encode(x.stop), encode(x.step)]}
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if x is None or isinstance(x, (str, int, float)):
        return x
    raise TesseraError(f"cannot save a plan holding {x!r} ({type(x).__name__}) in a slot or view")


def decode(x):
    """The inverse of encode: lists become tuples (slots are dict keys, view kinds compare as tuples)."""
    if isinstance(x, list):
        return tuple(decode(v) for v in x)
    if isinstance(x, dict) and set(x) == {"slice"}:
        return slice(*x["slice"])
    return x


def dtype_from_name(name: str) -> np.dtype:
    """NumPy's dtype for its name, bfloat16 / float8 included (ml_dtypes)."""
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes
        if not hasattr(ml_dtypes, name):
            raise TesseraError(f"unknown dtype '{name}' in a saved plan") from None
        return np.dtype(getattr(ml_dtypes, name))


def dtype_name(dtype) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SavedStep:
    """One step of a loaded plan, shaped like tessera.graph.plan.Step for the executor: the kernel is the
    saved artifact (its constexprs are compiled in), the grid was resolved for the saved target."""

    by_target: dict = {}

    def __init__(self, kernel, grid, args, outs, label, constexprs):
        self.kernel, self.grid, self.args, self.outs = kernel, grid, args, outs
        self.label, self.constexprs = label, constexprs

    def launch_config(self, target):
        return self.grid, {}


class SavedPlan:
    """A loaded plan: `plan(*args, **kwargs)` with the function's arguments (NumPy arrays for a "cpu" plan,
    CuPy arrays for a GPU one) returns its outputs like CompiledFunction.__call__ (one array or a tuple; 0-d
    results as 0-d arrays). Constant (non-array) parameters may be left out; given, they must equal the
    value the plan was compiled with."""

    def __init__(self, directory, verify=True):
        self.directory = os.fspath(directory)
        path = os.path.join(self.directory, PLAN_MANIFEST)
        try:
            with open(path) as f:
                m = json.load(f)
        except (OSError, ValueError) as e:
            raise TesseraError(f"{self.directory} is not a saved plan ({PLAN_MANIFEST}: {e})") from None
        if m.get("kind") != "tessera.saved_plan" or m.get("format") != FORMAT:
            raise TesseraError(f"{path}: not a tessera saved plan of format {FORMAT} (kind {m.get('kind')!r}, "
                               f"format {m.get('format')!r})")
        self.manifest = m
        if verify:
            self.verify()
        self.name, self.target = m["function"], m["target"]
        self.signature, self.outputs = m["signature"], [decode(s) for s in m["outputs"]]
        self.scalar_results, self.result_layout = tuple(m["scalar_results"]), m["result_layout"]
        self.constants = {}
        if m["constants"]:
            with np.load(os.path.join(self.directory, CONSTANTS), allow_pickle=False) as npz:
                for c in m["constants"]:
                    raw = npz[c["key"]]   # exotic dtypes (bf16, fp8) are stored as their bits
                    self.constants[decode(c["slot"])] = raw.view(dtype_from_name(c["dtype"])).reshape(c["shape"])
        from .artifact import load
        kernels = {k: load(os.path.join(self.directory, k)) for k in m["kernels"]}
        self.steps = [SavedStep(kernels[s["kernel"]], tuple(s["grid"]), [decode(a) for a in s["args"]],
                                [(decode(o[0]), tuple(o[1]), dtype_from_name(o[2])) for o in s["outs"]],
                                s["label"], s.get("constexprs", {})) for s in m["steps"]]
        self._liveness = None

    def verify(self):
        """Every file the manifest lists is there with its checksum, else a TesseraError naming it."""
        for rel, digest in self.manifest.get("files", {}).items():
            path = os.path.join(self.directory, rel)
            if not os.path.isfile(path):
                raise TesseraError(f"saved plan {self.directory}: {rel} is missing")
            if sha256(path) != digest:
                raise TesseraError(f"saved plan {self.directory}: {rel} was modified or damaged (its sha256 differs "
                                   "from the manifest's); save the plan again")

    @property
    def kernel_count(self):
        return len(self.steps)

    def liveness(self):
        if self._liveness is None:
            from ..graph.execute import liveness
            self._liveness = liveness(self.steps, self.outputs)
        return self._liveness

    def _bind(self, args, kwargs):
        names = [p["name"] for p in self.signature]
        if len(args) > len(names):
            raise TesseraError(f"{self.name}() takes {len(names)} arguments, got {len(args)}")
        given = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names:
                raise TesseraError(f"{self.name}() got an unexpected keyword argument '{k}'")
            if k in given:
                raise TesseraError(f"{self.name}() got multiple values for argument '{k}'")
            given[k] = v
        arrays = []
        for p in self.signature:
            name, kind = p["name"], p["kind"]
            if kind in ("tensor", "list", "module") and name not in given:
                raise TesseraError(f"{self.name}() missing argument '{name}'")
            if kind == "tensor":
                arrays.append(_checked(f"argument '{name}'", given[name], p))
            elif kind == "list":
                v = given[name]
                if not isinstance(v, (list, tuple)) or len(v) != len(p["elements"]):
                    raise ShapeError(f"argument '{name}' must be a list of {len(p['elements'])} arrays, got "
                                     f"{type(v).__name__} of {len(v) if isinstance(v, (list, tuple)) else '-'}")
                arrays += [_checked(f"argument '{name}[{i}]'", x, e) for i, (x, e) in enumerate(zip(v, p["elements"]))]
            elif kind == "module":   # a saved ts.Module argument: {parameter name: array} (its state_dict)
                v = given[name]
                state = v.state_dict() if hasattr(v, "state_dict") else v
                if not isinstance(state, dict):
                    raise TesseraError(f"argument '{name}' is a module's parameters: pass its state_dict(), got "
                                       f"{type(v).__name__}")
                missing = [e["name"] for e in p["parameters"] if e["name"] not in state]
                if missing:
                    raise TesseraError(f"argument '{name}' lacks parameter {missing[0]!r}")
                arrays += [_checked(f"parameter '{e['name']}'", state[e["name"]], e) for e in p["parameters"]]
            elif kind == "const" and name in given and repr(given[name]) != p["repr"]:
                raise TesseraError(f"{self.name}() was saved for {name}={p['repr']}, got {given[name]!r}: save a plan "
                                   "compiled for that value")
        return arrays

    def __call__(self, *args, _profile=None, **kwargs):
        from ..graph.execute import run
        from . import torch_interop
        (args, kwargs), torch_in = torch_interop.unwrap((args, kwargs))
        arrays = self._bind(args, kwargs)
        on_host = [isinstance(a, np.ndarray) for a in arrays]
        if self.target == "cpu":
            if not all(on_host):
                raise TesseraError(f"{self.name}: this plan was saved for the CPU: pass NumPy arrays")
            xp = np
        elif knobs.backend() == "emu":   # the saved PTX in the emulator, on NumPy arrays (DESIGN §11)
            if not all(on_host):
                raise TesseraError(f"{self.name}: TESSERA_BACKEND=emu runs a saved GPU plan on NumPy arrays")
            xp = np
        else:
            if any(on_host):
                raise TesseraError(f"{self.name}: this plan was saved for {self.target}: pass GPU (CuPy) arrays "
                                   "(or run its PTX in the emulator on NumPy arrays with TESSERA_BACKEND=emu)")
            import cupy as xp
        outs = run(self, arrays, xp, _profile)
        for i in self.scalar_results:   # 0-d results
            outs[i] = outs[i].reshape(())
        if torch_in:
            outs = torch_interop.wrap(outs)
        return outs[0] if self.result_layout == "single" else tuple(outs)

    def profile(self, *args, **kwargs):
        """Run once per kernel with timing: [(label, kernel, seconds, bytes moved)] (as CompiledFunction.profile)."""
        rows = []
        self(*args, _profile=rows, **kwargs)
        return rows

    def __repr__(self):
        return f"<SavedPlan {self.name} target={self.target} steps={len(self.steps)} dir={self.directory}>"


def _checked(what, a, spec):
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TesseraError(f"{what} must be an array, got {type(a).__name__}")
    if tuple(a.shape) != tuple(spec["shape"]):
        raise ShapeError(f"{what} has shape {tuple(a.shape)}; the plan was saved for {tuple(spec['shape'])}")
    if dtype_name(a.dtype) != spec["dtype"]:
        raise DTypeError(f"{what} has dtype {dtype_name(a.dtype)}; the plan was saved for {spec['dtype']}")
    return a


def load_plan(directory, verify=True) -> SavedPlan:
    """Load a plan saved by `CompiledFunction.save(directory)`; `verify` checks every file's sha256 first."""
    return SavedPlan(directory, verify)
