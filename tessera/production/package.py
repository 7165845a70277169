"""`ts.DeploymentPackage`, `ts.deploy`, `ts.DeployedModel`: compiled variants packaged for serving.

    package = ts.DeploymentPackage()
    package.add_variant(name="cpu_batch_4", model=compiled, selection_criteria={"batch_size": 4})
    package.save("gdn_pkg/")                          # manifest.json, weights (safetensors), plans, ONNX
    package = ts.DeploymentPackage.load("gdn_pkg/")   # checksums verified; no mlir import
    model = ts.deploy(model_name="gdn", package=package)
    out = model.inference({"input_ids": ids})         # {"logits": [B, S, vocab]}

A saved package is a directory: `manifest.json` (format, variants, the sha256 of every other file), one
`weights/<hash>.safetensors` per distinct set of parameters (variants of one dtype share it), and per variant
`variants/<name>/plan/` (the compiled plan: kernels as shared objects for cpu, cubins for sm_80 / sm_90a;
tessera.runtime.saved_plan) and, when exported, `variants/<name>/model.onnx`. Loading checks every file
against the manifest before reading any, and refuses a package with a changed, missing or extra file.

Variant selection: the variants whose device is present (cpu always; sm_80 / sm_90a when CuPy sees that
GPU), then the smallest batch_size ≥ the request's rows; a request with more rows than the largest variant
runs in chunks. Rows are padded with zeros up to the variant's batch and, when the variant takes an
attention_mask, sequences shorter than its length are left-padded (mask 0), which leaves the real tokens'
logits unchanged (no position embeddings; tessera.gdn.model)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

import numpy as np

from ..errors import CompilationError, TesseraError, located
from ..runtime.saved_plan import dtype_from_name, sha256

FORMAT = 1
MANIFEST = "manifest.json"
_BITS_DTYPES = {"bfloat16": np.uint16, "float8_e4m3fn": np.uint8, "float8_e5m2": np.uint8}


def _json_ready(value, what):
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    try:
        json.dumps(value)
    except TypeError:
        raise located(CompilationError, f"{what} must be JSON-serialisable (or have to_dict()), got "
                      f"{type(value).__name__}") from None
    return value


# -- weights ---------------------------------------------------------------------------------------------
def save_weights(state, path):
    """safetensors file of {name: array}; bf16 / fp8 arrays are stored as their bits (NumPy has no such
    dtype for safetensors), their dtype kept in the metadata."""
    from safetensors.numpy import save_file
    tensors, dtypes = {}, {}
    for name, a in state.items():
        a = np.ascontiguousarray(a)
        if a.dtype.name in _BITS_DTYPES:
            dtypes[name] = a.dtype.name
            a = a.view(_BITS_DTYPES[a.dtype.name])
        tensors[name] = a
    save_file(tensors, path, metadata={"tessera_dtypes": json.dumps(dtypes)})


def load_weights(path):
    from safetensors import safe_open
    out = {}
    with safe_open(path, framework="numpy") as f:
        dtypes = json.loads((f.metadata() or {}).get("tessera_dtypes", "{}"))
        for name in f.keys():
            a = f.get_tensor(name)
            if name in dtypes:
                a = a.view(dtype_from_name(dtypes[name]))
            out[name] = a
    return out


def _weights_key(state):
    h = hashlib.sha256()
    for name in sorted(state):
        a = np.ascontiguousarray(state[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.view(np.uint8).data)
    return h.hexdigest()[:16]


# -- exporting one compiled module -------------------------------------------------------------------------
def export_compiled_module(cm, directory, formats=("plan",)):
    """The plan (and ONNX when asked) of a compiled module's fixed variant in `directory`; returns the
    variant's manifest entry (paths relative to `directory`), without weights."""
    fixed = cm.fixed_shapes()
    if fixed is None:
        raise located(CompilationError, "only a compiled module with every input dim fixed can be exported "
                      "(set batch_size in the config and give the other dims as ints or dims={...})")
    os.makedirs(directory, exist_ok=True)
    entry = {"target": cm.target, "module_class": cm.module_class, "input_names": cm.input_names,
             "input_shapes": {n: list(s) for n, s in fixed.items()},
             "input_dtypes": {n: cm.input_dtypes[n].name for n in fixed},
             "parameters": [n for n, _ in cm._module.named_parameters()],
             "config": cm.config.to_dict(), "optimizations": cm.optimizations}
    ck = cm.compiled_function()
    ck.save(os.path.join(directory, "plan"), target=cm.target)
    entry["plan"] = "plan"
    example = cm(**cm._examples(fixed))
    entry["output_shape"] = list(np.shape(example))
    if "onnx" in formats or getattr(cm, "onnx_model", None) is not None:
        from .compiled_module import cm_onnx
        cm_onnx(cm, os.path.join(directory, "model.onnx"))
        entry["onnx"] = "model.onnx"
    return entry


