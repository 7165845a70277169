"""`tessera serve PACKAGE --host 127.0.0.1 --port N [--max-wait-ms MS] [--max-batch-size N]
[--latency-target-ms MS] [--model-name NAME] [--collection-interval S] [--log-level LEVEL]`.

Loads the package with `tessera.DeploymentPackage.load(PACKAGE)`, deploys it with `tessera.deploy(model_name=,
package=)`, and serves it with uvicorn until SIGTERM / SIGINT; shutdown drains every accepted request and the
process then exits 0. `--model-factory module:function` (hidden; for tests and custom models) builds the model by
calling that function instead.

tessera/tools/cli.py wires it as:
    s = sub.add_parser("serve", help="serve a deployment package over HTTP (POST /v1/infer, /health, /metrics)")
    from ..serve.cli import add_arguments as _serve_args   # argparse only: no fastapi at import
    _serve_args(s)
    ...
    if args.cmd == "serve":
        from ..serve.cli import run as serve_run
        return serve_run(args)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from ..errors import TesseraError


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("package", nargs="?", help="a folder written by DeploymentPackage.save")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model-name", default=None, help="the deployed model's name (default: the folder's name)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="longest a request waits for others to batch with (default 5)")
    p.add_argument("--max-batch-size", type=int, default=None,
                   help="cap on rows per batch (default: the largest compiled variant)")
    p.add_argument("--latency-target-ms", type=float, default=100.0,
                   help="mean model time per batch above which the batch limit shrinks (default 100)")
    p.add_argument("--collection-interval", type=float, default=5.0,
                   help="seconds between the production monitor's samples (default 5)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--model-factory", default=None, help=argparse.SUPPRESS)
    return p


def load_model(args):
    """The model to serve: --model-factory's, else tessera.deploy of the package."""
    if args.model_factory:
        mod, sep, fn = args.model_factory.partition(":")
        if not sep or not mod or not fn:
            raise TesseraError(f"--model-factory takes module:function, got {args.model_factory!r}")
        try:
            factory = getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise TesseraError(f"--model-factory {args.model_factory}: {e}") from None
        return factory()
    if not args.package:
        raise TesseraError("tessera serve needs a PACKAGE folder (written by DeploymentPackage.save)")
    import tessera as ts
    name = args.model_name or os.path.basename(os.path.normpath(args.package))
    return ts.deploy(model_name=name, package=ts.DeploymentPackage.load(args.package))


def run(args) -> int:
    """Serve until SIGTERM / SIGINT; 0 after a drained shutdown, 1 on a TesseraError before serving."""
    try:
        import uvicorn

        from .app import create_app
        from ..production.monitor import GDNProductionMonitor
    except ImportError as e:
        print(f"error: tessera serve needs the serve extras (pip install 'tessera[serve]'): {e}", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        model = load_model(args)
        # a package saved with add_monitoring_hooks() brings its monitor (and its config); else a default one
        monitor = getattr(model, "monitor", None) or GDNProductionMonitor(
            model.name, {"collection_interval": args.collection_interval})
        if hasattr(model, "feed_monitor"):   # the server records requests and batches itself
            model.feed_monitor = False
        app = create_app(model, monitor, max_wait_ms=args.max_wait_ms, max_batch_size=args.max_batch_size,
                         latency_target_ms=args.latency_target_ms)
    except TesseraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                           timeout_graceful_shutdown=None, access_log=False))
    # uvicorn re-raises the signal that stopped it once it has shut down (to kill the process with it); after a
    # drained shutdown that is a normal end, so these handlers (restored by uvicorn) swallow it: exit status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: None)
    server.run()
    return 0 if server.started else 1


def serve_main(argv=None) -> int:
    return run(add_arguments(argparse.ArgumentParser(prog="tessera serve")).parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(serve_main())
