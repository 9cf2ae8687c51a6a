// pybind11 binding of cpu/merge_topn: the merge of a blended recommender's
// per-request path. The lists arrive as Python sequences of 1-D arrays (as
// the members' row servers return them: int32 or int64 ids, float32 or
// float64 scores), so the caller converts nothing; everything is checked
// here, with the GIL held, and merged with it released.
#include "cpu/merge_topn.hpp"
#include "bindings/common.hpp"

#include <optional>
#include <string>
#include <vector>

namespace cohortrec::bindings {

namespace {

cpu::RankedList ranked_list(const py::handle& ids_obj, const py::handle& scores_obj, double weight, size_t m) {
  const std::string name = "lists[" + std::to_string(m) + "]";
  if (!py::isinstance<py::array>(ids_obj) || !py::isinstance<py::array>(scores_obj))
    throw std::invalid_argument(name + ": ids and scores must be NumPy arrays");
  const auto ids = py::reinterpret_borrow<py::array>(ids_obj);
  const auto scores = py::reinterpret_borrow<py::array>(scores_obj);
  if (ids.ndim() != 1 || scores.ndim() != 1 || ids.shape(0) != scores.shape(0))
    throw std::invalid_argument(name + ": ids and scores must be 1-D of equal length");
  if (!(ids.flags() & py::array::c_style) || !(scores.flags() & py::array::c_style))
    throw std::invalid_argument(name + ": ids and scores must be contiguous");
  cpu::RankedList l;
  if (ids.dtype().is(py::dtype::of<int64_t>()))
    l.ids64 = true;
  else if (ids.dtype().is(py::dtype::of<int32_t>()))
    l.ids64 = false;
  else
    throw std::invalid_argument(name + ": ids must be int32 or int64");
  if (scores.dtype().is(py::dtype::of<double>()))
    l.scores64 = true;
  else if (scores.dtype().is(py::dtype::of<float>()))
    l.scores64 = false;
  else
    throw std::invalid_argument(name + ": scores must be float32 or float64");
  l.ids = ids.data();
  l.scores = scores.data();
  l.len = ids.shape(0);
  l.weight = weight;
  return l;
}

}  // namespace

void bind_merge_topn(py::module_& m) {
  m.def(
      "merge_topn",
      [](const py::sequence& ids, const py::sequence& scores, const CArray<double>& weights, bool by_score,
         int64_t width, int64_t n_items, std::optional<CArray<bool>> keep, std::optional<CArray<int64_t>> exclude,
         int64_t n) {
        const size_t k = static_cast<size_t>(py::len(ids));
        if (static_cast<size_t>(py::len(scores)) != k || weights.ndim() != 1 ||
            static_cast<size_t>(weights.shape(0)) != k)
          throw std::invalid_argument("ids, scores and weights must have one entry per list");
        if (width < 1) throw std::invalid_argument("width must be >= 1");
        if (n_items < 0 || n < 0 || n > n_items) throw std::invalid_argument("n must lie in [0, n_items]");
        if (keep && (keep->ndim() != 1 || keep->shape(0) != n_items))
          throw std::invalid_argument("keep must hold one flag per item");
        if (exclude && exclude->ndim() != 1) throw std::invalid_argument("exclude must be 1-D");
        std::vector<cpu::RankedList> lists;
        lists.reserve(k);
        const double* w = weights.data();
        // the sequences own the arrays for the whole call: the views stay valid without the GIL
        for (size_t t = 0; t < k; ++t) lists.push_back(ranked_list(ids[t], scores[t], w[t], t));
        const uint8_t* kp = keep ? reinterpret_cast<const uint8_t*>(keep->data()) : nullptr;
        const int64_t* ep = exclude ? exclude->data() : nullptr;
        const int64_t ne = exclude ? exclude->shape(0) : 0;
        std::vector<int64_t> out_ids(static_cast<size_t>(n), -1);
        std::vector<float> out_scores(static_cast<size_t>(n), -std::numeric_limits<float>::infinity());
        {
          py::gil_scoped_release release;
          cpu::merge_topn(lists, by_score, width, n_items, kp, ep, ne, n, out_ids.data(), out_scores.data());
        }
        return py::make_tuple(to_numpy(std::move(out_ids)), to_numpy(std::move(out_scores)));
      },
      py::arg("ids"), py::arg("scores"), py::arg("weights").noconvert(), py::arg("by_score"), py::arg("width"),
      py::arg("n_items"), py::arg("keep").noconvert(), py::arg("exclude").noconvert(), py::arg("n"),
      "Top-n (ids int64, scores float32; -1 / -inf padding) of the weighted sum of rank- or score-normalised "
      "ranked lists.");
}

}  // namespace cohortrec::bindings
