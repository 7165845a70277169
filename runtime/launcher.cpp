// tessera._native: launching cubins through the CUDA driver API without CUDA headers or CuPy.
//
// libcuda is dlopen'ed on first use, so the module builds (and imports) on machines without the
// driver; every driver call that is missing or fails becomes a Python exception, never an abort.
// Kernel parameters: each one gets an 8-byte slot (the value in its low bytes, little-endian,
// zero padding) and kernelParams[i] points at slot i. The per-kernel layout is a string of one
// type code per parameter, computed once on the Python side (tessera/runtime/native.py):
//   Q u64 (pointers)   q i64 (index, sizes, strides)   i i32   h i16   b i8 (and bool)
//   f f32   d f64   e f16 (round to nearest even)   B bf16 (upper half of the f32, truncated:
//   the CuPy launcher's rule)
#include <pybind11/pybind11.h>

#include <dlfcn.h>

#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_decls.h"

namespace py = pybind11;
using namespace tsr;

namespace {

struct CudaError : std::runtime_error { using std::runtime_error::runtime_error; };
struct DriverUnavailable : std::runtime_error { using std::runtime_error::runtime_error; };

// ---- the driver, loaded once (all entry points run with the GIL held, so no lock) -------------
struct Driver {
    std::string path = "libcuda.so.1";
    bool tried = false, ok = false;
    std::string reason;
    PFN_cuInit cuInit;
    PFN_cuDeviceGet cuDeviceGet;
    PFN_cuDevicePrimaryCtxRetain cuDevicePrimaryCtxRetain;
    PFN_cuCtxGetCurrent cuCtxGetCurrent;
    PFN_cuCtxSetCurrent cuCtxSetCurrent;
    PFN_cuCtxSynchronize cuCtxSynchronize;
    PFN_cuModuleLoadData cuModuleLoadData;
    PFN_cuModuleGetFunction cuModuleGetFunction;
    PFN_cuModuleUnload cuModuleUnload;
    PFN_cuFuncSetAttribute cuFuncSetAttribute;
    PFN_cuLaunchKernelEx cuLaunchKernelEx;
    PFN_cuTensorMapEncodeTiled cuTensorMapEncodeTiled;
    PFN_cuMemAlloc cuMemAlloc;
    PFN_cuMemFree cuMemFree;
    PFN_cuMemcpyHtoD cuMemcpyHtoD;
    PFN_cuGetErrorName cuGetErrorName;
    PFN_cuGetErrorString cuGetErrorString;
} D;

std::string error_text(CUresult rc) {
    const char *name = nullptr, *text = nullptr;
    if (D.cuGetErrorName) D.cuGetErrorName(rc, &name);
    if (D.cuGetErrorString) D.cuGetErrorString(rc, &text);
    return std::string(name ? name : "CUresult " + std::to_string(rc)) + (text ? std::string(": ") + text : "");
}

bool load_driver() {
    if (D.tried) return D.ok;
    D.tried = true;
    void* lib = dlopen(D.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* e = dlerror();
        D.reason = "cannot load " + D.path + " (the NVIDIA driver): " + (e ? e : "unknown error");
        return false;
    }
    std::string missing;
    auto sym = [&](auto& fn, const char* name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
        if (!fn) missing += std::string(missing.empty() ? "" : ", ") + name;
    };
    sym(D.cuGetErrorName, "cuGetErrorName");
    sym(D.cuGetErrorString, "cuGetErrorString");
    sym(D.cuInit, "cuInit");
    sym(D.cuDeviceGet, "cuDeviceGet");
    sym(D.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    sym(D.cuCtxGetCurrent, "cuCtxGetCurrent");
    sym(D.cuCtxSetCurrent, "cuCtxSetCurrent");
    sym(D.cuCtxSynchronize, "cuCtxSynchronize");
    sym(D.cuModuleLoadData, "cuModuleLoadData");
    sym(D.cuModuleGetFunction, "cuModuleGetFunction");
    sym(D.cuModuleUnload, "cuModuleUnload");
    sym(D.cuFuncSetAttribute, "cuFuncSetAttribute");
    sym(D.cuLaunchKernelEx, "cuLaunchKernelEx");  // CUDA >= 12.0 drivers
    sym(D.cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled");
    sym(D.cuMemAlloc, "cuMemAlloc_v2");  // cuda.h #defines the unversioned names to these
    sym(D.cuMemFree, "cuMemFree_v2");
    sym(D.cuMemcpyHtoD, "cuMemcpyHtoD_v2");
    if (!missing.empty()) {
        D.reason = D.path + " lacks " + missing + " (a CUDA 12+ driver is needed)";
        return false;
    }
    CUresult rc = D.cuInit(0);
    if (rc != CUDA_SUCCESS) {
        D.reason = "cuInit failed: " + error_text(rc);
        return false;
    }
    return D.ok = true;
}

void require_driver() {
    if (!load_driver()) throw DriverUnavailable(D.reason);
}

void check(CUresult rc, const char* what) {
    if (rc != CUDA_SUCCESS) throw CudaError(std::string(what) + " failed: " + error_text(rc));
}

// CuPy and torch work in the device's primary context, so use whatever is current; with nothing
// current (or an explicit device), retain the primary context (never released, as CuPy does).
CUcontext ensure_context(int device) {
    require_driver();
    CUcontext cur = nullptr;
    check(D.cuCtxGetCurrent(&cur), "cuCtxGetCurrent");
    if (cur && device < 0) return cur;
    CUdevice dev;
    check(D.cuDeviceGet(&dev, device < 0 ? 0 : device), "cuDeviceGet");
    CUcontext primary = nullptr;
    check(D.cuDevicePrimaryCtxRetain(&primary, dev), "cuDevicePrimaryCtxRetain");
    if (primary != cur) check(D.cuCtxSetCurrent(primary), "cuCtxSetCurrent");
    return primary;
}

// ---- argument packing (no driver involved) ----------------------------------------------------
uint16_t f64_to_f16(double v) {  // IEEE round-to-nearest-even, as np.float16(v)
    uint64_t x;
    std::memcpy(&x, &v, 8);
    uint16_t sign = uint16_t((x >> 48) & 0x8000);
    int exp = int((x >> 52) & 0x7ff);
    uint64_t man = x & 0xfffffffffffffULL;
    if (exp == 0x7ff) {  // inf, or NaN with its top payload bits kept (numpy's rule)
        if (!man) return sign | 0x7c00;
        uint16_t h = uint16_t(0x7c00 + (man >> 42));
        return sign | (h == 0x7c00 ? 0x7c01 : h);
    }
    if (exp == 0) return sign;  // double subnormals are far below half's range
    int e = exp - 1023 + 15;    // the half-precision biased exponent
    if (e >= 31) return sign | 0x7c00;
    uint64_t sig = man | (1ULL << 52);
    int shift = e >= 1 ? 42 : 43 - e;  // normals keep 11 significant bits, subnormals fewer
    if (shift > 63) return sign;
    uint64_t kept = sig >> shift, rem = sig & ((1ULL << shift) - 1), half = 1ULL << (shift - 1);
    if (rem > half || (rem == half && (kept & 1))) kept++;
    // A carry out of the significand rolls into the exponent (up to inf) by plain addition.
    return sign | uint16_t(e >= 1 ? (uint64_t(e) << 10) + (kept - 0x400) : kept);
}

double as_double(PyObject* o) {
    double d = PyFloat_AsDouble(o);  // floats, ints, NumPy scalars (__float__)
    if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return d;
}

// As NumPy 2 converts a Python value to a fixed-width integer: ints exactly (out of range is an
// OverflowError), floats truncated toward zero.
long long as_int(PyObject* o, long long lo, long long hi, const char* type) {
    long long v;
    if (PyFloat_Check(o)) {
        double d = PyFloat_AS_DOUBLE(o);
        if (!std::isfinite(d) || d <= double(lo) - 1 || d >= double(hi) + 1)
            throw py::value_error(std::string("cannot convert ") + py::repr(o).cast<std::string>() + " to " + type);
        return (long long)d;
    }
    PyObject* idx = PyNumber_Index(o);
    if (!idx) {
        PyErr_Clear();
        return as_int(py::float_(as_double(o)).ptr(), lo, hi, type);
    }
    int overflow = 0;
    v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    if (overflow || v < lo || v > hi)
        throw py::value_error(std::string("Python integer ") + py::repr(o).cast<std::string>() +
                              " out of bounds for " + type);
    return v;
}

uint64_t as_u64(PyObject* o) {
    PyObject* idx = PyNumber_Index(o);
    if (!idx) throw py::error_already_set();
    unsigned long long v = PyLong_AsUnsignedLongLong(idx);
    Py_DECREF(idx);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error("Python integer " + py::repr(o).cast<std::string>() + " out of bounds for u64");
    }
    return v;
}

uint64_t pack_one(char code, PyObject* o) {
    uint64_t slot = 0;
    auto put = [&](auto v) { std::memcpy(&slot, &v, sizeof v); };
    switch (code) {
        case 'Q': return as_u64(o);
        case 'q': put((int64_t)as_int(o, INT64_MIN, INT64_MAX, "i64")); break;
        case 'i': put((int32_t)as_int(o, INT32_MIN, INT32_MAX, "i32")); break;
        case 'h': put((int16_t)as_int(o, INT16_MIN, INT16_MAX, "i16")); break;
        case 'b': put((int8_t)as_int(o, INT8_MIN, INT8_MAX, "i8")); break;
        case 'f': put((float)as_double(o)); break;
        case 'd': put(as_double(o)); break;
        case 'e': put(f64_to_f16(as_double(o))); break;
        case 'B': {
            float f = (float)as_double(o);
            uint32_t bits;
            std::memcpy(&bits, &f, 4);
            put(uint16_t(bits >> 16));
            break;
        }
        default: throw py::value_error(std::string("unknown parameter type code '") + code + "'");
    }
    return slot;
}

void validate_codes(const std::string& codes) {
    for (char c : codes)
        if (!c || !std::strchr("QqihbfdeB", c))
            throw py::value_error(std::string("unknown parameter type code '") + c + "' in '" + codes + "'");
}

std::vector<uint64_t> pack_values(const std::string& codes, py::handle values) {
    py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(values.ptr(), "values must be a sequence"));
    if (!seq) throw py::error_already_set();
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
    if (size_t(n) != codes.size())
        throw py::value_error("expected " + std::to_string(codes.size()) + " parameter values for layout '" + codes +
                              "', got " + std::to_string(n));
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    std::vector<uint64_t> slots(codes.size());
    for (size_t i = 0; i < codes.size(); ++i) slots[i] = pack_one(codes[i], items[i]);
    return slots;
}

std::array<unsigned, 3> dim3(py::handle h, const char* what) {
    std::array<unsigned, 3> d{1, 1, 1};
    if (!PySequence_Check(h.ptr())) {
        d[0] = py::int_(py::reinterpret_borrow<py::object>(h)).cast<unsigned>();  // also NumPy integers
    } else {
        auto t = py::reinterpret_borrow<py::sequence>(h);
        if (t.size() < 1 || t.size() > 3) throw py::value_error(std::string(what) + " must have 1 to 3 dimensions");
        for (size_t i = 0; i < t.size(); ++i) d[i] = py::int_(py::object(t[i])).cast<unsigned>();
    }
    for (unsigned x : d)
        if (x == 0) throw py::value_error(std::string(what) + " dimensions must be >= 1");
    return d;
}

// ---- kernels ----------------------------------------------------------------------------------
struct Kernel {
    std::string name, codes;
    std::array<unsigned, 3> block, cluster;
    unsigned shared_bytes;
    CUcontext ctx = nullptr;
    CUmodule module = nullptr;
    CUfunction fn = nullptr;

