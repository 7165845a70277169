"""Launching a compiled kernel's PTX in the emulator with NumPy arguments, through the real ABI.

The arguments are flattened by the native launcher's own `flat_values` (a rank-r tensor is
allocated pointer, aligned pointer, offset, r sizes, r strides in elements; scalars by value) and
converted with its per-parameter type codes (`codes_for`), then checked against the PTX `.entry`
parameter list (count and sizes): an ABI mismatch between launcher and kernel is an error here just
as it would corrupt a GPU launch. TMA descriptors come from the same `tma_encode_inputs` the native
launcher encodes with. Each tensor occupies the bytes its (possibly strided, negative-stride) view
spans, so the kernel sees the caller's real strides; results are copied back into the arrays.
"""
from __future__ import annotations

import ctypes
import hashlib
import struct
import time

import numpy as np

from ...errors import EmulatorError, LaunchError, SanitizerError
from ..native import codes_for, flat_values, tma_encode_inputs
from ..persistent import launch_shape, resident_ctas
from ..prepared import CUDA_GRID_LIMITS, check_grid, check_writable, grid3
from .machine import Machine
from .memory import GlobalMemory
from .ops.hopper import TmaDescriptor
from .ptx import parse_ptx
from .report import EmulationReport
from ..tensor_list import TableCache, check_elements

_CODE_SIZE = {"Q": 8, "q": 8, "i": 4, "I": 4, "h": 2, "b": 1, "f": 4, "d": 8, "e": 2, "B": 2}
_PARSED = {}


class EmuArray:
    """A NumPy array placed in the emulator's device memory, seen as a device array (data.ptr,
    shape, byte strides, itemsize, dtype) by the launcher's packing code."""

    class _Data:
        def __init__(self, ptr):
            self.ptr = ptr

    def __init__(self, host, ptr):
        self.host = host
        self.data = self._Data(ptr)
        self.shape, self.strides = tuple(host.shape), tuple(host.strides)
        self.itemsize, self.dtype, self.ndim = host.itemsize, host.dtype, host.ndim
        self.nbytes = host.nbytes


def _span(arr):
    if arr.size == 0:
        return 0, 0
    lo = sum(min(0, (n - 1) * s) for n, s in zip(arr.shape, arr.strides))
    hi = sum(max(0, (n - 1) * s) for n, s in zip(arr.shape, arr.strides)) + arr.itemsize
    return lo, hi


def _place(gmem, arr, name):
    """The bytes the view spans, at a fake address with the host view's alignment (mod 256): a view into
    the middle of an array is as misaligned in the emulator as it would be on the device."""
    lo, hi = _span(arr)
    if hi > lo:
        raw = np.ctypeslib.as_array((ctypes.c_ubyte * (hi - lo)).from_address(arr.ctypes.data + lo)).copy()
    else:
        raw = np.zeros(0, np.uint8)
    lead = (arr.ctypes.data + lo) % 256
    return EmuArray(arr, gmem.alloc(raw, name, lead) - lo)


def _read_back(gmem, ea):
    arr = ea.host
    lo, hi = _span(arr)
    if hi <= lo:
        return
    b, off = gmem.decode(ea.data.ptr + lo)      # (the lead before the data is part of `off`)
    raw = gmem.buffers[b][off:off + (hi - lo)]
    view = np.ndarray(arr.shape, arr.dtype, buffer=raw, offset=-lo, strides=arr.strides)
    if not arr.flags.writeable:
        if view.tobytes() != arr.tobytes():
            raise LaunchError("the kernel wrote to a read-only array (pass a writable NumPy array as the output)")
        return
    np.copyto(arr, view)


def _bits(value, code):
    if code in "Qq":
        return int(value) & (2 ** 64 - 1)
    if code in "iI":
        return int(value) & (2 ** 32 - 1)
    if code == "h":
        return int(value) & 0xFFFF
    if code == "b":
        return int(value) & 0xFF
    if code == "f":
        return struct.unpack("<I", struct.pack("<f", float(value)))[0]
    if code == "d":
        return struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    if code == "e":
        return int(np.float16(value).view(np.uint16))
    if code == "B":
        return int(np.float32(value).view(np.uint32) >> 16)
    raise EmulatorError(f"no packing for parameter code {code}")


def parsed(ptx, name=None):
    key = hashlib.sha1(ptx.encode()).hexdigest()
    k = _PARSED.get(key)
    if k is None:
        k = parse_ptx(ptx, name)
        if len(_PARSED) > 256:
            _PARSED.clear()
        _PARSED[key] = k
    return k


