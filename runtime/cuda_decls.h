// The handful of CUDA driver API declarations the native launcher needs, written out by hand so
// the module builds on machines without CUDA headers (libcuda is dlopen'ed at run time).
// Everything lives in namespace tsr so tests/test_native_launcher.py can include this file next to
// the real <cuda.h> and static_assert that every layout and enum value below matches the driver's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tsr {

typedef int CUresult;  // an enum in cuda.h; int-sized and passed as int on every ABI we target
typedef int CUdevice;
typedef struct CUctx_st* CUcontext;
typedef struct CUmod_st* CUmodule;
typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;
typedef unsigned long long CUdeviceptr;  // CUdeviceptr_v2

enum : int {
    CUDA_SUCCESS = 0,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14,  // (12 is REQUIRED_CLUSTER_HEIGHT)
    CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4,
    CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6,
    CU_TENSOR_MAP_DATA_TYPE_FLOAT32 = 7,
    CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9,
    CU_TENSOR_MAP_INTERLEAVE_NONE = 0,
    CU_TENSOR_MAP_SWIZZLE_128B = 3,
    CU_TENSOR_MAP_L2_PROMOTION_NONE = 0,
    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0,
};

// CUlaunchAttributeValue is a 64-byte union whose largest-aligned members are pointers, hence
// alignas(8); only the cluster dimension is used here.
union alignas(8) CUlaunchAttributeValue {
    char pad[64];
    struct {
        unsigned int x, y, z;
    } clusterDim;
};

struct CUlaunchAttribute {
    int id;  // CUlaunchAttributeID
    char pad[8 - sizeof(int)];
    CUlaunchAttributeValue value;
};

struct CUlaunchConfig {
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    CUstream hStream;
    CUlaunchAttribute* attrs;
    unsigned int numAttrs;
};

struct CUtensorMap {
    alignas(128) uint64_t opaque[16];
};

// Signatures as in cuda.h; enum parameters are declared int (same size and calling convention).
typedef CUresult (*PFN_cuInit)(unsigned int);
typedef CUresult (*PFN_cuDeviceGet)(CUdevice*, int);
typedef CUresult (*PFN_cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
typedef CUresult (*PFN_cuCtxGetCurrent)(CUcontext*);
typedef CUresult (*PFN_cuCtxSetCurrent)(CUcontext);
typedef CUresult (*PFN_cuCtxSynchronize)(void);
typedef CUresult (*PFN_cuModuleLoadData)(CUmodule*, const void*);
typedef CUresult (*PFN_cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
typedef CUresult (*PFN_cuModuleUnload)(CUmodule);
typedef CUresult (*PFN_cuFuncSetAttribute)(CUfunction, int, int);
typedef CUresult (*PFN_cuLaunchKernelEx)(const CUlaunchConfig*, CUfunction, void**, void**);
typedef CUresult (*PFN_cuTensorMapEncodeTiled)(CUtensorMap*, int, uint32_t, void*, const uint64_t*,
                                               const uint64_t*, const uint32_t*, const uint32_t*,
                                               int, int, int, int);
typedef CUresult (*PFN_cuMemAlloc)(CUdeviceptr*, size_t);                 // cuMemAlloc_v2
typedef CUresult (*PFN_cuMemFree)(CUdeviceptr);                           // cuMemFree_v2
typedef CUresult (*PFN_cuMemcpyHtoD)(CUdeviceptr, const void*, size_t);   // cuMemcpyHtoD_v2
typedef CUresult (*PFN_cuGetErrorName)(CUresult, const char**);
typedef CUresult (*PFN_cuGetErrorString)(CUresult, const char**);

}  // namespace tsr
