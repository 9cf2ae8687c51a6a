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
  // Bitwise, not short-circuit: the heap's comparisons on near-random
  // scores are unpredictable, and setcc/and/or costs less than a mispredict.
  return (a.score > b.score) | ((a.score == b.score) & (a.id < b.id));
}

/// The same order as a function object, so the standard algorithms inline
/// it (a function pointer made every heap comparison an indirect call).
struct Better {
  template <typename T, typename J>
  bool operator()(const Scored<T, J>& a, const Scored<T, J>& b) const {
    return better(a, b);
  }
};

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
      std::push_heap(heap_.begin(), heap_.end(), Better{});
      return;
    }
    if (k_ == 0) return;
    const Scored<T, J>& worst = heap_.front();
    if (score < worst.score || (score == worst.score && id > worst.id)) return;
    replace_top({score, id});
  }

  /// The smallest score that can still enter (-inf until k are kept).
  T floor() const {
    return static_cast<int64_t>(heap_.size()) < k_ || k_ == 0 ? -std::numeric_limits<T>::infinity()
                                                              : heap_.front().score;
  }

  /// Sorts the kept candidates best-first and returns them.
  const std::vector<Scored<T, J>>& sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), Better{});
    return heap_;
  }

 private:
  /// Puts x in place of the worst kept candidate and sifts it down: one
  /// pass instead of pop_heap + push_heap.
  void replace_top(Scored<T, J> x) {
    Scored<T, J>* h = heap_.data();
    const int64_t n = static_cast<int64_t>(heap_.size());
    int64_t i = 0;
    for (;;) {
      int64_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n) c += static_cast<int64_t>(better(h[c], h[c + 1]));  // the worse child
      if (!better(x, h[c])) break;                                       // x is worse than both: stays here
      h[i] = h[c];
      i = c;
    }
    h[i] = x;
  }

  int64_t k_;
  std::vector<Scored<T, J>> heap_;
};

/// The same selection for streams with many candidates (a dense row of
/// scores): candidates at or above floor() are appended to a buffer; when
/// it holds `cap` of them, nth_element keeps the k best and raises the
/// floor to the worst kept. O(1) per accepted candidate instead of a heap
/// update, O(cap) per compaction (the "reservoir" of faiss' and
/// sparse_dot_topn's selection). Same total order, so the same result as
/// TopK whatever the arrival order.
template <typename T, typename J>
class TopKBuffer {
 public:
  explicit TopKBuffer(int64_t k) : k_(k), cap_(std::max<int64_t>(4 * k, 512)) {
    buf_.reserve(static_cast<size_t>(cap_));
  }

  void clear() {
    buf_.clear();
    floor_ = -std::numeric_limits<T>::infinity();
  }

  inline void push(T score, J id) {
    buf_.push_back({score, id});
    if (static_cast<int64_t>(buf_.size()) >= cap_) compact();
  }

  /// Candidates below this cannot enter (candidates equal to it may).
  T floor() const { return floor_; }

  const std::vector<Scored<T, J>>& sorted() {
    if (static_cast<int64_t>(buf_.size()) > k_) compact();
    std::sort(buf_.begin(), buf_.end(), Better{});
    return buf_;
  }

 private:
  void compact() {
    if (k_ == 0) {
      buf_.clear();
      floor_ = std::numeric_limits<T>::infinity();
      return;
    }
    std::nth_element(buf_.begin(), buf_.begin() + (k_ - 1), buf_.end(), Better{});
    buf_.resize(static_cast<size_t>(k_));
    floor_ = buf_[static_cast<size_t>(k_ - 1)].score;
  }

  int64_t k_, cap_;
  T floor_ = -std::numeric_limits<T>::infinity();
  std::vector<Scored<T, J>> buf_;
};

}  // namespace cohortrec