# -- the package ---------------------------------------------------------------------------------------
class DeploymentPackage:
    def __init__(self):
        self.variants = {}              # name → {"model": CompiledModule or LoadedVariant, "criteria": {...}}
        self.runtime_components = {}
        self.monitoring = None
        self.directory = None

    def add_variant(self, name, model, selection_criteria=None):
        from .compiled_module import CompiledModule
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise located(CompilationError, f"add_variant: name must be a plain non-empty string, got {name!r}")
        if name in self.variants:
            raise located(CompilationError, f"add_variant: a variant named {name!r} is already in the package")
        if not isinstance(model, (CompiledModule, LoadedVariant)):
            raise located(CompilationError, f"add_variant: model must be a ts.CompiledModule (from ts.compile), "
                          f"got {type(model).__name__}")
        if model.fixed_shapes() is None:
            raise located(CompilationError, f"add_variant {name!r}: the compiled module has free dims; a variant "
                          "needs fixed input shapes (batch_size= in its config)")
        criteria = dict(selection_criteria or {})
        criteria.setdefault("batch_size", model.batch_size)
        criteria.setdefault("device", model.target)
        if criteria["batch_size"] != model.batch_size:
            raise located(CompilationError, f"add_variant {name!r}: selection_criteria batch_size "
                          f"{criteria['batch_size']} differs from the variant's compiled batch {model.batch_size}")
        self.variants[name] = {"model": model, "criteria": _json_ready(criteria, "selection_criteria")}
        return self

    def add_runtime_component(self, name, component):
        """A named runtime setting stored in the manifest (a dict, or an object with to_dict())."""
        self.runtime_components[str(name)] = _json_ready(component, f"runtime component {name!r}")
        return self

    def add_monitoring_hooks(self, **monitoring_config):
        """Deployments of this package get a GDNProductionMonitor (its config here), fed by every
        DeployedModel.inference call, or per request and batch by `tessera serve`."""
        self.monitoring = {"enabled": True, "config": _json_ready(monitoring_config, "monitoring config")}
        return self

    # -- saving and loading ------------------------------------------------------------------------------
    def save(self, directory):
        if not self.variants:
            raise located(CompilationError, "DeploymentPackage.save: the package has no variants")
        if os.path.exists(directory) and os.listdir(directory):
            raise located(CompilationError, f"DeploymentPackage.save: {directory} exists and is not empty")
        os.makedirs(os.path.join(directory, "weights"), exist_ok=True)
        manifest = {"format": FORMAT, "variants": [], "runtime_components": self.runtime_components,
                    "monitoring": self.monitoring}
        for name, v in self.variants.items():
            model = v["model"]
            if isinstance(model, LoadedVariant):
                raise located(CompilationError, "DeploymentPackage.save: re-saving a loaded package is not "
                              "supported (copy its directory)")
            entry = export_compiled_module(model, os.path.join(directory, "variants", name),
                                           getattr(model, "export_formats", ()) or ("plan",))
            state = model.state_dict()
            key = _weights_key(state)
            weights = f"weights/{key}.safetensors"
            if not os.path.exists(os.path.join(directory, weights)):
                save_weights(state, os.path.join(directory, weights))
            entry.update({"name": name, "selection_criteria": v["criteria"], "weights": weights,
                          "plan": f"variants/{name}/{entry['plan']}"})
            if "onnx" in entry:
                entry["onnx"] = f"variants/{name}/{entry['onnx']}"
            manifest["variants"].append(entry)
        manifest["files"] = {rel: sha256(os.path.join(directory, rel)) for rel in _files(directory)}
        with open(os.path.join(directory, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        self.directory = directory
        return directory

    @classmethod
    def load(cls, directory):
        """The package saved in `directory`, every file checked against the manifest's sha256 first (a
        TesseraError names the first file that differs, is missing or is not listed). No mlir import."""
        path = os.path.join(directory, MANIFEST)
        try:
            with open(path) as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            raise located(CompilationError, f"{directory} is not a tessera deployment package ({e})") from None
        if manifest.get("format") != FORMAT:
            raise located(CompilationError, f"{path}: package format {manifest.get('format')!r}, this tessera "
                          f"reads {FORMAT}")
        listed = manifest.get("files", {})
        present = set(_files(directory))
        for rel in sorted(set(listed) | present):
            if rel not in listed:
                raise located(CompilationError, f"deployment package {directory}: {rel} is not in the manifest")
            if rel not in present:
                raise located(CompilationError, f"deployment package {directory}: {rel} is missing")
            if sha256(os.path.join(directory, rel)) != listed[rel]:
                raise located(CompilationError, f"deployment package {directory}: {rel} fails its checksum "
                              "(the file changed after the package was saved); refusing to load it")
        package = cls()
        package.runtime_components = manifest.get("runtime_components", {})
        package.monitoring = manifest.get("monitoring")
        package.directory = directory
        weights = {}
        for entry in manifest["variants"]:
            if entry["weights"] not in weights:
                weights[entry["weights"]] = load_weights(os.path.join(directory, entry["weights"]))
            model = LoadedVariant(directory, entry, weights[entry["weights"]])
            package.variants[entry["name"]] = {"model": model, "criteria": entry["selection_criteria"]}
        return package

    def __repr__(self):
        return f"<DeploymentPackage {len(self.variants)} variants: {', '.join(self.variants)}>"


def _files(directory):
    out = []
    for root, _, names in os.walk(directory):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), directory).replace(os.sep, "/")
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


