"""Finding and running ptxas (DESIGN §3: knob, PATH, CUDA_HOME/CUDA_PATH/CUDA_ROOT, the
nvidia-cuda-nvcc wheel). No mlir import."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from ... import knobs
from ...errors import BackendUnavailable


def find_ptxas() -> str:
    cand = knobs.ptxas_path()
    if cand:
        if os.path.isfile(cand):
            return cand
        raise BackendUnavailable(f"TESSERA_PTXAS={cand} does not exist")
    p = shutil.which("ptxas")
    if p:
        return p
    home = knobs.cuda_home()
    for root in ([home] if home else []) + ["/usr/local/cuda"]:
        p = os.path.join(root, "bin", "ptxas")
        if os.path.isfile(p):
            return p
    try:
        import nvidia.cuda_nvcc  # type: ignore
        p = os.path.join(os.path.dirname(nvidia.cuda_nvcc.__file__), "bin", "ptxas")
        if os.path.isfile(p):
            return p
    except ImportError:
        pass
    raise BackendUnavailable("ptxas not found: install the CUDA toolkit (or `pip install nvidia-cuda-nvcc`), "
                             "put ptxas on PATH, or set TESSERA_PTXAS / CUDA_HOME")


_REGS = re.compile(r"Used (\d+) registers")
_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_SMEM = re.compile(r"(\d+) bytes smem")


def assemble(ptx: str, arch: str, opt_level: int = 3):
    """PTX → cubin bytes, plus what `ptxas -v` reports (registers, spills, static smem)."""
    exe = find_ptxas()
    with tempfile.TemporaryDirectory(prefix="tessera-ptxas-") as d:
        src, out = os.path.join(d, "k.ptx"), os.path.join(d, "k.cubin")
        with open(src, "w") as f:
            f.write(ptx)
        r = subprocess.run([exe, f"-arch={arch}", f"-O{opt_level}", "-v", src, "-o", out],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BackendUnavailable(f"ptxas failed for {arch}:\n{r.stderr.strip()}")
        with open(out, "rb") as f:
            cubin = f.read()
    log = r.stderr
    regs = _REGS.search(log)
    spill = _SPILL.search(log)
    smem = _SMEM.search(log)
    info = {"registers": int(regs.group(1)) if regs else None,
            "spill_stores": int(spill.group(1)) if spill else 0,
            "spill_loads": int(spill.group(2)) if spill else 0,
            "static_smem": int(smem.group(1)) if smem else 0,
            "ptxas_log": log.strip()}
    return cubin, info
