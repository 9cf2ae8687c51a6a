#pragma once
// Device memory ownership for the CUDA module (plain C++, no device code).
//
// DeviceBuffer is a move-only RAII owner of one device allocation.
//  * Scratch buffers are stream-ordered (cudaMallocAsync / cudaFreeAsync on
//    the stream of the op) where the device supports memory pools, so that a
//    free followed by the next op's allocation needs no synchronisation.
//  * Results handed to Python (`Alloc::persistent`) use cudaMalloc/cudaFree:
//    they may outlive the caller's stream.
// A failed allocation throws CudaOutOfMemory naming the size.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "cuda/errors.hpp"

namespace cohortrec::cuda {

enum class Alloc { scratch, persistent };

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(std::size_t bytes, cudaStream_t stream, Alloc kind = Alloc::scratch);
  ~DeviceBuffer() { release(); }

  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { steal(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      steal(o);
    }
    return *this;
  }

  void* get() const noexcept { return ptr_; }
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const noexcept { return bytes_; }
  int device() const noexcept { return device_; }
  /// Frees now (stream-ordered for scratch buffers).
  void release() noexcept;

 private:
  void steal(DeviceBuffer& o) noexcept {
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    stream_ = o.stream_;
    async_ = o.async_;
    device_ = o.device_;
  }
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  bool async_ = false;
  int device_ = 0;
};

/// Typed convenience: a buffer of `n` elements of T.
template <typename T>
DeviceBuffer device_alloc(std::size_t n, cudaStream_t stream, Alloc kind = Alloc::scratch) {
  return DeviceBuffer(n * sizeof(T), stream, kind);
}

/// Makes `device` current for the lifetime of the guard (restores the
/// previous device afterwards).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool changed_ = false;
};

/// Host -> device copy of `bytes` into a new scratch buffer (stream-ordered).
DeviceBuffer to_device(const void* host, std::size_t bytes, cudaStream_t stream);
/// Device -> host copy; synchronous with respect to the host.
void to_host(void* host, const void* device, std::size_t bytes, cudaStream_t stream);

/// Free and total memory of the current device, in bytes.
void mem_info(std::size_t& free_bytes, std::size_t& total_bytes);

/// Multiprocessor count of the current device.
int sm_count();

}  // namespace cohortrec::cuda
