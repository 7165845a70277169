"""The native launcher (runtime/launcher.cpp → tessera._native, tessera/runtime/native.py).

Without a GPU: the module builds and imports; its argument packing is byte-identical to the CuPy
launcher's; a missing or incomplete libcuda is a clean Python error; the hand-written driver
structs match cuda.h; and the whole launch path (contexts, module loading, smem/cluster
attributes, launch config, parameter pointers, TMA encode + upload, prepared launches) runs against
a fake libcuda compiled here that records what it was given. With a GPU: real kernels."""
import ctypes
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CUDA_H = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "include" / "cuda.h"
CXX = shutil.which(os.environ.get("CXX", "g++"))


def test_extension_is_built_and_importable():
    import tessera._native as n
    from tessera.runtime import native
    assert native.module() is n
    ok, reason = n.available()
    assert isinstance(ok, bool) and isinstance(reason, str) and (ok or reason)
    assert native.available() == ok


def test_importing_native_does_not_import_mlir():
    code = "import sys, tessera, tessera.runtime.native, tessera._native; print('mlir' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


# ---- packing: the same bytes as CudaLauncher.pack ----------------------------------------------
class FakeArray:
    """What as_device_array returns, for a host-side layout (no device memory is touched)."""

    class _Data:
        def __init__(self, ptr):
            self.ptr = ptr

    def __init__(self, ptr, shape, strides_elems, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.itemsize = self.dtype.itemsize
        self.data = self._Data(ptr)
        self.shape = tuple(shape)
        self.strides = tuple(s * self.itemsize for s in strides_elems)


ABI = [
    {"name": "x", "kind": "tensor", "dtype": "f32", "rank": 1},
    {"name": "n", "kind": "scalar", "dtype": "index", "abi": "index"},
    {"name": "w", "kind": "tensor", "dtype": "bf16", "rank": 2},
    {"name": "alpha", "kind": "scalar", "dtype": "f32", "abi": "f32"},
    {"name": "k", "kind": "scalar", "dtype": "i32", "abi": "i32"},
    {"name": "b", "kind": "scalar", "dtype": "bf16", "abi": "bf16"},
    {"name": "h", "kind": "scalar", "dtype": "f16", "abi": "f16"},
    {"name": "flag", "kind": "scalar", "dtype": "bool", "abi": "bool"},
    {"name": "t", "kind": "tensor", "dtype": "f16", "rank": 3},
    {"name": "d", "kind": "scalar", "dtype": "f64", "abi": "f64"},
    {"name": "s", "kind": "scalar", "dtype": "i16", "abi": "i16"},
    {"name": "c", "kind": "scalar", "dtype": "i8", "abi": "i8"},
    {"name": "j", "kind": "scalar", "dtype": "i64", "abi": "i64"},
]
ARGS = [FakeArray(0x7F0000001000, (100,), (1,)), 100,
        FakeArray(0x7F0000100000, (70, 37), (40, 1), "uint16"), 1.25, -7, 3.14159, 0.1, True,
        FakeArray(0x7F0000200010, (2, 13, 6), (1, 12, 156), np.float16), -2.5e-300, -123, 100, -(2 ** 40)]


def _cupy_launcher_bytes(abi, args, monkeypatch):
    """CudaLauncher.pack (which needs no CuPy once as_device_array is stubbed), each NumPy scalar
    in an 8-byte slot."""
    from tessera.runtime import cuda
    monkeypatch.setattr(cuda, "as_device_array", lambda a: a)
    launcher = object.__new__(cuda.CudaLauncher)
    launcher.abi, launcher.tma = abi, []
    packed, _ = launcher.pack(args)
    return b"".join(np.asarray(v).tobytes().ljust(8, b"\0") for v in packed), len(packed)


def test_pack_matches_the_cupy_launcher(monkeypatch):
    import tessera._native as n
    from tessera.runtime import cuda, native
    expected, count = _cupy_launcher_bytes(ABI, ARGS, monkeypatch)
    codes = native.codes_for(ABI)
    assert codes == "QQqqq" + "q" + "QQq" + "q" * 4 + "fiBeb" + "QQq" + "q" * 6 + "dhbq"
    assert len(codes) == count == 3 + 2 + 1 + 3 + 4 + 5 + 3 + 6 + 4
    monkeypatch.setattr(cuda, "as_device_array", lambda a: a)
    vals, keep = native.flat_values(ABI, ARGS)
    assert len(keep) == 3
    got = n.pack(codes, vals)
    assert len(got) == 8 * count
    assert got == expected


def test_pack_float16_and_bfloat16_rounding_match_numpy():
    import tessera._native as n
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 6.1e-5, 6.0e-8, 5.96e-8, 2.98e-8,
               2.9802322387695312e-08, 1e-10, 5e-324, float("inf"), -float("inf"), 1 + 2 ** -11, 1 + 3 * 2 ** -11,
               2049.0, 2051.0, 0.1, 1 / 3]
    vals = special + list(rng.standard_normal(3000) * np.exp(rng.uniform(-20, 12, 3000)))
    with np.errstate(over="ignore", under="ignore"):
        want_h = np.array([np.float16(v) for v in vals]).view(np.uint16)
        want_b = np.array([np.uint16(np.float32(v).view(np.uint32) >> 16) for v in vals], np.uint16)
    got_h = np.frombuffer(n.pack("e" * len(vals), vals), np.uint64).astype(np.uint16)
    got_b = np.frombuffer(n.pack("B" * len(vals), vals), np.uint64).astype(np.uint16)
    np.testing.assert_array_equal(got_h, want_h)
    np.testing.assert_array_equal(got_b, want_b)
    nan = np.frombuffer(n.pack("e", [float("nan")]), np.uint64).astype(np.uint16).view(np.float16)
    assert np.isnan(nan[0])


