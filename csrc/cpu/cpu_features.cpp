// Run-time choice of the instruction set for the ISA-specific kernels.
#include <atomic>
#include <stdexcept>
#include <string>

#include "cpu/isa_dispatch.hpp"
#include "cpu/kmeans_assign.hpp"

namespace cohortrec::cpu {
namespace {

int detect() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the wide registers.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw"))
    return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kAvx2;
#endif
  return kGeneric;
}

std::atomic<int> forced{-1};

}  // namespace

int isa_level() {
  static const int detected = detect();
  const int f = forced.load();
  return f >= 0 ? f : detected;
}

std::string active_isa() {
  switch (isa_level()) {
    case kAvx512: return "avx512";
    case kAvx2: return "avx2";
    default: return "generic";
  }
}

void set_isa(const std::string& name) {
  static const int detected = detect();
  int want;
  if (name == "auto") {
    forced.store(-1);
    return;
  } else if (name == "generic") {
    want = kGeneric;
  } else if (name == "avx2") {
    want = kAvx2;
  } else if (name == "avx512") {
    want = kAvx512;
  } else {
    throw std::invalid_argument("unknown instruction set '" + name + "' (auto, generic, avx2, avx512)");
  }
  if (want > detected) throw std::invalid_argument("this CPU does not support " + name);
  forced.store(want);
}

}  // namespace cohortrec::cpu
