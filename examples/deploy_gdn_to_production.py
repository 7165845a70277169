#!/usr/bin/env python
"""Seed 002's `deploy_gdn_to_production()` with tessera's real API (docs/production.md).

    python examples/deploy_gdn_to_production.py --out /tmp/gdn_deploy               # small model, CPU variants
    python examples/deploy_gdn_to_production.py --out /tmp/gdn_deploy --serve-seconds 5
    python examples/deploy_gdn_to_production.py --out /tmp/gdn_deploy --gpu --emulate

What it does, step by step as the seed does:
  1. builds a ProductionGDNModel (@ts.export, a ts.Module) of the sizes given on the command line (tiny by
     default: the seed's 32000 x 4096 x 32 layers is --vocab 32000 --hidden 4096 --layers 32 ...);
  2. compiles it with GDNProductionCompiler: one ts.CompiledModule per (architecture x batch size); "cpu"
     by default, --gpu adds sm_80 and sm_90 (sm_90a), whose kernels become cubins with ptxas here even
     without a GPU;
  3. GDNDeploymentManager (example code below, not part of tessera) packages the variants with runtime
     components and monitoring hooks, saves the package to a folder, loads it back (checksums verified,
     no MLIR needed) and deploys it with ts.deploy;
  4. runs an inference (variant selection, padding) and a health check; starts the GDNProductionMonitor;
  5. with --emulate, deploys the GPU variants in a child process under TESSERA_BACKEND=emu, so their saved
     PTX runs in tessera's PTX emulator;
  6. with --serve-seconds N, starts `python -m tessera serve PACKAGE` (the seed's GDNInferenceServer),
     sends requests with httpx for about N seconds and a burst of concurrent ones (batched together), prints
     /health and some /metrics lines, then SIGTERMs the server and waits for its drained exit.
It prints the seed's return value, {"model", "package", "monitor"}, at the end (the seed's "server" is the
`tessera serve` process, which has exited by then)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

import tessera as ts
from tessera.gdn import GDNConfig, GDNProductionCompiler, ProductionGDNModel, init_params


# -- seed 002's GDNDeploymentManager, as example code ---------------------------------------------------------
class GDNDeploymentManager:
    """Packages compiled variants, saves and loads the package, deploys it. The seed's
    `setup_runtime_environment` (ts.Runtime / ts.RuntimeConfig) has no tessera counterpart: its settings are
    recorded as runtime components in the package manifest instead, and the batch scheduler's are handed to
    `tessera serve` below."""

    def __init__(self):
        self.model_registry = {}
        self.device_configs = self.detect_available_devices()

    def detect_available_devices(self):
        return {name: ts.target_ir.describe(name) for name in ts.target_ir.available()}

    def get_selection_criteria(self, compiled):
        return {"batch_size": compiled.batch_size, "device": compiled.target}

    def create_deployment_package(self, compiled_variants, config):
        package = ts.DeploymentPackage()
        for name, compiled in compiled_variants.items():
            package.add_variant(name=name, model=compiled, selection_criteria=self.get_selection_criteria(compiled))
        # runtime components are JSON settings stored in manifest.json; tessera itself does not read them
        package.add_runtime_component("delta_optimizer", {"prune_threshold": 0.01,
                                                          "delta_threads": config.get("delta_threads", 4)})
        package.add_runtime_component("memory_manager", {"memory_pool_size": config.get("memory_pool_size", "8GB")})
        package.add_runtime_component("batch_scheduler", {"max_wait_ms": config.get("max_wait_ms", 5),
                                                          "adaptive_batching": True})
        if config.get("enable_monitoring", True):
            package.add_monitoring_hooks(collection_interval=config.get("collection_interval", 30),
                                         delta_collection_interval=60)
        return package

    def deploy_model(self, model_name, compiled_variants, deployment_config, directory):
        package = self.create_deployment_package(compiled_variants, deployment_config)
        package.save(directory)
        loaded = ts.DeploymentPackage.load(directory)          # every file checked against its sha256
        deployed = ts.deploy(model_name=model_name, package=loaded, auto_scaling=True, health_checks=True)
        self.model_registry[model_name] = {"package": directory, "deployed": deployed}
        return deployed


# -- steps ----------------------------------------------------------------------------------------------------
def compile_variants(model, args):
    input_shapes = {"input_ids": ["batch", args.seq], "attention_mask": ["batch", args.seq]}
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    # the CPU variants also carry an ONNX model; GPU variants do not: the sm_90a policy's fp8 weights have
    # no ONNX Gather (docs/production.md)
    cpu = GDNProductionCompiler(target_architectures=["cpu"], export_formats=["onnx"] if args.onnx else [])
    variants = cpu.compile_gdn_model(model, input_shapes, batch_sizes=batch_sizes)
    if args.gpu:
        gpu = GDNProductionCompiler(target_architectures=["sm_80", "sm_90"], export_formats=[])
        variants.update(gpu.compile_gdn_model(model, input_shapes, batch_sizes=batch_sizes))
    return variants


def _child_env():
    """This environment, with this tessera first on PYTHONPATH (for the child processes)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(ts.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))


