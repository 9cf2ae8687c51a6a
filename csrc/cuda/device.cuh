#pragma once
// Device discovery for cohortrec._cuda (plain C++: included by the binding).
#include <cstddef>
#include <string>

namespace cohortrec::cuda {

/// Number of visible CUDA devices; throws std::runtime_error naming the
/// driver error when the runtime cannot be initialised.
int device_count();
/// CUDA runtime version the module was built against (e.g. 13000).
int runtime_version();
/// Version of the installed driver (0 when there is none).
int driver_version();

struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0;
  int multiprocessors = 0;
  std::size_t total_memory = 0;
  int l2_cache_bytes = 0;
};
/// Properties of device `device`.
DeviceInfo device_info(int device);
/// The runtime's current device.
int current_device();
/// cudaDeviceSynchronize, checked.
void synchronize_device();

}  // namespace cohortrec::cuda
