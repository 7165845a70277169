"""What every family shares."""
from __future__ import annotations

from ....errors import EmulatorError


def unsupported(ins, why=""):
    """The error for an opcode form the emulator does not implement, naming it and its PTX line."""
    return EmulatorError(f"the emulator does not implement the form `{ins.form}` (PTX line {ins.line}: "
                         f"`{ins.text}`){': ' + why if why else ''}")


def whole_warps(M, em):
    """Every warp either fully active or fully inactive in `em`."""
    if em is None:
        return True
    w = em.reshape(-1, 32) if M.n % 32 == 0 else em[None, :]
    return bool((w.all(1) | ~w.any(1)).all())
