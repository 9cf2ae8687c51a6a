// Implicit ALS half-steps: conjugate gradient (Takacs et al. 2011) or an
// exact dense solve per row, rows in parallel. See als.hpp.
#include "cpu/als.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/parallel.hpp"
#include "cpu/isa_dispatch.hpp"

namespace cohortrec::cpu {

namespace {

#if defined(__GNUC__) || defined(__clang__)
#define ALS_INLINE inline __attribute__((always_inline))
#else
#define ALS_INLINE inline
#endif

#define ALS_STR(x) #x
#ifdef COHORTREC_OPENMP
#define ALS_SIMD _Pragma("omp simd")
#define ALS_SIMD_SUM(...) _Pragma(ALS_STR(omp simd reduction(+ : __VA_ARGS__)))
#else
#define ALS_SIMD
#define ALS_SIMD_SUM(...)
#endif

constexpr float kTiny = 1e-20f;  // implicit's early-exit threshold on |r|^2
constexpr int64_t kRowsPerTask = 16;

template <typename I>
struct Problem {
  const CsrView<float, I>* C;
  float alpha;
  const float* Y;
  int64_t f;
  const float* G;
  float* X;
  int steps;
  const float* extra;  // per-row addition to G's diagonal (nullptr: none)
};

constexpr int kLanes = 4;  // rows solved in lockstep (the dense products are shared)

/// One row's entries with a nonzero weight: the other side's factor rows,
/// a = c if c > 0 else 0, w = |c| - 1 (the n_w entries with w != 0 first).
struct RowEntries {
  std::vector<const float*> ys;
  std::vector<float> a, w, t;  // t: scratch
  int64_t n = 0, n_w = 0;
};

/// Per-thread buffers of the CG solver.
struct Workspace {
  std::vector<float> vec;  // per lane r, p, Ap (3 f each), then a zero vector (f)
  RowEntries rows[kLanes];
  explicit Workspace(int64_t f) : vec(static_cast<size_t>((3 * kLanes + 1) * f), 0.f) {}
};

ALS_INLINE float dot(const float* a, const float* b, int64_t f) {
  float s = 0.f;
  ALS_SIMD_SUM(s)
  for (int64_t k = 0; k < f; ++k) s += a[k] * b[k];
  return s;
}

/// d[j] = ys[j] . v for j < n, four rows per pass over v.
ALS_INLINE void dots(const float* const* ys, int64_t n, const float* v, int64_t f, float* d) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *y0 = ys[j], *y1 = ys[j + 1], *y2 = ys[j + 2], *y3 = ys[j + 3];
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
    ALS_SIMD_SUM(s0, s1, s2, s3)
    for (int64_t k = 0; k < f; ++k) {
      const float vk = v[k];
      s0 += y0[k] * vk;
      s1 += y1[k] * vk;
      s2 += y2[k] * vk;
      s3 += y3[k] * vk;
    }
    d[j] = s0;
    d[j + 1] = s1;
    d[j + 2] = s2;
    d[j + 3] = s3;
  }
  for (; j < n; ++j) d[j] = dot(ys[j], v, f);
}

/// W-float SIMD vectors (GCC/Clang vector extensions: lowered to the
/// instruction set of the function they are inlined into).
template <int W>
struct Vec {
  typedef float type __attribute__((vector_size(W * sizeof(float))));
};

