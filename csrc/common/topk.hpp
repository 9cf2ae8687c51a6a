#pragma once
// Bounded top-k selection under the total order "score descending, then id
// ascending". Because the order is total, the selected set and its order do
// not depend on the order in which candidates arrive, which is what makes the
// kernels independent of the thread count.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace cohortrec {

template <typename T, typename J>
struct Scored {
  T score;
  J id;
};

template <typename T, typename J>
inline bool better(const Scored<T, J>& a, const Scored<T, J>& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

/// Keeps the k best candidates in a heap whose top is the worst kept one, so
/// the common case (a candidate worse than all k kept) is one comparison.
template <typename T, typename J>
class TopK {
 public:
  explicit TopK(int64_t k) : k_(k) { heap_.reserve(static_cast<size_t>(std::min<int64_t>(k, 1 << 16))); }

  void clear() { heap_.clear(); }

  inline void push(T score, J id) {
    if (static_cast<int64_t>(heap_.size()) < k_) {
      heap_.push_back({score, id});
      std::push_heap(heap_.begin(), heap_.end(), better<T, J>);
      return;
    }
    if (k_ == 0) return;
    const Scored<T, J>& worst = heap_.front();
    if (score < worst.score || (score == worst.score && id > worst.id)) return;
    std::pop_heap(heap_.begin(), heap_.end(), better<T, J>);
    heap_.back() = {score, id};
    std::push_heap(heap_.begin(), heap_.end(), better<T, J>);
  }

  /// The smallest score that can still enter (-inf until k are kept).
  T floor() const {
    return static_cast<int64_t>(heap_.size()) < k_ || k_ == 0 ? -std::numeric_limits<T>::infinity()
                                                              : heap_.front().score;
  }

  /// Sorts the kept candidates best-first and returns them.
  const std::vector<Scored<T, J>>& sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), better<T, J>);
    return heap_;
  }

 private:
  int64_t k_;
  std::vector<Scored<T, J>> heap_;
};

}  // namespace cohortrec
