// The module definition of cohortrec._core (the CPU kernels).
//
// One registration function per op family lives in csrc/bindings/<op>.cpp;
// shared helpers in bindings/common.hpp. To add an op: write
// csrc/cpu/<op>.{hpp,cpp}, csrc/bindings/<op>.cpp with bind_<op>(m), declare
// it in common.hpp and call it below (docs/architecture.md).
#include "bindings/common.hpp"
#include "common/parallel.hpp"
#include "cpu/kmeans_assign.hpp"

using namespace cohortrec;
using namespace cohortrec::bindings;

PYBIND11_MODULE(_core, m) {
  m.doc() = "cohortrec CPU kernels (C++/OpenMP). Use cohortrec.ops, which validates inputs.";
  bind_cosine_topk(m);
  bind_topk_scores(m);
  bind_kmeans(m);
  bind_ranking(m);
  bind_topn(m);
  bind_user_topn(m);
  bind_als(m);
  bind_merge_topn(m);
  m.def("isa", &cpu::active_isa, "Instruction set the dense kernels use.");
  m.def("_set_isa", &cpu::set_isa, py::arg("name"), "Force an instruction set (tests/benchmarks); 'auto' resets.");
  m.attr("has_openmp") = has_openmp();
}
