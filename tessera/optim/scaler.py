"""Loss scaling for 16-bit training (the seeds' `gradient_scaling=True, loss_scaling=2**15`), with the
semantics of torch.cuda.amp.GradScaler.

    scaler = LossScaler(init_scale=2**15)
    loss, grads = value_and_grad(scaler.scale(...))      # or: grads of scaler.scale(loss)
    scaler.unscale_(grads)                               # optional: before clipping
    clip_grad_norm_(grads, 1.0)
    scaler.step(opt, grads)                              # skipped when a gradient held inf / NaN
    scaler.update()                                      # backoff on inf, growth after growth_interval good steps

`unscale_` multiplies the gradients in place by 1/scale and detects inf / NaN in the same compiled launch.
One LossScaler tracks one iteration: every unscale_ since the last update() counts, so one bad
gradient skips every step() of that iteration (torch tracks found-inf per optimiser).
"""
from __future__ import annotations

import numpy as np

from ..errors import CompilationError, LaunchError
from .clip import grad_groups, scale_
from .multi import check_finite_scalar, error


def _f32(x: float) -> float:
    return float(np.float32(x))     # torch keeps the scale in an f32 tensor


class LossScaler:
    """Multiply the loss by `scale`, unscale the gradients, skip steps whose gradients overflowed and adapt
    the scale (dynamic: ×backoff_factor on overflow, ×growth_factor after growth_interval clean steps;
    static: the scale never changes, overflowing steps are still skipped)."""

    def __init__(self, init_scale=2.0 ** 15, dynamic=True, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000):
        self._scale = _f32(check_finite_scalar(init_scale, "init_scale", low=1e-38))
        if check_finite_scalar(growth_factor, "growth_factor") <= 1.0:
            raise error(f"growth_factor must be > 1, got {growth_factor!r}", CompilationError)
        if not 0.0 < check_finite_scalar(backoff_factor, "backoff_factor", high=1.0) < 1.0:
            raise error(f"backoff_factor must be in (0, 1), got {backoff_factor!r}", CompilationError)
        if not isinstance(growth_interval, int) or isinstance(growth_interval, bool) or growth_interval < 1:
            raise error(f"growth_interval must be an int >= 1, got {growth_interval!r}", CompilationError)
        self.dynamic = bool(dynamic)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval = growth_interval
        self._growth_tracker = 0
        self._reset()

    def _reset(self):
        self._found_inf = False
        self._checked = False
        self._unscaled = set()       # the gradient buffers unscaled since the last update()
        self._stepped = set()        # the optimisers stepped since the last update()

    # -- the scale -------------------------------------------------------------------------------------
    def get_scale(self) -> float:
        return self._scale

    @property
    def growth_tracker(self) -> int:
        """Consecutive steps without inf / NaN since the last change of the scale."""
        return self._growth_tracker

    def scale(self, loss):
        """loss × scale (arrays, scalars, or a list / tuple of them)."""
        if isinstance(loss, (list, tuple)):
            return type(loss)(self.scale(x) for x in loss)
        if isinstance(loss, (int, float)) and not isinstance(loss, bool):
            return float(loss) * self._scale
        if isinstance(loss, np.ndarray) or isinstance(loss, np.generic):
            return loss * np.asarray(self._scale, dtype=np.result_type(loss.dtype, np.float32))
        return loss * self._scale

    # -- gradients -------------------------------------------------------------------------------------
    @staticmethod
    def _key(groups):
        from .optimizer import _address
        return tuple(sorted((_address(f), f.shape[0]) for g in groups for f in g.flats))

    def unscale_(self, grads) -> bool:
        """Divide the gradients by the scale in place (a multiplication by the f32 reciprocal, as torch) and
        record whether any was inf / NaN. Returns that flag. Twice on the same gradients before update()
        is an error (they would be unscaled twice)."""
        groups = grad_groups(grads, "LossScaler.unscale_")
        key = self._key(groups)
        if key in self._unscaled:
            raise error("LossScaler.unscale_: these gradients were already unscaled since the last update()")
        inv = _f32(1.0 / np.float64(self._scale))
        found = scale_(groups, inv)
        self._unscaled.add(key)
        self._found_inf = self._found_inf or found
        self._checked = True
        return found

    def step(self, optimizer, grads) -> bool:
        """`optimizer.step(grads)` unless a gradient of this iteration held inf / NaN; unscales `grads` first
        unless unscale_ already did. Returns whether the step ran."""
        if id(optimizer) in self._stepped:
            raise error("LossScaler.step: step() was already called for this optimiser since the last update()",
                        LaunchError)
        key = self._key(grad_groups(grads, "LossScaler.step"))
        if key not in self._unscaled:
            self.unscale_(grads)
        self._stepped.add(id(optimizer))
        if self._found_inf:
            return False
        optimizer.step(grads)
        return True

    def update(self, new_scale=None):
        """End of an iteration: a new scale if given; else, when dynamic, back off after an overflow or grow
        after growth_interval clean iterations. Needs an unscale_ / step since the last update()."""
        if new_scale is not None:
            self._scale = _f32(check_finite_scalar(new_scale, "new_scale", low=1e-38))
        elif not self._checked:
            raise error("LossScaler.update: no inf checks were recorded since the last update(): call step() "
                        "or unscale_() first")
        elif self.dynamic:
            if self._found_inf:
                self._scale = _f32(self._scale * self.backoff_factor)
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self.growth_interval:
                    self._scale = _f32(self._scale * self.growth_factor)
                    self._growth_tracker = 0
        self._reset()

    # -- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"scale": self._scale, "growth_factor": self.growth_factor, "backoff_factor": self.backoff_factor,
                "growth_interval": self.growth_interval, "growth_tracker": self._growth_tracker,
                "dynamic": self.dynamic}

    def load_state_dict(self, state: dict):
        try:
            self._scale = _f32(state["scale"])
            self.growth_factor, self.backoff_factor = float(state["growth_factor"]), float(state["backoff_factor"])
            self.growth_interval, self._growth_tracker = int(state["growth_interval"]), int(state["growth_tracker"])
            self.dynamic = bool(state.get("dynamic", True))
        except (KeyError, TypeError, ValueError) as e:
            raise error(f"LossScaler.load_state_dict: not a LossScaler state dict ({e})") from None
        self._reset()

    def __repr__(self):
        return (f"<LossScaler scale={self._scale} {'dynamic' if self.dynamic else 'static'} "
                f"tracker={self._growth_tracker}/{self.growth_interval}>")
