"""tessera.optim: optimisers whose step is one compiled kernel over all parameters (SGD, AdamW), gradient
clipping by total norm, and loss scaling (DESIGN §12).

    opt = tessera.optim.AdamW(params, lr=1e-3)      # params: a list of arrays, updated in place
    tessera.optim.clip_grad_norm_(grads, 1.0)
    opt.step(grads)                                 # grads: a list in the order of params
    opt.lr = schedule(step)                         # a runtime scalar of the kernel: no recompile

PyTorch's semantics (torch.optim.SGD / AdamW, torch.nn.utils.clip_grad_norm_, torch.cuda.amp.GradScaler).
Importing this package does not import mlir: the kernels are generated and compiled on first use.
"""
from .optimizer import Optimizer, SGD, AdamW  # noqa: F401
from .clip import clip_grad_norm_  # noqa: F401
from .scaler import LossScaler  # noqa: F401

__all__ = ["Optimizer", "SGD", "AdamW", "clip_grad_norm_", "LossScaler"]
