#pragma once
// Run-time choice of the instruction set, written once.
//
// The hot loops are compiled once per ISA, each translation unit in its own
// namespace (isa_generic, isa_avx2, isa_avx512) with its own -m flags (see
// CMakeLists.txt), and picked at run time as faiss does ("dynamic
// dispatch"): the wheel stays generic (no -march=native) yet uses AVX-512 or
// AVX2 where the CPU has them. isa_level() (cpu_features.cpp) detects the
// CPU once; tests and benchmarks may force a lower level (_core._set_isa).

namespace cohortrec::cpu {

enum Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

/// The ISA the kernels use now: the detected one, or the one forced.
int isa_level();

}  // namespace cohortrec::cpu

/// `return EXPR;` with `isa` aliased to the namespace of the active ISA, e.g.
/// `COHORTREC_ISA_DISPATCH(isa::assign_dense(X, C, k, labels, sq, n_threads));`
#define COHORTREC_ISA_DISPATCH(...)                  \
  switch (::cohortrec::cpu::isa_level()) {           \
    case ::cohortrec::cpu::kAvx512: {                \
      namespace isa = ::cohortrec::cpu::isa_avx512;  \
      return __VA_ARGS__;                            \
    }                                                \
    case ::cohortrec::cpu::kAvx2: {                  \
      namespace isa = ::cohortrec::cpu::isa_avx2;    \
      return __VA_ARGS__;                            \
    }                                                \
    default: {                                       \
      namespace isa = ::cohortrec::cpu::isa_generic; \
      return __VA_ARGS__;                            \
    }                                                \
  }