    Kernel(py::bytes cubin, std::string name_, std::string codes_, unsigned shared, py::handle block_,
           py::handle cluster_, int device, unsigned static_bytes)
        : name(std::move(name_)), codes(std::move(codes_)), block(dim3(block_, "block")),
          cluster(dim3(cluster_, "cluster")), shared_bytes(shared) {
        validate_codes(codes);
        ctx = ensure_context(device);
        std::string image = cubin;  // the driver reads the image during the call only
        check(D.cuModuleLoadData(&module, image.data()), "cuModuleLoadData");
        CUresult rc = D.cuModuleGetFunction(&fn, module, name.c_str());
        if (rc != CUDA_SUCCESS) {
            D.cuModuleUnload(module);
            module = nullptr;
            check(rc, ("cuModuleGetFunction('" + name + "')").c_str());
        }
        // beyond 48 KiB of shared memory per block (static + dynamic) the dynamic part is opt-in
        if (shared_bytes + static_bytes > 48 * 1024)
            check(D.cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, int(shared_bytes)),
                  "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
        if (cluster[0] * cluster[1] * cluster[2] > 8)  // 8 is the portable cluster size limit
            check(D.cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1),
                  "cuFuncSetAttribute(NON_PORTABLE_CLUSTER_SIZE_ALLOWED)");
    }
    Kernel(const Kernel&) = delete;
    ~Kernel() {
        if (module && D.ok) D.cuModuleUnload(module);  // errors at interpreter exit are harmless
    }