class LoadedVariant:
    """A variant of a loaded package: its saved plan, run with the package's weights (no mlir)."""

    def __init__(self, directory, entry, weights):
        from ..runtime.saved_plan import load_plan
        self.entry = entry
        self.name = entry["name"]
        self.target = entry["target"]
        self.input_names = entry["input_names"]
        self._shapes = {n: tuple(s) for n, s in entry["input_shapes"].items()}
        self.input_dtypes = {n: np.dtype(_np_name(d)) for n, d in entry["input_dtypes"].items()}
        self.output_shape = tuple(entry["output_shape"])
        self._params = {n: weights[n] for n in entry["parameters"]}
        self._plan = load_plan(os.path.join(directory, entry["plan"]), verify=False)   # the package checked it
        self.onnx_path = os.path.join(directory, entry["onnx"]) if "onnx" in entry else None

    def fixed_shapes(self):
        return dict(self._shapes)

    @property
    def batch_size(self):
        return next(iter(self._shapes.values()))[0]

    def state_dict(self):
        return dict(self._params)

    def __call__(self, **inputs):
        # the module is the forward's first argument ("self", which cannot be a keyword here)
        return self._plan(self._params, **inputs)


def _np_name(dtype_name):
    from .. import dtypes as dt
    return dt.by_name(dtype_name).to_numpy()