def run_ptx(ptx, name, metadata, arch, grid, args, *, checks=True, max_steps=20_000_000, counters=True,
            raise_on_findings=True):
    """Run one launch of `ptx` (the entry `name`) with the ABI described by `metadata` (the
    kernel metadata of a compiled kernel or an AOT manifest) on runtime arguments `args`."""
    kernel = parsed(ptx, name)
    abi = metadata["args"]
    check_writable(metadata, args)
    if metadata.get("persistent") and 0 not in grid3(grid):   # the caller's grid becomes trailing arguments
        grid, args = launch_shape(grid3(grid), args, resident_ctas(emulated=True))
    if len(args) != len(abi):
        raise LaunchError(f"kernel '{name}' takes {len(abi)} runtime arguments, got {len(args)}")
    gmem = GlobalMemory()

    tensors = []
    emu_args = []
    def place(spec, a, name):
        if not isinstance(a, np.ndarray):
            raise LaunchError(f"argument '{name}': the emulator runs kernels on NumPy arrays, got "
                              f"{type(a).__name__}")
        ea = _place(gmem, a, name)
        tensors.append((spec, ea))
        return ea

    for spec, a in zip(abi, args):
        if spec["kind"] == "tensor":
            emu_args.append(place(spec, a, spec["name"]))
        elif spec["kind"] == "tensor_list":
            check_elements(spec, a)
            emu_args.append([place(spec, x, f"{spec['name']}[{i}]") for i, x in enumerate(a)])
        else:
            emu_args.append(a)
    tables = TableCache(lambda host: _place(gmem, host, "tensor list table"))
    vals, keep = flat_values(abi, emu_args, as_device_array=lambda a: a, tables=tables)
    tmaps = {}
    tma = [tuple(int(x) for x in t) for t in metadata.get("tma", ())]
    for arg, box_rows, box_cols in tma:
        if abi[arg]["kind"] != "tensor":
            raise LaunchError(f"TMA descriptor for a non-tensor argument {abi[arg]['name']}")
        d = emu_args[arg]
        ptr, rows, cols, row_stride, dtype, br, bc = tma_encode_inputs(abi, arg, d, box_rows, box_cols)
        addr = gmem.alloc(np.zeros(128, np.uint8), f"tensormap({abi[arg]['name']})")
        tmaps[addr] = TmaDescriptor(ptr, (cols, rows), row_stride, (bc, br), d.itemsize, 128, abi[arg]["name"])
        vals.append(addr)
    codes = codes_for(abi, len(tma))
    if len(codes) != len(kernel.params) or len(vals) != len(codes):
        raise EmulatorError(f"ABI mismatch: the launcher packs {len(codes)} parameters for '{name}', its PTX "
                            f"declares {len(kernel.params)}")
    params = []
    for (pname, size, _), code, v in zip(kernel.params, codes, vals):
        if _CODE_SIZE[code] != size:
            raise EmulatorError(f"ABI mismatch: parameter {pname} of '{name}' is {size} bytes in the PTX, the "
                                f"launcher packs {_CODE_SIZE[code]} (code {code!r})")
        params.append(_bits(v, code))
    g = check_grid(grid3(grid), CUDA_GRID_LIMITS)   # as the hardware would refuse it
    block = (int(metadata.get("num_warps", 4)) * 32, 1, 1)
    report = EmulationReport(kernel.name, arch, g, block, checks)
    if 0 in g:
        return report
    machine = Machine(kernel, gmem, g, block, params, dynamic_shared=int(metadata.get("shared_bytes", 0)),
                      tmaps=tmaps, checks=checks, report=report, max_steps=max_steps, arch=arch, counters=counters)
    t0 = time.perf_counter()
    try:
        machine.run()
    finally:
        report.seconds = time.perf_counter() - t0
        report.steps = machine.steps
    for _, ea in tensors:
        _read_back(gmem, ea)
    del keep
    if report.findings and checks and raise_on_findings:
        raise SanitizerError(report.findings, report)
    return report


def emulate(ck, grid, *args, checks=True, ptx=None, max_steps=20_000_000, counters=True, **kwargs):
    """`ck.emulate(grid, *numpy_args, checks=True, ptx=None)`: run a compiled NVIDIA kernel's PTX
    (or `ptx`, any text for the same entry) in the emulator; outputs land in the NumPy arrays.
    Returns an EmulationReport; with checks on, findings raise `ts.SanitizerError`."""
    if "ptx" not in ck.asm:
        raise EmulatorError(f"kernel '{ck.name}' is compiled for '{ck.target}', which has no PTX: compile it "
                            "with target='sm_80' or 'sm_90a'")
    kernel = getattr(ck, "_kernel", None)
    if kernel is not None:
        values, runtime_args = kernel.bind_compiled(ck, args, kwargs)
        grid = kernel.resolve_grid(grid, ck, values)
    else:
        if kwargs:
            raise LaunchError(f"unexpected keyword arguments {sorted(kwargs)}")
        runtime_args = list(args)
    return run_ptx(ptx if ptx is not None else ck.asm["ptx"], ck.name, ck.metadata, ck.target, grid, runtime_args,
                   checks=checks, max_steps=max_steps, counters=counters)


class EmulatorLauncher:
    """The launcher of TESSERA_BACKEND=emu: `launch(grid, args)` runs the PTX with checks on."""

    def __init__(self, ck):
        self.ck = ck
        self.last_report = None

    def launch(self, grid, args):
        self.last_report = run_ptx(self.ck.asm["ptx"], self.ck.name, self.ck.metadata, self.ck.target, grid,
                                   list(args))

    def prepare(self, grid, args):
        from ..prepared import PyPrepared
        return PyPrepared(lambda g: self.launch(g, args), tuple(grid), args)
