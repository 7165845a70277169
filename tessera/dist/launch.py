"""`tessera run --nproc N script.py [args]`: the script on N processes through torchrun (DESIGN §14).

torchrun (torch.distributed.run) starts the processes with a standalone rendezvous on this host, sets
RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT for dist.mesh, stops the others when one fails, and exits
non-zero when any did; `tessera run` returns that exit code. It runs torchrun as a child process (its
own interpreter), so this process holds no torch state and the job's exit code is passed through as is.
"""
from __future__ import annotations

import os
import subprocess
import sys


def torchrun_command(nproc: int, script: str, script_args) -> list:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            # the elastic agent's default is to restart failed workers 0 times: a failure ends the job
            "--max-restarts=0", script, *script_args]


def run(nproc: int, script: str, script_args) -> int:
    if nproc < 1:
        print(f"error: --nproc must be at least 1, got {nproc}", file=sys.stderr)
        return 2
    if not os.path.exists(script):
        print(f"error: no such script: {script}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    # torchrun warns at length about OMP_NUM_THREADS and sets it to 1; say so once ourselves
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen(torchrun_command(nproc, script, script_args), env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:   # torchrun got the same SIGINT and stops its workers; wait for it
        return proc.wait()
