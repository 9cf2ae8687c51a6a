// Device discovery, error reporting and memory ownership for cohortrec._cuda.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/device.cuh"
#include "cuda/errors.hpp"
#include "cuda/memory.hpp"

namespace cohortrec::cuda {

// ------------------------------------------------------------------ errors
namespace {

/// "…/csrc/cuda/kmeans.cu" -> "csrc/cuda/kmeans.cu": short, stable names.
const char* short_path(const char* file) {
  const char* p = std::strstr(file, "csrc/");
  return p ? p : file;
}

std::string format_error(cudaError_t err, const char* call, const char* file, int line) {
  std::ostringstream os;
  os << call << " failed at " << short_path(file) << ":" << line << ": " << cudaGetErrorName(err) << ": "
     << cudaGetErrorString(err);
  switch (err) {  // errors that leave the CUDA context unusable
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorHardwareStackError:
    case cudaErrorInvalidPc: os << " (the CUDA context is now unusable; restart the process)"; break;
    default: break;
  }
  return os.str();
}

}  // namespace

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line, std::size_t bytes) {
  // Clear the (non-sticky) error so that later calls do not report it again.
  (void)cudaGetLastError();
  if (err == cudaErrorMemoryAllocation) {
    std::size_t free_b = 0, total_b = 0;
    const bool known = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
    (void)cudaGetLastError();
    std::ostringstream os;
    os << "CUDA out of memory: " << call << " could not allocate " << bytes << " bytes (" << (bytes >> 20)
       << " MiB) at " << short_path(file) << ":" << line;
    if (known) os << "; the device has " << (free_b >> 20) << " MiB free of " << (total_b >> 20) << " MiB";
    throw CudaOutOfMemory(bytes, os.str());
  }
  throw CudaError(err, format_error(err, call, file, line));
}

bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("COHORTREC_CUDA_SYNC");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
  }();
  return on;
}

void check_launch(const char* kernel, cudaStream_t stream, const char* file, int line) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    const std::string call = std::string("launch of ") + kernel;
    throw_cuda_error(err, call.c_str(), file, line);
  }
  if (sync_after_launch()) {
    const cudaError_t e2 = cudaStreamSynchronize(stream);
    if (e2 != cudaSuccess) {
      const std::string call = std::string("kernel ") + kernel;
      throw_cuda_error(e2, call.c_str(), file, line);
    }
  }
}

// ------------------------------------------------------------------ devices
int device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw std::runtime_error(std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(err));
  }
  return n;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

DeviceInfo device_info(int device) {
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  DeviceInfo info;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_memory = prop.totalGlobalMem;
  info.l2_cache_bytes = prop.l2CacheSize;
  return info;
}

int current_device() {
  int d = 0;
  CHECK_CUDA(cudaGetDevice(&d));
  return d;
}

void synchronize_device() { CHECK_CUDA(cudaDeviceSynchronize()); }

// ------------------------------------------------------------------ memory
namespace {

/// Whether the device supports stream-ordered allocation (cached per device).
bool pools_supported(int device) {
  static std::mutex mu;
  static std::vector<int> cache;  // -1 unknown, 0 no, 1 yes
  std::lock_guard<std::mutex> lock(mu);
  if (device < 0) return false;
  if (static_cast<size_t>(device) >= cache.size()) cache.resize(static_cast<size_t>(device) + 1, -1);
  if (cache[device] < 0) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess) {
      (void)cudaGetLastError();
      v = 0;
    }
    if (std::getenv("COHORTREC_CUDA_NO_POOLS")) v = 0;
    cache[device] = v ? 1 : 0;
  }
  return cache[device] == 1;
}

}  // namespace

DeviceBuffer::DeviceBuffer(std::size_t bytes, cudaStream_t stream, Alloc kind) {
  CHECK_CUDA(cudaGetDevice(&device_));
  stream_ = stream;
  if (bytes == 0) return;
  async_ = kind == Alloc::scratch && pools_supported(device_);
  cudaError_t err;
  if (async_) {
    err = cudaMallocAsync(&ptr_, bytes, stream);
    if (err != cudaSuccess) throw_cuda_error(err, "cudaMallocAsync", __FILE__, __LINE__, bytes);
  } else {
    err = cudaMalloc(&ptr_, bytes);
    if (err != cudaSuccess) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__, bytes);
  }
  bytes_ = bytes;
}

void DeviceBuffer::release() noexcept {
  if (ptr_ == nullptr) return;
  // Free on the owning device (Python may drop a result while another
  // device is current).
  int current = -1;
  const bool switch_device =
      cudaGetDevice(&current) == cudaSuccess && current != device_ && cudaSetDevice(device_) == cudaSuccess;
  if (async_) {
    if (cudaFreeAsync(ptr_, stream_) != cudaSuccess) (void)cudaGetLastError();
  } else {
    if (cudaFree(ptr_) != cudaSuccess) (void)cudaGetLastError();
  }
  if (switch_device && cudaSetDevice(current) != cudaSuccess) (void)cudaGetLastError();
  ptr_ = nullptr;
  bytes_ = 0;
}

DeviceGuard::DeviceGuard(int device) {
  CHECK_CUDA(cudaGetDevice(&previous_));
  if (device >= 0 && device != previous_) {
    CHECK_CUDA(cudaSetDevice(device));
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (changed_ && cudaSetDevice(previous_) != cudaSuccess) (void)cudaGetLastError();
}

DeviceBuffer to_device(const void* host, std::size_t bytes, cudaStream_t stream) {
  DeviceBuffer buf(bytes, stream);
  if (bytes) CHECK_CUDA(cudaMemcpyAsync(buf.get(), host, bytes, cudaMemcpyHostToDevice, stream));
  return buf;
}

void to_host(void* host, const void* device, std::size_t bytes, cudaStream_t stream) {
  if (!bytes) return;
  CHECK_CUDA(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
}

void mem_info(std::size_t& free_bytes, std::size_t& total_bytes) {
  CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
}

int sm_count() {
  int dev = 0, n = 0;
  CHECK_CUDA(cudaGetDevice(&dev));
  CHECK_CUDA(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return n;
}

}  // namespace cohortrec::cuda
