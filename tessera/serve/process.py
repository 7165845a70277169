"""`tessera serve` in a child process, for tests, benchmarks and examples: started in its own session, ready
once /health answers 200, stopped at the end (SIGKILL of its process group when it is still running; a caller
that wants the drain sends SIGTERM itself first)."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from ..errors import ServeError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_process(package, *options, env=None, log=None, cwd=None, startup_timeout=120.0):
    """Yields (process, url). `log`: a writable file for its output (None: discarded). A server that exits or
    does not answer within startup_timeout raises ServeError with its output when `log` is readable."""
    import httpx
    port = free_port()
    out = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "tessera", "serve", str(package), "--host", "127.0.0.1",
                             "--port", str(port), *options], cwd=cwd, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def output():
        if log is None or not log.readable():
            return ""
        log.flush()
        log.seek(0)
        return "\n" + log.read()[-4000:]
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise ServeError(f"the server exited with {proc.returncode} before answering /health{output()}",
                                 status=500)
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise ServeError(f"the server did not answer /health within {startup_timeout} s{output()}",
                                 status=500)
            time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
