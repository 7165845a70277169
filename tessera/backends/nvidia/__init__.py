"""NVIDIA backend: tile IR → gpu/nvvm → llvm → PTX (MLIR's NVPTX backend) → cubin (ptxas).

The stage table is the same shape as the CPU one: (stage name = file extension, action). An action
is a pipeline string (tessera + upstream passes, run on the module) or a callable producing the
stage's artifact. `{arch}`, `{chip}` and `{num_warps}` are filled from the target.
"""
from .targets import TARGETS, Target  # noqa: F401

PIPELINE_GPU = ("tessera-lower-tensor-lists,tessera-pipeline-mma,tessera-place-layout-conversions{{arch={arch} num_warps={num_warps} warp_specialize={ws}}},"
                "tessera-lower-tile-to-gpu{{arch={arch} num_warps={num_warps} num_stages={num_stages} "
                "warp_specialize={ws} persistent={persistent}}},"
                "arith-emulate-unsupported-floats{{source-types=f8E4M3FN target-type=f32}},tessera-expand-fp8,"
                "canonicalize,cse,tessera-narrow-index,canonicalize,cse")
# sm_90a first marks TMA-able loads and WGMMA-able K loops
PIPELINE_GPU_SM90 = "tessera-use-tma,tessera-use-wgmma{{num_warps={num_warps} warp_specialize={ws}}}," + PIPELINE_GPU
PIPELINE_LLVM = ",".join([
    "convert-nvgpu-to-nvvm",
    "gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine)",
    "nvvm-attach-target{{chip={chip} features=+ptx80 O=3}}",
    "gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts)",
    "tessera-tma-shared-address",
])
