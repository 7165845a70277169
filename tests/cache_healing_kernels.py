"""The kernels tests/test_cache_healing.py launches, in a module of their own so that a subprocess
imports the very same source (and so the same cache keys) as the test process."""
import numpy as np

import tessera as ts
from tessera import tile


def make(scale=1.0):
    """A fresh kernel object each call, so only the disk cache is shared between launches; K is
    a specialised dim, so the index of dim-specialised kernels is used too."""
    if scale == 1.0:
        @ts.kernel
        def rowsum(x: tile.Tensor["N", "K"], out: tile.Tensor["N"], BLOCK: ts.constexpr = 16):
            ctx = tile.context()
            i = tile.program_id(0) * BLOCK
            tile.store(out[i:i + BLOCK], tile.sum(tile.load(x[i:i + BLOCK, 0:ctx.K]), axis=1))
        return rowsum

    @ts.kernel
    def rowsum(x: tile.Tensor["N", "K"], out: tile.Tensor["N"], BLOCK: ts.constexpr = 16):
        ctx = tile.context()
        i = tile.program_id(0) * BLOCK
        tile.store(out[i:i + BLOCK], tile.sum(tile.load(x[i:i + BLOCK, 0:ctx.K]), axis=1) * 2.0)
    return rowsum


def launch(scale=1.0):
    """Launch with the numbers checked; whether the kernel came from the disk cache."""
    x = np.arange(32 * 8, dtype=np.float32).reshape(32, 8)
    out = np.zeros(32, np.float32)
    ck = make(scale)[(2,)](x, out)
    np.testing.assert_allclose(out, x.sum(axis=1) * scale)
    return bool(ck.metadata.get("from_disk_cache"))


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(launch(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)))