template <typename V>
ALS_INLINE V loadu(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <typename V>
ALS_INLINE void storeu(float* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

/// Row j of the combination: ys[j] (pointer list) or base + j * stride.
template <bool kStrided>
ALS_INLINE const float* row_at(const float* const* ys, const float* base, int64_t stride, int64_t j) {
  return kStrided ? base + j * stride : ys[j];
}

/// acc[0:f] (+)= sum_j t[j] * row_j[0:f] for j < n. Columns go in chunks
/// of 4 W-float vectors kept in registers across all rows (two interleaved
/// sets of accumulators hide the FMA latency), so acc is read and written
/// once per chunk; `add` keeps the old acc.
template <int W, bool kStrided>
ALS_INLINE void combine(const float* const* ys, const float* base, int64_t stride, const float* t, int64_t n,
                        float* acc, int64_t f, bool add) {
  using V = typename Vec<W>::type;
  constexpr int CH = 4 * W;
  int64_t c = 0;
  for (; c + CH <= f; c += CH) {
    V a0 = add ? loadu<V>(acc + c) : V{}, a1 = add ? loadu<V>(acc + c + W) : V{};
    V a2 = add ? loadu<V>(acc + c + 2 * W) : V{}, a3 = add ? loadu<V>(acc + c + 3 * W) : V{};
    V b0 = V{}, b1 = V{}, b2 = V{}, b3 = V{};
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
      const float* y0 = row_at<kStrided>(ys, base, stride, j) + c;
      const float* y1 = row_at<kStrided>(ys, base, stride, j + 1) + c;
      const float t0 = t[j], t1 = t[j + 1];
      a0 += t0 * loadu<V>(y0);
      a1 += t0 * loadu<V>(y0 + W);
      a2 += t0 * loadu<V>(y0 + 2 * W);
      a3 += t0 * loadu<V>(y0 + 3 * W);
      b0 += t1 * loadu<V>(y1);
      b1 += t1 * loadu<V>(y1 + W);
      b2 += t1 * loadu<V>(y1 + 2 * W);
      b3 += t1 * loadu<V>(y1 + 3 * W);
    }
    if (j < n) {
      const float* y0 = row_at<kStrided>(ys, base, stride, j) + c;
      const float t0 = t[j];
      a0 += t0 * loadu<V>(y0);
      a1 += t0 * loadu<V>(y0 + W);
      a2 += t0 * loadu<V>(y0 + 2 * W);
      a3 += t0 * loadu<V>(y0 + 3 * W);
    }
    storeu(acc + c, a0 + b0);
    storeu(acc + c + W, a1 + b1);
    storeu(acc + c + 2 * W, a2 + b2);
    storeu(acc + c + 3 * W, a3 + b3);
  }
  for (; c + W <= f; c += W) {  // remaining whole vectors
    V a0 = add ? loadu<V>(acc + c) : V{}, b0 = V{};
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
      a0 += t[j] * loadu<V>(row_at<kStrided>(ys, base, stride, j) + c);
      b0 += t[j + 1] * loadu<V>(row_at<kStrided>(ys, base, stride, j + 1) + c);
    }
    if (j < n) a0 += t[j] * loadu<V>(row_at<kStrided>(ys, base, stride, j) + c);
    storeu(acc + c, a0 + b0);
  }
  for (; c < f; ++c) {  // scalar tail
    float s = add ? acc[c] : 0.f;
    for (int64_t j = 0; j < n; ++j) s += t[j] * row_at<kStrided>(ys, base, stride, j)[c];
    acc[c] = s;
  }
}

/// out_m[0:f] = G v_m for kLanes vectors v_m (G symmetric f x f, so
/// G v = sum_k v[k] G[k, :]): each chunk of G's columns is loaded once for
/// all lanes, partial sums in registers (NV vectors of W floats per lane).
template <int W, int NV>
ALS_INLINE void gemm_lanes(const float* G, int64_t f, const float* const* v, float* const* out) {
  using V = typename Vec<W>::type;
  constexpr int CH = NV * W;
  int64_t c = 0;
  for (; c + CH <= f; c += CH) {
    V acc[kLanes][NV];
#pragma GCC unroll 16
    for (int m = 0; m < kLanes; ++m)
#pragma GCC unroll 16
      for (int q = 0; q < NV; ++q) acc[m][q] = V{};
    for (int64_t k = 0; k < f; ++k) {
      const float* g = G + k * f + c;
      V gv[NV];
#pragma GCC unroll 16
      for (int q = 0; q < NV; ++q) gv[q] = loadu<V>(g + q * W);
#pragma GCC unroll 16
      for (int m = 0; m < kLanes; ++m) {
        const float vk = v[m][k];
#pragma GCC unroll 16
        for (int q = 0; q < NV; ++q) acc[m][q] += vk * gv[q];
      }
    }
#pragma GCC unroll 16
    for (int m = 0; m < kLanes; ++m)
#pragma GCC unroll 16
      for (int q = 0; q < NV; ++q) storeu(out[m] + c + q * W, acc[m][q]);
  }
  for (; c < f; ++c) {  // scalar tail columns
    float acc[kLanes] = {};
    for (int64_t k = 0; k < f; ++k) {
      const float g = G[k * f + c];
      for (int m = 0; m < kLanes; ++m) acc[m] += v[m][k] * g;
    }
    for (int m = 0; m < kLanes; ++m) out[m][c] = acc[m];
  }
}