# -- deployment ------------------------------------------------------------------------------------------
def _devices_present():
    """cpu, the attached GPU's target, and under TESSERA_BACKEND=emu the emulated one (its variants then run
    their saved PTX in the PTX emulator: how GPU variants are checked without a GPU)."""
    from .. import knobs
    present = {"cpu"}
    if knobs.backend() == "emu":
        present.add(knobs.emu_arch())
    try:
        from ..runtime.cuda import device_arch
        present.add(device_arch())
    except Exception:   # no CuPy or no supported GPU: cpu variants only
        pass
    return present


class DeployedModel:
    """A package's variants behind one `inference` (see the module docstring for the selection)."""

    def __init__(self, name, package, auto_scaling=True, monitor=None):
        self.name = name
        self.package = package
        self.auto_scaling = bool(auto_scaling)
        present = _devices_present()
        usable = [(n, v) for n, v in package.variants.items() if v["criteria"].get("device", "cpu") in present]
        if not usable:
            raise located(CompilationError, f"ts.deploy: no variant of the package runs here (devices present: "
                          f"{sorted(present)}; variants: {[v['criteria'] for v in package.variants.values()]})")
        gpu_first = sorted(usable, key=lambda nv: (nv[1]["criteria"].get("device") == "cpu",
                                                    nv[1]["criteria"]["batch_size"]))
        self._variants = []          # (batch_size, name, model): the preferred device's, by batch size
        device = gpu_first[0][1]["criteria"].get("device")
        for n, v in gpu_first:
            if v["criteria"].get("device") == device:
                self._variants.append((v["criteria"]["batch_size"], n, v["model"]))
        self.device = device
        first = self._variants[0][2]
        shapes = first.fixed_shapes()
        self.input_names = [n for n in first.input_names if n in shapes]
        self.max_sequence_length = shapes["input_ids"][1] if "input_ids" in shapes else None
        self.max_batch_size = self._variants[-1][0]
        out_shape = first.output_shape if isinstance(first, LoadedVariant) else None
        self.vocab_size = out_shape[-1] if out_shape else None
        self.monitor = monitor
        # inference() records each call in the monitor; `tessera serve` turns this off and feeds it per request
        # and per batch itself (so nothing is counted twice)
        self.feed_monitor = True
        if self.vocab_size is None:   # an in-memory compiled module: run once to learn the output
            shape = (1, self.max_sequence_length or 1)   # (not recorded in the monitor: not a user's call)
            self.vocab_size = self._inference(np.zeros(shape, np.int32), np.ones(shape, np.int32)).shape[-1]

    @property
    def variants(self):
        return [n for _, n, _ in self._variants]

    def variant_for(self, batch_size):
        for b, n, _ in self._variants:
            if b >= batch_size:
                return n
        return self._variants[-1][1]

    def _model_for(self, rows):
        for b, n, m in self._variants:
            if b >= rows:
                return b, n, m
        return self._variants[-1]

    def inference(self, inputs):
        """{"logits": [B, S, vocab]} for {"input_ids": [B, S] ints, "attention_mask": optional [B, S] 0/1}."""
        if not isinstance(inputs, dict) or "input_ids" not in inputs:
            raise located(CompilationError, "inference takes a dict with 'input_ids' ([batch, sequence] ints)")
        ids = np.asarray(inputs["input_ids"])
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise located(CompilationError, f"input_ids must be a [batch, sequence] integer array, got "
                          f"{ids.dtype}{list(ids.shape)}")
        mask = inputs.get("attention_mask")
        mask = np.ones(ids.shape, np.int32) if mask is None else np.asarray(mask)
        if mask.shape != ids.shape:
            raise located(CompilationError, f"attention_mask has shape {mask.shape}, input_ids {ids.shape}")
        B, S = ids.shape
        if self.max_sequence_length is not None and S > self.max_sequence_length:
            raise located(CompilationError, f"input_ids has {S} tokens per row; the variants take at most "
                          f"{self.max_sequence_length}")
        if B > self.max_batch_size and not self.auto_scaling:
            raise located(CompilationError, f"{B} rows; the largest variant takes {self.max_batch_size} "
                          "(deploy with auto_scaling=True to run larger batches in chunks)")
        t0 = time.perf_counter()
        try:
            logits = self._inference(ids, mask)
        except Exception:
            if self.monitor is not None and self.feed_monitor:
                self.monitor.record_request(time.perf_counter() - t0, ok=False)
            raise
        if self.monitor is not None and self.feed_monitor:
            seconds = time.perf_counter() - t0
            self.monitor.record_batch(B, seconds)
            self.monitor.record_request(seconds, ok=True)
        return {"logits": logits}

    def _inference(self, ids, mask):
        B = ids.shape[0]
        outs = []
        for start in range(0, B, self.max_batch_size):
            outs.append(self._run(ids[start:start + self.max_batch_size], mask[start:start + self.max_batch_size]))
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)

    def _run(self, ids, mask):
        B, S = ids.shape
        batch, _, model = self._model_for(B)
        shapes = model.fixed_shapes()
        L = shapes["input_ids"][1]
        takes_mask = "attention_mask" in shapes
        if S != L and not takes_mask:
            raise located(CompilationError, f"this package's variants take exactly {L} tokens per row (no "
                          "attention_mask input to pad with)")
        if not takes_mask and not np.all(mask == 1):
            raise located(CompilationError, "this package's variants take no attention_mask")
        pad_ids = np.zeros((batch, L), np.int32)
        pad_mask = np.zeros((batch, L), np.int32)
        pad_ids[:B, L - S:] = ids
        pad_mask[:B, L - S:] = mask
        pad_mask[B:, :] = 1          # padding rows: plain causal rows of token 0 (finite softmax everywhere)
        feed = {"input_ids": pad_ids}
        if takes_mask:
            feed["attention_mask"] = pad_mask
        logits = np.asarray(model(**feed))
        return logits[:B, L - S:]

    async def inference_async(self, inputs):
        """inference() on a worker thread (the event loop keeps running)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.inference, inputs)

    def health(self):
        """Run the smallest variant once on zeros: {"status": "ok", ...} or a TesseraError."""
        L = self.max_sequence_length or 1
        out = self.inference({"input_ids": np.zeros((1, L), np.int32)})["logits"]
        if not np.all(np.isfinite(out)):
            raise TesseraError(f"deployment {self.name}: the health check produced non-finite logits")
        return {"status": "ok", "model": self.name, "device": self.device, "variants": self.variants}

    def __repr__(self):
        return f"<DeployedModel {self.name} on {self.device}: {', '.join(self.variants)}>"


def deploy(model_name, package, runtime=None, auto_scaling=True, health_checks=True):
    """`ts.deploy(model_name=, package=)`: a DeployedModel of a DeploymentPackage (or its directory).
    auto_scaling: batches over the largest variant run in chunks (else they are refused); health_checks:
    each usable variant runs once on zeros now; a package with monitoring hooks gets a GDNProductionMonitor."""
    if runtime is not None:
        raise located(CompilationError, "ts.deploy: runtime= is not supported (the package's variants carry "
                      "their own configuration)")
    if isinstance(package, (str, os.PathLike)):
        package = DeploymentPackage.load(package)
    if not isinstance(package, DeploymentPackage):
        raise located(CompilationError, f"ts.deploy: package must be a ts.DeploymentPackage or its directory, got "
                      f"{type(package).__name__}")
    monitor = None
    if package.monitoring and package.monitoring.get("enabled"):
        from .monitor import GDNProductionMonitor
        monitor = GDNProductionMonitor(model_name, package.monitoring.get("config", {}))
    model = DeployedModel(model_name, package, auto_scaling=auto_scaling, monitor=monitor)
    if health_checks:
        L = model.max_sequence_length or 1
        for b, _, _ in model._variants:
            model._run(np.zeros((b, L), np.int32), np.ones((b, L), np.int32))
    return model