    bool clustered() const { return cluster[0] * cluster[1] * cluster[2] > 1; }

    // Fills cfg (and attr, which cfg points at) for one launch shape.
    void configure(CUlaunchConfig& cfg, CUlaunchAttribute& attr, std::array<unsigned, 3> grid, uintptr_t stream) const {
        for (int i = 0; i < 3; ++i)
            if (grid[i] % cluster[i])
                throw py::value_error("grid dimension " + std::to_string(i) + " (" + std::to_string(grid[i]) +
                                      ") is not a multiple of the cluster dimension " + std::to_string(cluster[i]));
        std::memset(&cfg, 0, sizeof cfg);
        std::memset(&attr, 0, sizeof attr);
        cfg.gridDimX = grid[0], cfg.gridDimY = grid[1], cfg.gridDimZ = grid[2];
        cfg.blockDimX = block[0], cfg.blockDimY = block[1], cfg.blockDimZ = block[2];
        cfg.sharedMemBytes = shared_bytes;
        cfg.hStream = reinterpret_cast<CUstream>(stream);
        if (clustered()) {
            attr.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
            attr.value.clusterDim = {cluster[0], cluster[1], cluster[2]};
            cfg.attrs = &attr;
            cfg.numAttrs = 1;
        }
    }

    void run(const CUlaunchConfig& cfg, void** params) const {
        CUresult rc;
        {
            py::gil_scoped_release nogil;  // a launch can block on a full queue
            CUcontext cur = nullptr;
            D.cuCtxGetCurrent(&cur);
            if (!cur) D.cuCtxSetCurrent(ctx);  // e.g. a thread that has not touched CUDA yet
            rc = D.cuLaunchKernelEx(&cfg, fn, params, nullptr);
        }
        check(rc, ("cuLaunchKernelEx('" + name + "')").c_str());
    }