def test_pack_integer_conversions_follow_numpy():
    import tessera._native as n

    def one(code, v):
        return np.frombuffer(n.pack(code, [v]), np.int64)[0]
    assert one("q", -3.7) == np.int64(-3.7) == -3  # floats truncate toward zero
    assert one("i", np.int64(5)) == 5 and one("b", np.bool_(True)) == 1 and one("q", False) == 0
    assert np.frombuffer(n.pack("Q", [2 ** 64 - 1]), np.uint64)[0] == 2 ** 64 - 1
    assert np.frombuffer(n.pack("f", [np.float32(0.1)]), np.float32)[0] == np.float32(0.1)
    for code, v in [("i", 2 ** 31), ("b", 128), ("h", -(2 ** 15) - 1), ("Q", -1), ("q", 2 ** 63), ("i", float("inf"))]:
        with pytest.raises((OverflowError, ValueError)):
            n.pack(code, [v])
    with pytest.raises(ValueError, match="expected 2 parameter values"):
        n.pack("qq", [1])
    with pytest.raises(ValueError, match="unknown parameter type code"):
        n.pack("qz", [1, 2])
    with pytest.raises(TypeError):
        n.pack("f", ["x"])


# ---- no driver: a clean Python error, never an abort --------------------------------------------
EXPECT = """
def expect(exc, fn, *needles):
    try:
        fn()
    except exc as e:
        assert all(x in str(e) for x in needles), (needles, str(e))
        return str(e)
    raise AssertionError(f"no {exc.__name__} raised")
"""