def run_in_emulator(package_dir, arch, seq, vocab):
    """Deploy the package in a child process whose TESSERA_BACKEND=emu runs `arch`'s variants' PTX."""
    code = f"""
import numpy as np, tessera as ts
m = ts.deploy(model_name="emu", package={package_dir!r}, health_checks=False)
assert m.device == {arch!r}, m
ids = np.arange({seq}, dtype=np.int32)[None] % {vocab}
out = m.inference({{"input_ids": ids}})["logits"]
print(m.device, m.variant_for(1), out.shape, bool(np.isfinite(out).all()))
"""
    env = dict(_child_env(), TESSERA_BACKEND="emu", TESSERA_EMU_ARCH=arch)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"the {arch} variant failed in the emulator:\n{r.stderr[-2000:]}")
    return r.stdout.strip()


async def _burst(url, bodies):
    """Send the requests at once (the server batches what arrives together); their batch_rows."""
    import httpx
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        replies = await asyncio.gather(*(client.post("/v1/infer", json={"input_ids": b}) for b in bodies))
    for r in replies:
        r.raise_for_status()
    return [r.json()["batch_rows"] for r in replies]


def serve_for(package_dir, seconds, max_wait_ms, seq, vocab, startup_timeout=120.0):
    """`python -m tessera serve PACKAGE` in its own process group (tessera.serve.process): requests for
    `seconds`, /health and /metrics, then SIGTERM and the drained exit."""
    import httpx
    from tessera.serve.process import serve_process
    env = _child_env()
    options = ["--max-wait-ms", str(max_wait_ms), "--log-level", "warning"]
    with tempfile.TemporaryFile(mode="w+") as log, \
            serve_process(package_dir, *options, env=env, log=log, startup_timeout=startup_timeout) as (proc, url):
        print(f"serving: python -m tessera serve {package_dir} {' '.join(options)} at {url}")
        print("health:", json.dumps(httpx.get(url + "/health", timeout=5).json()))
        rng = np.random.default_rng(1)
        sent, end = 0, time.monotonic() + seconds
        with httpx.Client(base_url=url, timeout=30) as client:
            while sent < 3 or time.monotonic() < end:
                rows = int(rng.integers(1, 3))
                ids = rng.integers(0, vocab, (rows, int(rng.integers(2, seq + 1)))).tolist()
                r = client.post("/v1/infer", json={"input_ids": ids})
                r.raise_for_status()
                if sent < 3:
                    print("infer:", json.dumps(r.json()))
                sent += 1
            burst = asyncio.run(_burst(url, [rng.integers(0, vocab, (1, seq)).tolist() for _ in range(8)]))
            print(f"8 concurrent one-row requests ran in batches of {sorted(set(burst))} rows")
            bad = client.post("/v1/infer", json={"input_ids": [[vocab]]})
            print("bad request:", bad.status_code, json.dumps(bad.json()))
            metrics = client.get("/metrics").text
        print(f"sent {sent} requests; /metrics:")
        for line in metrics.splitlines():
            if line.startswith(("tessera_serve_requests_total", "tessera_serve_batch_size_count",
                                "tessera_monitor_latency_seconds", "tessera_monitor_throughput")):
                print("  " + line)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        print(f"tessera serve exited with {rc} after SIGTERM (drained)")
        if rc != 0:
            log.seek(0)
            raise RuntimeError(f"tessera serve exited with {rc}:\n{log.read()[-3000:]}")
        return sent