/// Collects row u's entries (see RowEntries).
template <typename I>
ALS_INLINE void gather_row(const Problem<I>& P, int64_t u, RowEntries& R) {
  const int64_t b = P.C->indptr[u], e = P.C->indptr[u + 1];
  const size_t cap = static_cast<size_t>(e - b);
  if (R.ys.size() < cap) {
    R.ys.resize(cap);
    R.a.resize(cap);
    R.w.resize(cap);
    R.t.resize(cap);
  }
  const I* idx = P.C->indices;
  const float* val = P.C->data;
  int64_t n_w = 0, back = e - b;  // entries with w == 0 (c == 1) fill from the end
  for (int64_t j = b; j < e; ++j) {
    const float c = P.alpha * val[j];
    const float w = std::fabs(c) - 1.f;
    const float a = c > 0.f ? c : 0.f;
    if (w == 0.f && a == 0.f) continue;
    const int64_t slot = w != 0.f ? n_w++ : --back;
    R.ys[slot] = P.Y + static_cast<int64_t>(idx[j]) * P.f;
    R.a[slot] = a;
    R.w[slot] = w;
  }
  const int64_t n_zero = (e - b) - back;
  for (int64_t q = 0; q < n_zero; ++q) {  // move them right after the first n_w
    R.ys[n_w + q] = R.ys[back + q];
    R.a[n_w + q] = R.a[back + q];
    R.w[n_w + q] = 0.f;
  }
  R.n_w = n_w;
  R.n = n_w + n_zero;
}

