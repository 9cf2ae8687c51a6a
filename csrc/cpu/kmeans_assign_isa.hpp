#pragma once
// Declarations of the ISA-specific K-means kernels. Each ISA's
// translation unit (kmeans_isa_<isa>.cpp) includes kmeans_isa.inc with its own namespace and
// vector width, and is compiled with its own -m flags (see CMakeLists.txt).
#include <cstdint>

#include "cpu/kmeans_assign.hpp"
#include "cpu/kmeans_bounded.hpp"

#define COHORTREC_DECLARE_ISA(NS)                                                                                    \
  namespace cohortrec::cpu::NS {                                                                                     \
  void assign_dense(const DenseMatrix<float>& X, const float* C, int64_t k, int64_t* labels, float* sq,              \
                    int n_threads);                                                                                  \
  void assign_dense(const DenseMatrix<double>& X, const double* C, int64_t k, int64_t* labels, double* sq,           \
                    int n_threads);                                                                                  \
  int64_t yinyang_dense(const DenseMatrix<float>& X, const float* C, int64_t k, const int64_t* slots, int64_t t,     \
                        const YinyangArgs& a, const float* weights, int64_t* n_distances, int n_threads);            \
  int64_t yinyang_dense(const DenseMatrix<double>& X, const double* C, int64_t k, const int64_t* slots, int64_t t,   \
                        const YinyangArgs& a, const double* weights, int64_t* n_distances, int n_threads);           \
  int vector_lanes(int item_size);                                                                                   \
  void kmeanspp_update(const DenseMatrix<float>& X, const double* c, double* closest, const float* w, double* cum,   \
                       int n_threads);                                                                               \
  void kmeanspp_update(const DenseMatrix<double>& X, const double* c, double* closest, const double* w, double* cum, \
                       int n_threads);                                                                               \
  void kmeanspp_trials(const DenseMatrix<float>& X, const double* cand, int64_t m, const double* closest,            \
                       const float* w, double* pot, int n_threads);                                                  \
  void kmeanspp_trials(const DenseMatrix<double>& X, const double* cand, int64_t m, const double* closest,           \
                       const double* w, double* pot, int n_threads);                                                 \
  void assign_csr(const CsrView<float, int32_t>& X, const float* C, int64_t k, int64_t* labels, float* sq,           \
                  int n_threads);                                                                                    \
  void assign_csr(const CsrView<float, int64_t>& X, const float* C, int64_t k, int64_t* labels, float* sq,           \
                  int n_threads);                                                                                    \
  void assign_csr(const CsrView<double, int32_t>& X, const double* C, int64_t k, int64_t* labels, double* sq,        \
                  int n_threads);                                                                                    \
  void assign_csr(const CsrView<double, int64_t>& X, const double* C, int64_t k, int64_t* labels, double* sq,        \
                  int n_threads);                                                                                    \
  }

COHORTREC_DECLARE_ISA(isa_generic)
COHORTREC_DECLARE_ISA(isa_avx2)
COHORTREC_DECLARE_ISA(isa_avx512)