def _run(code, lib=None):
    pre = "import tessera._native as n\n" + EXPECT
    if lib is not None:
        pre += f"n._use_library({str(lib)!r})\n"
    r = subprocess.run([sys.executable, "-c", pre + textwrap.dedent(code)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r.stdout


def test_without_libcuda_everything_raises_cleanly(tmp_path):
    out = _run("""
        ok, why = n.available()
        assert not ok and "cannot load" in why and "nope" in why, why
        for f in (lambda: n.Kernel(b"x", "k", "q", 0, (32, 1, 1)), lambda: n.DeviceBuffer(b"x" * 128),
                  lambda: n.encode_tma_2d(0, 64, 64, 128, "float16", 64, 64), n.synchronize):
            expect(n.DriverUnavailable, f, "cannot load")
        import tessera.runtime.native as nat
        assert not nat.available() and "cannot load" in nat.why_unavailable()
        from tessera.errors import BackendUnavailable
        print("ok", expect(BackendUnavailable, lambda: nat.NativeLauncher(b"x", "k", [], 0, 4)))
    """, lib=tmp_path / "nope" / "libcuda.so.1")
    assert out.startswith("ok native launcher: cannot load")


def test_make_launcher_knob(monkeypatch, tmp_path):
    out = _run("""
        import os
        import tessera.runtime.native as nat
        from tessera.errors import BackendUnavailable
        os.environ["TESSERA_LAUNCHER"] = "native"
        expect(BackendUnavailable, lambda: nat.make_launcher(b"x", "k", [], 0, 4), "TESSERA_LAUNCHER=native", "nope.so")
        os.environ.pop("TESSERA_LAUNCHER")
        expect(BackendUnavailable, lambda: nat.make_launcher(b"x", "k", [], 0, 4, cluster=(2, 1, 1)), "clusters")
        os.environ["TESSERA_LAUNCHER"] = "cupy"
        expect(BackendUnavailable, lambda: nat.make_launcher(b"x", "k", [], 0, 4, cluster=(2, 1, 1)), "clusters")
        os.environ["TESSERA_LAUNCHER"] = "bogus"
        expect(BackendUnavailable, lambda: nat.make_launcher(b"x", "k", [], 0, 4), "expected 'native' or 'cupy'")
        os.environ.pop("TESSERA_LAUNCHER")  # auto without a driver: the CuPy launcher (needs CuPy)
        try:
            import cupy  # noqa: F401
        except ImportError:
            expect(BackendUnavailable, lambda: nat.make_launcher(b"x", "k", [], 0, 4), "CuPy is not installed")
        print("done")
    """, lib=tmp_path / "nope.so")
    assert out.strip() == "done"
    from tessera import knobs
    monkeypatch.setenv("TESSERA_LAUNCHER", " CuPy ")
    assert knobs.launcher() == "cupy"
    monkeypatch.delenv("TESSERA_LAUNCHER")
    assert knobs.launcher() is None


# ---- a fake libcuda that records what the launcher asks of it -----------------------------------
FAKE_DRIVER = r"""
#include <cstdint>
#include <cstdlib>
#include <cstring>
extern "C" {
typedef struct { unsigned gx, gy, gz, bx, by, bz, smem; void* stream; void* attrs; unsigned nattrs; } Cfg;
typedef struct { int id; char pad[4]; unsigned x, y, z; char rest[52]; } Attr;
int n_params = 0, launches = 0, unloads = 0, frees = 0, loads = 0, retains = 0, sets = 0;
unsigned last_cfg[7]; void* last_stream; int last_nattrs, last_attr_id; unsigned last_cluster[3];
uint64_t last_params[64]; int func_attrs[16][2], n_func_attrs = 0;
uint64_t tma_dims[2], tma_strides[1], tma_global; uint32_t tma_box[2], tma_estr[2]; int tma_args[6];
static thread_local void* current = nullptr;
#define EXPORT __attribute__((visibility("default")))
EXPORT int cuInit(unsigned) {
#ifdef INIT_FAILS
  return 100;
#endif
  return 0; }
EXPORT int cuGetErrorName(int rc, const char** s) {
  *s = rc == 1 ? "CUDA_ERROR_INVALID_VALUE" : rc == 100 ? "CUDA_ERROR_NO_DEVICE" : rc == 200 ? "CUDA_ERROR_INVALID_IMAGE"
     : rc == 500 ? "CUDA_ERROR_NOT_FOUND" : "CUDA_ERROR_UNKNOWN"; return 0; }
EXPORT int cuGetErrorString(int rc, const char** s) { *s = "fake"; return 0; }
EXPORT int cuDeviceGet(int* d, int ordinal) { if (ordinal > 1) return 101; *d = ordinal; return 0; }
EXPORT int cuDevicePrimaryCtxRetain(void** c, int d) { retains++; *c = (void*)(uintptr_t)(0x1000 + d); return 0; }
EXPORT int cuCtxGetCurrent(void** c) { *c = current; return 0; }
EXPORT int cuCtxSetCurrent(void* c) { sets++; current = c; return 0; }
EXPORT int cuCtxSynchronize() { return 0; }
EXPORT int cuModuleLoadData(void** m, const void* image) {
  if (memcmp(image, "FAKECUBIN", 9)) return 200; loads++; *m = (void*)0x2000; return 0; }
EXPORT int cuModuleGetFunction(void** f, void* m, const char* name) {
  if (!strcmp(name, "missing")) return 500; *f = (void*)0x3000; return 0; }
EXPORT int cuModuleUnload(void*) { unloads++; return 0; }
EXPORT int cuFuncSetAttribute(void*, int a, int v) { func_attrs[n_func_attrs][0] = a; func_attrs[n_func_attrs++][1] = v; return 0; }
#ifndef OMIT_LAUNCH
EXPORT int cuLaunchKernelEx(const Cfg* c, void* f, void** params, void** extra) {
  if (!current || f != (void*)0x3000 || extra) return 1;
  memcpy(last_cfg, c, sizeof last_cfg); last_stream = c->stream; last_nattrs = c->nattrs;
  if (c->nattrs) { const Attr* a = (const Attr*)c->attrs; last_attr_id = a->id;
    last_cluster[0] = a->x; last_cluster[1] = a->y; last_cluster[2] = a->z; }
  for (int i = 0; i < n_params; ++i) memcpy(&last_params[i], params[i], 8);
  launches++; return 0; }
#endif
EXPORT int cuTensorMapEncodeTiled(void* map, int dtype, uint32_t rank, void* g, const uint64_t* dims,
    const uint64_t* strides, const uint32_t* box, const uint32_t* estr, int il, int sw, int l2, int oob) {
  if ((uintptr_t)map % 64 || rank != 2 || box[0] > 256 || box[1] > 256) return 1;
  tma_global = (uint64_t)g; memcpy(tma_dims, dims, 16); memcpy(tma_strides, strides, 8); memcpy(tma_box, box, 8);
  memcpy(tma_estr, estr, 8); int a[6] = {dtype, (int)rank, il, sw, l2, oob}; memcpy(tma_args, a, sizeof a);
  for (int i = 0; i < 128; ++i) ((unsigned char*)map)[i] = (unsigned char)(i ^ dtype ^ (uint64_t)g);
  return 0; }
EXPORT int cuMemAlloc_v2(uint64_t* p, size_t n) { *p = (uint64_t)aligned_alloc(256, (n + 255) / 256 * 256); return 0; }
EXPORT int cuMemFree_v2(uint64_t p) { frees++; free((void*)p); return 0; }
EXPORT int cuMemcpyHtoD_v2(uint64_t d, const void* h, size_t n) { memcpy((void*)d, h, n); return 0; }
}
"""


def _fake_driver(tmp_path, *defines):
    if CXX is None:
        pytest.skip("no C++ compiler")
    src = tmp_path / "fake_cuda.cpp"
    src.write_text(FAKE_DRIVER)
    lib = tmp_path / ("libfakecuda%s.so" % "".join(defines))
    subprocess.run([CXX, "-shared", "-fPIC", "-O1", "-std=c++17", *("-D" + d for d in defines), str(src), "-o",
                    str(lib)], check=True)
    return lib


def test_incomplete_or_failing_driver_is_unavailable(tmp_path):
    out = _run("print(n.available())", lib=_fake_driver(tmp_path, "OMIT_LAUNCH"))
    assert "lacks cuLaunchKernelEx" in out and "False" in out
    out = _run("print(n.available())", lib=_fake_driver(tmp_path, "INIT_FAILS"))
    assert "cuInit failed: CUDA_ERROR_NO_DEVICE" in out and "False" in out


PRELUDE = """
import ctypes, numpy as np
import tessera._native as n
LIB = ctypes.CDLL(LIBPATH)  # the same handle the module dlopen'ed
def gi(name, k=1, t=ctypes.c_int):
    v = (t * k).in_dll(LIB, name)
    return list(v) if k > 1 else v[0]
"""


def _run_fake(tmp_path, code):
    lib = _fake_driver(tmp_path)
    return _run(f"LIBPATH = {str(lib)!r}\n" + PRELUDE + textwrap.dedent(code), lib=lib)


def test_kernel_and_prepared_launch_against_a_fake_driver(tmp_path):
    out = _run_fake(tmp_path, """
        assert n.available() == (True, "")
        expect(n.CudaError, lambda: n.Kernel(b"garbage", "k", "q", 0, (32, 1, 1)),
               "cuModuleLoadData failed: CUDA_ERROR_INVALID_IMAGE")
        expect(n.CudaError, lambda: n.Kernel(b"FAKECUBIN", "missing", "q", 0, (32, 1, 1)),
               "cuModuleGetFunction('missing') failed: CUDA_ERROR_NOT_FOUND")
        expect(ValueError, lambda: n.Kernel(b"FAKECUBIN", "k", "qx", 0, (32, 1, 1)), "unknown parameter type code")
        assert gi("unloads") == 1  # the module of the failed lookup was unloaded
        # no context was current: the primary context of device 0 was retained and made current
        assert gi("retains") >= 1 and gi("sets") >= 1
        codes = "QQqqqfiB"
        vals = [0xdead0000, 0xdead0000, 0, 100, 1, 1.5, -3, 2.0]
        k = n.Kernel(b"FAKECUBIN...", "k", codes, 100 * 1024, (128, 1, 1))
        assert gi("func_attrs", 2) == [8, 100 * 1024]  # the >48 KiB dynamic smem opt-in
        assert k.block == (128, 1, 1) and k.cluster == (1, 1, 1) and k.codes == codes
        ctypes.c_int.in_dll(LIB, "n_params").value = len(codes)  # how many parameters the fake copies
        k.launch((4, 2), vals, stream=0x55)
        assert gi("launches") == 1
        assert gi("last_cfg", 7, ctypes.c_uint) == [4, 2, 1, 128, 1, 1, 100 * 1024]
        assert gi("last_nattrs") == 0
        assert ctypes.c_void_p.in_dll(LIB, "last_stream").value == 0x55
        assert bytes((ctypes.c_uint64 * len(codes)).in_dll(LIB, "last_params")) == n.pack(codes, vals)
        k.launch_packed(7, n.pack(codes, vals))
        assert gi("last_cfg", 3, ctypes.c_uint) == [7, 1, 1] and ctypes.c_void_p.in_dll(LIB, "last_stream").value is None
        p = k.prepare((3,), vals, 0x77)
        vals[3] = 999  # packed once: later changes to the list do not matter
        before = gi("launches")
        for _ in range(5):
            p()
        assert gi("launches") == before + 5 and p.packed == n.pack(codes, [0xdead0000, 0xdead0000, 0, 100, 1, 1.5, -3, 2.0])
        assert bytes((ctypes.c_uint64 * len(codes)).in_dll(LIB, "last_params")) == p.packed
        p.set_grid((5, 6, 7)); p()
        assert gi("last_cfg", 3, ctypes.c_uint) == [5, 6, 7] and p.grid == (5, 6, 7) and p.stream == 0x77
        p.set_stream(0x99); p()
        assert ctypes.c_void_p.in_dll(LIB, "last_stream").value == 0x99 and gi("last_cfg", 3, ctypes.c_uint) == [5, 6, 7]
        p.keep = ["anything"]  # Python may hang objects on it
        # thread-block clusters: the attribute, the non-portable opt-in above 8, grid divisibility
        kc = n.Kernel(b"FAKECUBIN", "k", codes, 0, (128, 1, 1), cluster=(16, 1, 1))
        assert gi("func_attrs", 4)[2:] == [14, 1]
        kc.launch((32, 2), vals)
        assert gi("last_nattrs") == 1 and gi("last_attr_id") == 4 and gi("last_cluster", 3, ctypes.c_uint) == [16, 1, 1]
        for bad in [lambda: kc.launch((24,), vals), lambda: k.launch((0,), vals), lambda: k.launch((1,), vals[:-1]),
                    lambda: k.launch_packed((1,), b"x" * 8)]:
            print("rejected:", expect(ValueError, bad))
        del k, p, kc
        import gc; gc.collect()
        assert gi("unloads") == 3
        # from a thread with no current context, the kernel's context is made current
        import threading
        k2 = n.Kernel(b"FAKECUBIN", "k", "q", 0, (32, 1, 1))
        ctypes.c_int.in_dll(LIB, "n_params").value = 1
        t = threading.Thread(target=lambda: k2.launch(1, [5])); t.start(); t.join()
        assert gi("last_params", 2, ctypes.c_uint64)[0] == 5
        print("done")
    """)
    assert out.strip().endswith("done")
    assert out.count("rejected:") == 4 and "not a multiple of the cluster dimension 16" in out


def test_native_launcher_with_tma_against_a_fake_driver(tmp_path):
    out = _run_fake(tmp_path, """
        import tessera.runtime.cuda as cuda
        from tessera.runtime import native
        from tessera.errors import LaunchError
        class A:
            class D:
                def __init__(self, p): self.ptr = p
            def __init__(self, ptr, shape, dtype):
                self.dtype = np.dtype(dtype); self.itemsize = self.dtype.itemsize; self.data = A.D(ptr)
                self.shape = shape; self.strides = (shape[1] * self.itemsize, self.itemsize)
        cuda.as_device_array = lambda a: a  # host-side stand-ins for device arrays
        abi = [{"name": "a", "kind": "tensor", "rank": 2}, {"name": "b", "kind": "tensor", "rank": 2},
               {"name": "c", "kind": "tensor", "rank": 2}]
        L = native.NativeLauncher(b"FAKECUBIN", "matmul", abi, 0, 4, tma=[[0, 128, 64], [1, 64, 64]])
        assert L.codes == "QQqqqqq" * 3 + "QQ" and L.block == (128, 1, 1)
        ctypes.c_int.in_dll(LIB, "n_params").value = len(L.codes)
        a, b, c = A(0x10000, (200, 200), "uint16"), A(0x90000, (200, 264), "uint16"), A(0x200000, (200, 264), "float32")
        L.launch((2, 3), [a, b, c])
        params = list((ctypes.c_uint64 * len(L.codes)).in_dll(LIB, "last_params"))
        assert params[:7] == [0x10000, 0x10000, 0, 200, 200, 200, 1] and params[14:21] == [0x200000, 0x200000, 0, 200, 264, 264, 1]
        # the last descriptor encoded is b's: dims/strides innermost first, 128B swizzle, bf16
        assert gi("tma_dims", 2, ctypes.c_uint64) == [264, 200] and gi("tma_strides", 1, ctypes.c_uint64) == 528
        assert gi("tma_box", 2, ctypes.c_uint32) == [64, 64] and gi("tma_estr", 2, ctypes.c_uint32) == [1, 1]
        assert gi("tma_args", 6) == [9, 2, 0, 3, 0, 0]
        da, db = params[21], params[22]
        assert da % 256 == 0 and db % 256 == 0 and da != db
        assert ctypes.string_at(db, 128) == n.encode_tma_2d(0x90000, 200, 264, 528, "bfloat16", 64, 64)
        L.launch((2, 3), [a, b, c])
        assert list((ctypes.c_uint64 * len(L.codes)).in_dll(LIB, "last_params"))[21:] == [da, db]  # cached
        p = L.prepare((2, 3), [a, b, c])
        p(); assert p.keep == [a, b, c]
        expect(LaunchError, lambda: L.launch((1,), [A(0x10008, (200, 200), "uint16"), b, c]), "TMA", "'a'")
        expect(n.CudaError, lambda: n.encode_tma_2d(0, 10, 10, 512, "float16", 512, 64),
               "cuTensorMapEncodeTiled failed", "CUDA_ERROR_INVALID_VALUE")
        expect(ValueError, lambda: n.encode_tma_2d(0, 10, 10, 512, "int8", 64, 64), "unsupported dtype")
        expect(LaunchError, lambda: L.launch((1,), [a, b]), "takes 3 arguments")
        expect(LaunchError, lambda: L.launch((1,), [a, b, A(0x200000, (200, 264, 1), "float32")]), "expected rank 2")
        expect(LaunchError, lambda: L.launch((0,), [a, b, c]), "launching kernel 'matmul'", ">= 1")
        import os
        os.environ.pop("TESSERA_LAUNCHER", None)
        assert isinstance(native.make_launcher(b"FAKECUBIN", "k", abi, 0, 4), native.NativeLauncher)
        print("done")
    """)
    assert out.strip() == "done"


# ---- the hand-written structs are the driver's ---------------------------------------------------
@pytest.mark.skipif(not CUDA_H.exists() or CXX is None, reason="needs cuda.h and a C++ compiler")
def test_declared_layouts_match_cuda_h(tmp_path):
    src = tmp_path / "layout.cpp"
    src.write_text(textwrap.dedent("""
        #include <cstddef>
        #include <cuda.h>
        #include "cuda_decls.h"
        #define SAME_LAYOUT(T) static_assert(sizeof(tsr::T) == sizeof(::T) && alignof(tsr::T) == alignof(::T), #T)
        #define SAME_OFFSET(T, f) static_assert(offsetof(tsr::T, f) == offsetof(::T, f), #T "." #f)
        SAME_LAYOUT(CUlaunchConfig); SAME_LAYOUT(CUlaunchAttribute); SAME_LAYOUT(CUlaunchAttributeValue);
        SAME_LAYOUT(CUtensorMap);
        SAME_OFFSET(CUlaunchConfig, gridDimX); SAME_OFFSET(CUlaunchConfig, gridDimY); SAME_OFFSET(CUlaunchConfig, gridDimZ);
        SAME_OFFSET(CUlaunchConfig, blockDimX); SAME_OFFSET(CUlaunchConfig, blockDimY); SAME_OFFSET(CUlaunchConfig, blockDimZ);
        SAME_OFFSET(CUlaunchConfig, sharedMemBytes); SAME_OFFSET(CUlaunchConfig, hStream);
        SAME_OFFSET(CUlaunchConfig, attrs); SAME_OFFSET(CUlaunchConfig, numAttrs);
        SAME_OFFSET(CUlaunchAttribute, id); SAME_OFFSET(CUlaunchAttribute, value);
        static_assert(offsetof(tsr::CUlaunchAttributeValue, clusterDim) == offsetof(::CUlaunchAttributeValue, clusterDim), "");
        static_assert(sizeof(tsr::CUlaunchAttributeValue::clusterDim) == sizeof(::CUlaunchAttributeValue::clusterDim), "");
        static_assert(sizeof(tsr::CUresult) == sizeof(::CUresult) && sizeof(tsr::CUdevice) == sizeof(::CUdevice), "");
        static_assert(sizeof(tsr::CUdeviceptr) == sizeof(::CUdeviceptr) && sizeof(::CUlaunchAttributeID) == sizeof(int), "");
        static_assert(sizeof(::CUtensorMapDataType) == sizeof(int) && sizeof(::CUfunction_attribute) == sizeof(int), "");
        #define SAME_VALUE(e) static_assert(int(tsr::e) == int(::e), #e)
        SAME_VALUE(CUDA_SUCCESS); SAME_VALUE(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
        SAME_VALUE(CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED); SAME_VALUE(CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
        SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_FLOAT16); SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_FLOAT32);
        SAME_VALUE(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16); SAME_VALUE(CU_TENSOR_MAP_INTERLEAVE_NONE);
        SAME_VALUE(CU_TENSOR_MAP_SWIZZLE_128B); SAME_VALUE(CU_TENSOR_MAP_L2_PROMOTION_NONE);
        SAME_VALUE(CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
        int main() { return 0; }
    """))
    r = subprocess.run([CXX, "-std=c++17", "-fsyntax-only", f"-I{CUDA_H.parent}", f"-I{ROOT / 'runtime'}", str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---- the codes agree with the kernels' real parameter lists -----------------------------------------
_WIDTH = {"Q": 64, "q": 64, "d": 64, "f": 32, "i": 32, "h": 16, "e": 16, "B": 16, "b": 8}


def _have_ptxas():
    from test_nvidia_compile import _have_ptxas
    return _have_ptxas()


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found")
@pytest.mark.parametrize("name", ["scalars", "casts", "blocks", "loops", "matmul_bf16", "sm90_tma_matmul"])
def test_codes_match_the_ptx_entry_parameters(name):
    import re

    import tessera as ts
    from tessera.runtime.native import codes_for
    from test_nvidia_compile import SUITE, bf16, z
    if name == "sm90_tma_matmul":
        from tessera.kernels import matmul
        kernel, args, ce = matmul, (z((200, 200), bf16), z((200, 264), bf16), z((200, 264))), dict(BM=128, BN=128, BK=64)
    else:
        kernel, make, ce = SUITE[name]
        args = make()
    ck = ts.compile(kernel, *args, target="sm_90a", **ce)
    tma = ck.metadata.get("tma") or ()
    assert (name == "sm90_tma_matmul") == bool(tma)
    entry = re.search(r"\.entry\s+\w+\s*\((.*?)\)", ck.asm["ptx"], re.S).group(1)
    ptx_widths = [int(re.sub(r"\D", "", t)) for t in re.findall(r"\.param\s+\.(\w+)", entry)]
    assert [_WIDTH[c] for c in codes_for(ck.metadata["args"], len(tma))] == ptx_widths


# ---- the in-place build (GPU hosts with another Python) -------------------------------------------
@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_in_place_build_command(tmp_path, monkeypatch):
    from tessera.runtime import native
    assert Path(native._pybind11_include(), "pybind11", "pybind11.h").exists()
    # build into a scratch package copy so the installed module is not replaced under the test run
    pkg = tmp_path / "tessera" / "runtime"
    pkg.mkdir(parents=True)
    shutil.copytree(ROOT / "runtime", tmp_path / "runtime")
    fake = pkg / "native.py"
    fake.write_text("")
    monkeypatch.setattr(native, "__file__", str(fake))
    out = native.build(verbose=False)
    assert Path(out).parent == tmp_path / "tessera" and Path(out).name.startswith("_native")
    r = subprocess.run([sys.executable, "-c", "import _native; print(_native.pack('i', [7]).hex())"],
                       cwd=tmp_path / "tessera", capture_output=True, text=True)
    assert r.stdout.strip() == "0700000000000000", r.stderr


# ---- on a GPU ------------------------------------------------------------------------------------
def _gpu_launcher(ck, **kw):
    from tessera.runtime.native import NativeLauncher
    m = ck.metadata
    return NativeLauncher(ck.asm["cubin"], ck.name, m["args"], m.get("shared_bytes", 0), m.get("num_warps", 4),
                          m.get("tma", ()), **kw)


def _arch():
    import cupy as cp
    return "sm_90a" if cp.cuda.Device().compute_capability >= "90" else "sm_80"


@pytest.mark.gpu
def test_native_launch_and_prepare_on_gpu():
    import cupy as cp

    import tessera as ts
    from tessera.runtime import native
    import test_elementwise as ew
    if not native.available():
        pytest.skip(native.why_unavailable())
    n = 1000
    x, y = np.arange(n, dtype=np.float32), np.ones(n, np.float32)
    ck = ts.compile(ew.vector_add, x, y, np.zeros(n, np.float32), target=_arch())
    L = _gpu_launcher(ck)
    dx, dy, out = cp.asarray(x), cp.asarray(y), cp.zeros(n, np.float32)
    grid = (-(-n // 64),)
    L.launch(grid, [dx, dy, out])
    cp.testing.assert_array_equal(out, dx + dy)
    out[:] = 0
    p = L.prepare(grid, [dx, dy, out])
    p()
    cp.testing.assert_array_equal(out, dx + dy)
    dx += 1  # same buffers, new contents: the prepared launch sees them
    p()
    cp.testing.assert_array_equal(out, dx + dy)
    # the launch overhead itself is measured by benchmarks/launch_overhead.py, not by a timed test


@pytest.mark.gpu
def test_native_scalars_and_clusters_on_gpu():
    import cupy as cp

    import tessera as ts
    from tessera.runtime import native
    import test_elementwise as ew
    if not native.available():
        pytest.skip(native.why_unavailable())
    x = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    ck = ts.compile(ew.scalars, x, x, 1.5, 3, 7, True, target=_arch())
    L = _gpu_launcher(ck)
    for flag in (True, False):
        out = cp.zeros(16, np.float32)
        L.launch((1,), [cp.asarray(x), out, 1.5, 3, 7, flag])
        np.testing.assert_allclose(cp.asnumpy(out), x * 1.5 + 3 if flag else x - 7, rtol=1e-6)
    if _arch() == "sm_90a":  # any kernel may run in clusters on sm_90
        ck = ts.compile(ew.vector_add, x, x, x, target="sm_90a")
        out = cp.zeros(16, np.float32)
        _gpu_launcher(ck, cluster=(2, 1, 1)).launch((2,), [cp.asarray(x), cp.asarray(x), out])
        np.testing.assert_allclose(cp.asnumpy(out), 2 * x)


@pytest.mark.gpu
def test_native_tma_matmul_on_gpu():
    import cupy as cp
    import ml_dtypes

    import tessera as ts
    from tessera.kernels import matmul
    from tessera.runtime import native
    if not native.available() or _arch() != "sm_90a":
        pytest.skip("needs the native launcher on sm_90")
    bf16 = ml_dtypes.bfloat16
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 200)).astype(bf16)
    b = rng.standard_normal((200, 264)).astype(bf16)
    ck = ts.compile(matmul, a, b, np.zeros((200, 264), np.float32), target="sm_90a", BM=128, BN=128, BK=64)
    assert ck.metadata["tma"]
    L = _gpu_launcher(ck)
    c = cp.zeros((200, 264), np.float32)
    args = [cp.asarray(a.view(np.uint16)), cp.asarray(b.view(np.uint16)), c]
    p = L.prepare((2, 3), args)
    p()
    np.testing.assert_allclose(cp.asnumpy(c), a.astype(np.float32) @ b.astype(np.float32), rtol=1e-3, atol=1e-3)