/// Conjugate gradient on up to kLanes consecutive rows [u0, u0 + n_rows) in
/// lockstep, each from its current x; per row exactly the iteration of
/// implicit's least_squares_cg (a row stops at |r|^2 < 1e-20).
template <typename I, int W, int NV>
ALS_INLINE void cg_lanes(const Problem<I>& P, int64_t u0, int n_rows, Workspace& ws) {
  const int64_t f = P.f;
  const float* zero = ws.vec.data() + 3 * kLanes * f;
  float *r[kLanes], *p[kLanes], *Ap[kLanes], *x[kLanes];
  const float* in[kLanes];
  float rsold[kLanes];
  bool active[kLanes];
  int n_active = 0;
  for (int m = 0; m < kLanes; ++m) {
    r[m] = ws.vec.data() + 3 * m * f;
    p[m] = r[m] + f;
    Ap[m] = p[m] + f;
    active[m] = false;
    x[m] = nullptr;
    in[m] = zero;
    if (m >= n_rows) continue;
    const int64_t u = u0 + m;
    x[m] = P.X + u * f;
    if (P.C->indptr[u] == P.C->indptr[u + 1]) {
      std::fill(x[m], x[m] + f, 0.f);
      continue;
    }
    gather_row(P, u, ws.rows[m]);
    active[m] = true;
    in[m] = x[m];
  }
  // r = b - A x = sum_j (a_j - w_j y_j.x) y_j - G x
  gemm_lanes<W, NV>(P.G, f, in, Ap);
  for (int m = 0; m < kLanes; ++m) {
    if (!active[m]) continue;
    RowEntries& R = ws.rows[m];
    float* t = R.t.data();
    dots(R.ys.data(), R.n_w, x[m], f, t);
    for (int64_t j = 0; j < R.n; ++j) t[j] = R.a[j] - (j < R.n_w ? R.w[j] * t[j] : 0.f);
    combine<W, false>(R.ys.data(), nullptr, 0, t, R.n, r[m], f, false);
    float rs = 0.f;
    float *rm = r[m], *pm = p[m], *am = Ap[m];
    if (P.extra) {  // A x includes the row's extra regularisation
      const float ex = P.extra[u0 + m];
      const float* xm = x[m];
      ALS_SIMD
      for (int64_t k = 0; k < f; ++k) am[k] += ex * xm[k];
    }
    ALS_SIMD_SUM(rs)
    for (int64_t k = 0; k < f; ++k) {
      const float rk = rm[k] - am[k];
      rm[k] = rk;
      pm[k] = rk;
      rs += rk * rk;
    }
    rsold[m] = rs;
    active[m] = rs >= kTiny;  // converged (or NaN: leave x alone)
    n_active += active[m];
  }
  for (int it = 0; it < P.steps && n_active > 0; ++it) {
    for (int m = 0; m < kLanes; ++m) in[m] = active[m] ? p[m] : zero;
    gemm_lanes<W, NV>(P.G, f, in, Ap);  // Ap = G p
    for (int m = 0; m < kLanes; ++m) {
      if (!active[m]) continue;
      RowEntries& R = ws.rows[m];
      float* t = R.t.data();
      float *xm = x[m], *rm = r[m], *pm = p[m], *am = Ap[m];
      dots(R.ys.data(), R.n_w, pm, f, t);
      for (int64_t j = 0; j < R.n_w; ++j) t[j] *= R.w[j];
      combine<W, false>(R.ys.data(), nullptr, 0, t, R.n_w, am, f, true);  // Ap += Y_u^T W (Y_u p)
      if (P.extra) {
        const float ex = P.extra[u0 + m];
        ALS_SIMD
        for (int64_t k = 0; k < f; ++k) am[k] += ex * pm[k];
      }
      const float pAp = dot(pm, am, f);
      if (!(pAp > 0.f)) {  // not positive definite along p: stop rather than diverge
        active[m] = false;
        --n_active;
        continue;
      }
      const float alpha = rsold[m] / pAp;
      float rsnew = 0.f;
      ALS_SIMD_SUM(rsnew)
      for (int64_t k = 0; k < f; ++k) {
        xm[k] += alpha * pm[k];
        const float rk = rm[k] - alpha * am[k];
        rm[k] = rk;
        rsnew += rk * rk;
      }
      if (rsnew < kTiny) {
        active[m] = false;
        --n_active;
        continue;
      }
      const float beta = rsnew / rsold[m];
      ALS_SIMD
      for (int64_t k = 0; k < f; ++k) pm[k] = rm[k] + beta * pm[k];
      rsold[m] = rsnew;
    }
  }
}

template <typename I, int W, int NV>
ALS_INLINE void cg_block_impl(const Problem<I>& P, int64_t r0, int64_t r1, Workspace& ws) {
  for (int64_t u = r0; u < r1; u += kLanes)
    cg_lanes<I, W, NV>(P, u, static_cast<int>(std::min<int64_t>(kLanes, r1 - u)), ws);
}

template <typename I>
void cg_block_generic(const Problem<I>& P, int64_t r0, int64_t r1, Workspace& ws) {
  cg_block_impl<I, 4, 2>(P, r0, r1, ws);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ALS_HAVE_X86_CLONES 1
template <typename I>
__attribute__((target("avx2,fma"))) void cg_block_avx2(const Problem<I>& P, int64_t r0, int64_t r1, Workspace& ws) {
  cg_block_impl<I, 8, 2>(P, r0, r1, ws);
}

template <typename I>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) void cg_block_avx512(const Problem<I>& P,
                                                                                            int64_t r0, int64_t r1,
                                                                                            Workspace& ws) {
  cg_block_impl<I, 16, 4>(P, r0, r1, ws);
}
#endif

