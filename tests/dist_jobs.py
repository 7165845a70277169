"""Launching a bounded multi-process job from a test (tests/test_dist*.py): the environment (no inherited
torchrun variables, one OpenMP thread per rank, the tessera timeout), the launch through `tessera run` in its
own session, the kill of the whole session when the job outlives its limit, and the check that no process
of the job is left behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def job_env(dist_timeout):
    env = dict(os.environ, TESSERA_DIST_TIMEOUT=str(dist_timeout), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def tessera_run(nproc, script, *args):
    return [sys.executable, "-m", "tessera.tools.cli", "run", "--nproc", str(nproc), str(script), *map(str, args)]


def start(cmd, dist_timeout):
    return subprocess.Popen(cmd, env=job_env(dist_timeout), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait(proc, limit, what):
    """(the job's output, seconds it took); the job's whole session is killed past `limit` (a test failure)."""
    begin = time.monotonic()
    try:
        log, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail(f"the {what} job did not end within {limit} s:\n{log.decode()[-4000:]}")
    return log.decode(), time.monotonic() - begin


def leftovers(marker):
    """Processes still running with `marker` (e.g. the job's output folder) on their command line."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(marker) in cmd:
            found.append((int(pid), cmd))
    return found


def assert_nothing_left(marker, what):
    deadline = time.monotonic() + 10
    while leftovers(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = leftovers(marker)
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind by the {what} job: {left}"
