#pragma once
// Thread-pool helpers shared by the CPU kernels.
//
// Every kernel splits its work into tasks whose boundaries do not depend on
// the number of threads, so results are identical for any `n_threads`.
// Exceptions thrown inside a worker are captured and rethrown on the calling
// thread after the parallel region (an exception must never cross an OpenMP
// region boundary), as hnswlib's ParallelFor does.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>

#ifdef COHORTREC_OPENMP
#include <omp.h>
#endif

namespace cohortrec {

inline int max_threads() {
#ifdef COHORTREC_OPENMP
  return omp_get_num_procs();
#else
  return 1;
#endif
}

inline bool has_openmp() {
#ifdef COHORTREC_OPENMP
  return true;
#else
  return false;
#endif
}

/// Runs `body(state, task)` for task in [0, n_tasks) on up to `n_threads`
/// threads with dynamic scheduling. `make_state()` builds one per-thread
/// workspace (accumulators etc.) inside the thread that uses it.
template <class MakeState, class Body>
void parallel_tasks(int64_t n_tasks, int n_threads, MakeState&& make_state, Body&& body) {
  if (n_tasks <= 0) return;
  if (n_threads < 1) throw std::invalid_argument("n_threads must be >= 1");
  const int nt = static_cast<int>(std::min<int64_t>(n_threads, n_tasks));
  std::exception_ptr error;
  std::mutex error_mutex;
  std::atomic<bool> failed{false};
  auto run = [&](auto&& next_task) {
    try {
      auto state = make_state();
      for (int64_t t = next_task(); t < n_tasks; t = next_task()) {
        if (failed.load(std::memory_order_relaxed)) break;
        body(state, t);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed.store(true);
    }
  };
  if (nt == 1) {
    int64_t t = 0;
    run([&] { return t++; });
  } else {
    std::atomic<int64_t> counter{0};
#ifdef COHORTREC_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
      run([&] { return counter.fetch_add(1, std::memory_order_relaxed); });
    }
  }
  if (error) std::rethrow_exception(error);
}

struct NoState {};

template <class Body>
void parallel_for(int64_t n_tasks, int n_threads, Body&& body) {
  parallel_tasks(n_tasks, n_threads, [] { return NoState{}; }, [&](NoState&, int64_t t) { body(t); });
}

}  // namespace cohortrec