/// Solves the dense f x f system A x = rhs in place (A row-major, double):
/// Cholesky, else LU with partial pivoting; false if singular.
bool dense_solve(double* A, double* work, double* rhs, int64_t f) {
  std::memcpy(work, A, sizeof(double) * static_cast<size_t>(f * f));
  bool pd = true;
  for (int64_t j = 0; j < f && pd; ++j) {  // lower Cholesky factor in work
    double* Lj = work + j * f;
    double d = Lj[j];
    for (int64_t k = 0; k < j; ++k) d -= Lj[k] * Lj[k];
    if (!(d > 0.0)) {
      pd = false;
      break;
    }
    const double ljj = std::sqrt(d);
    Lj[j] = ljj;
    for (int64_t i = j + 1; i < f; ++i) {
      double* Li = work + i * f;
      double s = Li[j];
      for (int64_t k = 0; k < j; ++k) s -= Li[k] * Lj[k];
      Li[j] = s / ljj;
    }
  }
  if (pd) {
    for (int64_t i = 0; i < f; ++i) {  // L z = rhs
      double s = rhs[i];
      for (int64_t k = 0; k < i; ++k) s -= work[i * f + k] * rhs[k];
      rhs[i] = s / work[i * f + i];
    }
    for (int64_t i = f - 1; i >= 0; --i) {  // L^T x = z
      double s = rhs[i];
      for (int64_t k = i + 1; k < f; ++k) s -= work[k * f + i] * rhs[k];
      rhs[i] = s / work[i * f + i];
    }
    return true;
  }
  // Gaussian elimination with partial pivoting on A itself
  for (int64_t j = 0; j < f; ++j) {
    int64_t piv = j;
    for (int64_t i = j + 1; i < f; ++i)
      if (std::fabs(A[i * f + j]) > std::fabs(A[piv * f + j])) piv = i;
    if (!(std::fabs(A[piv * f + j]) > 0.0)) return false;
    if (piv != j) {
      for (int64_t k = 0; k < f; ++k) std::swap(A[j * f + k], A[piv * f + k]);
      std::swap(rhs[j], rhs[piv]);
    }
    const double d = A[j * f + j];
    for (int64_t i = j + 1; i < f; ++i) {
      const double m = A[i * f + j] / d;
      if (m == 0.0) continue;
      for (int64_t k = j; k < f; ++k) A[i * f + k] -= m * A[j * f + k];
      rhs[i] -= m * rhs[j];
    }
  }
  for (int64_t i = f - 1; i >= 0; --i) {
    double s = rhs[i];
    for (int64_t k = i + 1; k < f; ++k) s -= A[i * f + k] * rhs[k];
    rhs[i] = s / A[i * f + i];
  }
  for (int64_t i = 0; i < f; ++i)
    if (!std::isfinite(rhs[i])) return false;
  return true;
}

template <typename I>
void exact_row(const Problem<I>& P, int64_t u, std::vector<double>& buf) {
  const int64_t f = P.f;
  float* x = P.X + u * f;
  const int64_t b = P.C->indptr[u], e = P.C->indptr[u + 1];
  if (b == e) {
    std::fill(x, x + f, 0.f);
    return;
  }
  double* A = buf.data();
  double* work = A + f * f;
  double* rhs = work + f * f;
  for (int64_t k = 0; k < f * f; ++k) A[k] = P.G[k];
  if (P.extra)
    for (int64_t k = 0; k < f; ++k) A[k * f + k] += P.extra[u];
  std::fill(rhs, rhs + f, 0.0);
  for (int64_t j = b; j < e; ++j) {
    const float* y = P.Y + static_cast<int64_t>(P.C->indices[j]) * f;
    const double c = static_cast<double>(P.alpha) * P.C->data[j];
    const double w = std::fabs(c) - 1.0;
    if (c > 0)
      for (int64_t k = 0; k < f; ++k) rhs[k] += c * y[k];
    if (w != 0.0)
      for (int64_t i = 0; i < f; ++i) {
        const double wy = w * y[i];
        double* Ai = A + i * f;
        for (int64_t k = 0; k < f; ++k) Ai[k] += wy * y[k];
      }
  }
  if (dense_solve(A, work, rhs, f)) {
    for (int64_t k = 0; k < f; ++k) x[k] = static_cast<float>(rhs[k]);
  } else {
    std::fill(x, x + f, 0.f);
  }
}

}  // namespace