def deploy_gdn_to_production(args):
    t0 = time.perf_counter()
    # 1. the model (seed: GDNConfig(vocab_size=32000, hidden_size=4096, num_hidden_layers=32, max_delta_distance=3))
    config = GDNConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                       num_attention_heads=args.heads, intermediate_size=args.intermediate,
                       max_delta_distance=args.max_delta, delta_hidden_size=args.delta_hidden,
                       gating_hidden_size=args.gating_hidden, use_attention_deltas=True)
    model = ProductionGDNModel(config).load_gdn_params(init_params(config, seed=0))
    print(f"model: ProductionGDNModel, {model.parameter_count()} parameters")

    # 2. the production compiler: one CompiledModule per architecture x batch size
    variants = compile_variants(model, args)
    for name, cm in variants.items():
        extra = f", {len(cm.cubins)} cubins" if getattr(cm, "cubins", None) else ""
        print(f"compiled {name}: target={cm.target} shapes={cm.fixed_shapes()}{extra}")

    # 3. package, save, load, deploy
    os.makedirs(args.out, exist_ok=True)
    package_dir = os.path.join(args.out, args.model_name)
    manager = GDNDeploymentManager()
    deployed = manager.deploy_model(args.model_name, variants, {"memory_pool_size": "16GB", "delta_threads": 4,
                                                                 "enable_monitoring": True, "max_wait_ms": 5,
                                                                 "collection_interval": 30},
                                    directory=package_dir)
    manifest = json.load(open(os.path.join(package_dir, "manifest.json")))
    print(f"package: {package_dir} ({len(manifest['files'])} files checksummed, variants "
          f"{[v['name'] for v in manifest['variants']]})")
    print(f"deployed: {deployed!r}")

    # 4. an inference (3 rows of seq-3 tokens, one left-padded) and a health check
    rng = np.random.default_rng(0)
    ids = rng.integers(0, args.vocab, (3, max(args.seq - 3, 1))).astype(np.int32)
    mask = np.ones_like(ids)
    mask[0, :1] = 0
    t = time.perf_counter()
    logits = deployed.inference({"input_ids": ids, "attention_mask": mask})["logits"]
    latency = time.perf_counter() - t
    print(f"inference: logits {list(logits.shape)} via {deployed.variant_for(len(ids))}, "
          f"next tokens {logits[:, -1].argmax(-1).tolist()}")
    print(f"health: {json.dumps(deployed.health())}")

    # the monitor the package's hooks made (ts.deploy); tessera serve feeds its own from every request, here
    # the in-process inference above is recorded by hand
    monitor = deployed.monitor
    monitor.start_monitoring()
    monitor.record_request(latency_s=latency)
    monitor.record_batch(rows=len(ids), model_s=latency, queue_depth=0)
    snap = monitor.collect_once()
    print(f"monitor: running={monitor.monitoring} requests={snap['window_requests']} "
          f"p50={snap['latency_p50']:.2f} ms gpu_utilization={snap['gpu_utilization']}")

    # 5. GPU variants in the PTX emulator
    if args.emulate:
        for arch in sorted({cm.target for cm in variants.values()} - {"cpu"}):
            print(f"emulated {arch}: {run_in_emulator(package_dir, arch, args.seq, args.vocab)}")

    # 6. the inference server
    if args.serve_seconds > 0:
        max_wait = ts.DeploymentPackage.load(package_dir).runtime_components["batch_scheduler"]["max_wait_ms"]
        serve_for(package_dir, args.serve_seconds, max_wait, args.seq, args.vocab)

    print("GDN model successfully deployed to production!")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return {"model": deployed, "package": package_dir, "monitor": monitor}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, help="folder the package is saved in (default: a new temporary folder)")
    p.add_argument("--model-name", default="gdn_chat")
    p.add_argument("--vocab", type=int, default=32)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=32)
    p.add_argument("--max-delta", type=int, default=1)
    p.add_argument("--delta-hidden", type=int, default=8)
    p.add_argument("--gating-hidden", type=int, default=8)
    p.add_argument("--seq", type=int, default=16, help="tokens per row the variants are compiled for")
    p.add_argument("--batch-sizes", default="1,4", help="comma-separated batch sizes of the variants")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="no ONNX model in the CPU variants")
    p.add_argument("--gpu", action="store_true", help="also compile sm_80 and sm_90 (sm_90a) variants")
    p.add_argument("--emulate", action="store_true", help="run the GPU variants in the PTX emulator (with --gpu)")
    p.add_argument("--serve-seconds", type=float, default=0, help="serve the package over HTTP for this long")
    args = p.parse_args(argv)
    if args.emulate and not args.gpu:
        p.error("--emulate needs --gpu")
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="gdn_deploy_")
    return args


if __name__ == "__main__":
    result = deploy_gdn_to_production(parse_args())
    print("result:", {k: (v if isinstance(v, str) else repr(v)) for k, v in result.items()})
