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
    std::sort(buf_.begin(), buf_.end(), better<T, J>);
    return buf_;
  }

 private:
  void compact() {
    if (k_ == 0) {
      buf_.clear();
      floor_ = std::numeric_limits<T>::infinity();
      return;
    }
    std::nth_element(buf_.begin(), buf_.begin() + (k_ - 1), buf_.end(), better<T, J>);
    buf_.resize(static_cast<size_t>(k_));
    floor_ = buf_[static_cast<size_t>(k_ - 1)].score;
  }

  int64_t k_, cap_;
  T floor_ = -std::numeric_limits<T>::infinity();
  std::vector<Scored<T, J>> buf_;
};

}  // namespace cohortrec