    void launch_slots(py::handle grid, std::vector<uint64_t>& slots, uintptr_t stream) const {
        std::vector<void*> params(slots.size());
        for (size_t i = 0; i < slots.size(); ++i) params[i] = &slots[i];
        CUlaunchConfig cfg;
        CUlaunchAttribute attr;
        configure(cfg, attr, dim3(grid, "grid"), stream);
        run(cfg, params.data());
    }
};

// A launch with everything fixed: the slots are packed once, so a call is just cuLaunchKernelEx.
struct Prepared {
    py::object owner;  // the Kernel (keeps the module loaded)
    const Kernel* k;
    std::vector<uint64_t> slots;
    std::vector<void*> params;
    std::array<unsigned, 3> grid;
    uintptr_t stream;
    CUlaunchConfig cfg;
    CUlaunchAttribute attr;

    Prepared(py::object owner_, py::handle grid_, std::vector<uint64_t> slots_, uintptr_t stream_)
        : owner(std::move(owner_)), k(&owner.cast<const Kernel&>()), slots(std::move(slots_)),
          params(slots.size()), grid(dim3(grid_, "grid")), stream(stream_) {
        for (size_t i = 0; i < slots.size(); ++i) params[i] = &slots[i];
        k->configure(cfg, attr, grid, stream);
    }
    Prepared(const Prepared&) = delete;  // cfg.attrs and params point into this object