template <typename I>
void als_solve(const CsrView<float, I>& C, float alpha, const float* Y, int64_t f, const float* G, float* X,
               int cg_steps, int n_threads, const float* extra) {
  if (f < 0) throw std::invalid_argument("als_solve: negative number of factors");
  if (cg_steps < 0) throw std::invalid_argument("als_solve: cg_steps must be >= 0");
  const Problem<I> P{&C, alpha, Y, f, G, X, cg_steps, extra};
  const int64_t n = C.n_rows;
  if (n == 0 || f == 0) return;
  const int64_t n_tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
  if (cg_steps == 0) {
    parallel_tasks(
        n_tasks, n_threads, [f] { return std::vector<double>(static_cast<size_t>(2 * f * f + f)); },
        [&](std::vector<double>& buf, int64_t t) {
          const int64_t r1 = std::min(n, (t + 1) * kRowsPerTask);
          for (int64_t u = t * kRowsPerTask; u < r1; ++u) exact_row(P, u, buf);
        });
    return;
  }
  void (*block)(const Problem<I>&, int64_t, int64_t, Workspace&) = cg_block_generic<I>;
#ifdef ALS_HAVE_X86_CLONES
  const int level = isa_level();
  if (level == kAvx512)
    block = cg_block_avx512<I>;
  else if (level == kAvx2)
    block = cg_block_avx2<I>;
#endif
  parallel_tasks(
      n_tasks, n_threads, [f] { return Workspace(f); },
      [&](Workspace& ws, int64_t t) { block(P, t * kRowsPerTask, std::min(n, (t + 1) * kRowsPerTask), ws); });
}

template <typename I>
void als_loss_rows(const CsrView<float, I>& C, float alpha, const float* X, const float* Y, int64_t f,
                   const double* YtY, double* out, int n_threads) {
  const int64_t n = C.n_rows;
  parallel_tasks(
      n, n_threads, [f] { return std::vector<double>(static_cast<size_t>(f)); },
      [&](std::vector<double>& xd, int64_t u) {
        const float* x = X + u * f;
        for (int64_t k = 0; k < f; ++k) xd[k] = x[k];
        double total = 0.0;
        for (int64_t i = 0; i < f; ++i) {
          double s = 0.0;
          for (int64_t k = 0; k < f; ++k) s += YtY[i * f + k] * xd[k];
          total += xd[i] * s;
        }
        for (int64_t j = C.indptr[u]; j < C.indptr[u + 1]; ++j) {
          const float* y = Y + static_cast<int64_t>(C.indices[j]) * f;
          double s = 0.0;
          for (int64_t k = 0; k < f; ++k) s += xd[k] * y[k];
          const double c = static_cast<double>(alpha) * C.data[j];
          const double pref = c > 0 ? 1.0 : 0.0;
          total += std::fabs(c) * (pref - s) * (pref - s) - s * s;
        }
        out[u] = total;
      });
}

template void als_solve<int32_t>(const CsrView<float, int32_t>&, float, const float*, int64_t, const float*, float*,
                                 int, int, const float*);
template void als_solve<int64_t>(const CsrView<float, int64_t>&, float, const float*, int64_t, const float*, float*,
                                 int, int, const float*);
template void als_loss_rows<int32_t>(const CsrView<float, int32_t>&, float, const float*, const float*, int64_t,
                                     const double*, double*, int);
template void als_loss_rows<int64_t>(const CsrView<float, int64_t>&, float, const float*, const float*, int64_t,
                                     const double*, double*, int);

}  // namespace cohortrec::cpu
