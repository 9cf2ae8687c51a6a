#pragma once

namespace cohortrec::cuda {

/// Number of visible CUDA devices; throws std::runtime_error naming the
/// driver error when the runtime cannot be initialised.
int device_count();
/// CUDA runtime version the module was built against (e.g. 13000).
int runtime_version();

}  // namespace cohortrec::cuda