    void call() const { k->run(cfg, const_cast<void**>(params.data())); }
    void set_grid(py::handle g) {
        grid = dim3(g, "grid");
        k->configure(cfg, attr, grid, stream);
    }
    void set_stream(uintptr_t s) {
        stream = s;
        k->configure(cfg, attr, grid, stream);
    }
};

// A small device allocation (TMA descriptors), freed with the object.
struct DeviceBuffer {
    CUdeviceptr ptr = 0;
    size_t size;
    explicit DeviceBuffer(py::bytes data) {
        ensure_context(-1);
        std::string host = data;
        size = host.size();
        check(D.cuMemAlloc(&ptr, size ? size : 1), "cuMemAlloc");  // 256-byte aligned
        CUresult rc = D.cuMemcpyHtoD(ptr, host.data(), size);
        if (rc != CUDA_SUCCESS) {
            D.cuMemFree(ptr);
            ptr = 0;
            check(rc, "cuMemcpyHtoD");
        }
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (ptr && D.ok) D.cuMemFree(ptr);
    }
};

py::bytes encode_tma_2d(uint64_t ptr, uint64_t rows, uint64_t cols, uint64_t row_stride_bytes,
                        const std::string& dtype, uint32_t box_rows, uint32_t box_cols) {
    int type;
    if (dtype == "float16") type = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    else if (dtype == "bfloat16") type = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    else if (dtype == "float32") type = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
    else throw py::value_error("TMA: unsupported dtype " + dtype);
    require_driver();
    CUtensorMap map;  // alignas(128): the driver rejects an unaligned host descriptor
    std::memset(&map, 0, sizeof map);
    const uint64_t dims[2] = {cols, rows}, strides[1] = {row_stride_bytes};  // innermost first
    const uint32_t box[2] = {box_cols, box_rows}, elem_strides[2] = {1, 1};
    CUresult rc = D.cuTensorMapEncodeTiled(&map, type, 2, reinterpret_cast<void*>(ptr), dims, strides, box,
                                           elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                           CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (rc != CUDA_SUCCESS)
        throw CudaError("cuTensorMapEncodeTiled failed for " + std::to_string(rows) + "x" + std::to_string(cols) + " " +
                        dtype + ", row stride " + std::to_string(row_stride_bytes) + " B, box " +
                        std::to_string(box_rows) + "x" + std::to_string(box_cols) + ": " + error_text(rc));
    return py::bytes(reinterpret_cast<const char*>(&map), sizeof map);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "tessera's native CUDA launcher (libcuda loaded at run time; see docs/native-launcher.md)";
    py::register_exception<CudaError>(m, "CudaError", PyExc_RuntimeError);
    py::register_exception<DriverUnavailable>(m, "DriverUnavailable", PyExc_RuntimeError);

    m.def("available", [] {
        bool ok = load_driver();
        return py::make_tuple(ok, ok ? std::string() : D.reason);
    }, "(True, '') if libcuda loaded and cuInit succeeded, else (False, reason).");
    m.def("_use_library", [](std::string path) {
        if (D.tried) throw std::runtime_error("the driver library is already loaded");
        D.path = std::move(path);
    }, "Load the driver from this path instead of libcuda.so.1 (tests); only before first use.");
    m.def("pack", [](const std::string& codes, py::handle values) {
        validate_codes(codes);
        auto slots = pack_values(codes, values);
        return py::bytes(reinterpret_cast<const char*>(slots.data()), slots.size() * 8);
    }, py::arg("codes"), py::arg("values"), "The kernel-parameter slots (8 bytes each) for a layout; no driver needed.");
    m.def("encode_tma_2d", &encode_tma_2d, py::arg("ptr"), py::arg("rows"), py::arg("cols"),
          py::arg("row_stride_bytes"), py::arg("dtype_name"), py::arg("box_rows"), py::arg("box_cols"));
    m.def("synchronize", [] {
        ensure_context(-1);
        CUresult rc;
        {
            py::gil_scoped_release nogil;
            rc = D.cuCtxSynchronize();
        }
        check(rc, "cuCtxSynchronize");
    });

    py::class_<Kernel>(m, "Kernel")
        .def(py::init<py::bytes, std::string, std::string, unsigned, py::handle, py::handle, int, unsigned>(),
             py::arg("cubin"), py::arg("name"), py::arg("codes"), py::arg("shared_bytes"), py::arg("block"),
             py::arg("cluster") = py::make_tuple(1, 1, 1), py::arg("device") = -1, py::arg("static_bytes") = 0)
        .def_readonly("name", &Kernel::name)
        .def_readonly("codes", &Kernel::codes)
        .def_readonly("shared_bytes", &Kernel::shared_bytes)
        .def_property_readonly("block", [](const Kernel& k) { return py::make_tuple(k.block[0], k.block[1], k.block[2]); })
        .def_property_readonly("cluster", [](const Kernel& k) { return py::make_tuple(k.cluster[0], k.cluster[1], k.cluster[2]); })
        .def("launch", [](const Kernel& k, py::handle grid, py::handle values, uintptr_t stream) {
            auto slots = pack_values(k.codes, values);
            k.launch_slots(grid, slots, stream);
        }, py::arg("grid"), py::arg("values"), py::arg("stream") = 0)
        .def("launch_packed", [](const Kernel& k, py::handle grid, py::bytes packed, uintptr_t stream) {
            std::string raw = packed;
            if (raw.size() != k.codes.size() * 8)
                throw py::value_error("packed arguments are " + std::to_string(raw.size()) + " bytes, expected " +
                                      std::to_string(k.codes.size() * 8));
            std::vector<uint64_t> slots(k.codes.size());
            std::memcpy(slots.data(), raw.data(), raw.size());
            k.launch_slots(grid, slots, stream);
        }, py::arg("grid"), py::arg("packed"), py::arg("stream") = 0)
        .def("prepare", [](py::object self, py::handle grid, py::handle values, uintptr_t stream) {
            auto slots = pack_values(self.cast<const Kernel&>().codes, values);
            return std::make_unique<Prepared>(self, grid, std::move(slots), stream);
        }, py::arg("grid"), py::arg("values"), py::arg("stream") = 0);

    py::class_<Prepared>(m, "Prepared", py::dynamic_attr())  // dynamic_attr: Python hangs the arrays on it
        .def("__call__", &Prepared::call)
        .def("set_grid", &Prepared::set_grid)
        .def("set_stream", &Prepared::set_stream)
        .def_property_readonly("grid", [](const Prepared& p) { return py::make_tuple(p.grid[0], p.grid[1], p.grid[2]); })
        .def_readonly("stream", &Prepared::stream)
        .def_property_readonly("packed", [](const Prepared& p) {
            return py::bytes(reinterpret_cast<const char*>(p.slots.data()), p.slots.size() * 8);
        });

    py::class_<DeviceBuffer>(m, "DeviceBuffer")
        .def(py::init<py::bytes>())
        .def_readonly("ptr", &DeviceBuffer::ptr)
        .def_readonly("size", &DeviceBuffer::size);
}
