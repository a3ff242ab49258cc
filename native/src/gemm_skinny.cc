#include "gemm_skinny.h"

#include "aligned_buffer.h"
#include "gemm_skinny_reduce.h"
#include "simd.h"
#include "thread_pool.h"

#include "intrinsics.h"

namespace mt {
namespace {

using skinny::combine;
using skinny::G;
using skinny::hsum_g;
// Long rows per dot-form step and long-side vectors per outer-form step: as many accumulators
// (G per row / vector) as the register file holds (32 zmm; 16 ymm / xmm).
constexpr int RD = kLanes == 16 ? 3 : 1;
constexpr int VO = kLanes == 16 ? 3 : 1;
constexpr int64_t W = VO * kLanes;  // long-side columns per outer-form step
// About this many flops per task before another thread pays off.
constexpr double kMinFlopsPerTask = 2.0e5;

/**
 * Dot form: dots[r][s] = sum_k lrow[r][k] * srow[s][k] for r < R, s < G (both K-contiguous).
 */
template <int R>
inline void dot_block(int64_t K, const float* const* lrow, const float* const* srow, float dots[][G]) {
  vf acc[R][G];
  for (int r = 0; r < R; r++)
    for (int s = 0; s < G; s++) acc[r][s] = vf{};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    vf l[R];
    for (int r = 0; r < R; r++) l[r] = vload(lrow[r] + k);
    for (int s = 0; s < G; s++) {
      const vf w = vload(srow[s] + k);
      for (int r = 0; r < R; r++) acc[r][s] += l[r] * w;
    }
  }
  if (k < K) {
    vf l[R];
    for (int r = 0; r < R; r++) l[r] = load_tail(lrow[r] + k, K - k, 0.0f);
    for (int s = 0; s < G; s++) {
      const vf w = load_tail(srow[s] + k, K - k, 0.0f);
      for (int r = 0; r < R; r++) acc[r][s] += l[r] * w;
    }
  }
  for (int r = 0; r < R; r++) hsum_g(acc[r], dots[r]);
}

/**
 * Outer-product form over k in [0, kn): acc[s][j] (lanes = long-side columns l0 + j * kLanes ..)
 * += P[k * G + s] * V[k * ldv + l0 + ...] over `width` <= W columns (V rows read in place).
 */
template <bool Full>
inline void outer_block(int64_t kn, const float* P, const float* V, int64_t ldv, int64_t width, vf acc[G][VO]) {
  for (int64_t k = 0; k < kn; k++) {
    const float* v = V + k * ldv;
    vf x[VO];
    for (int j = 0; j < VO; j++) {
      if (Full) {
        x[j] = vload(v + j * kLanes);
      } else {
        const int64_t n = width - j * kLanes;
        x[j] = n >= kLanes ? vload(v + j * kLanes) : n > 0 ? load_tail(v + j * kLanes, n, 0.0f) : vf{};
      }
    }
    const float* p = P + k * G;
    for (int s = 0; s < G; s++) {
      const vf b = vsplat(p[s]);
      for (int j = 0; j < VO; j++) acc[s][j] += b * x[j];
    }
  }
}

/** Work over [0, L) in units of `unit`, on the pool unless maxThreads == 1. */
template <class F>
inline void split_long(int64_t L, int64_t unit, double flopsPerUnit, int maxThreads, F&& f) {
  const int64_t units = (L + unit - 1) / unit;
  int64_t grain = (int64_t)(kMinFlopsPerTask / (flopsPerUnit > 1.0 ? flopsPerUnit : 1.0)) + 1;
  if (maxThreads == 1) grain = units;
  parallel_for(units, grain, [&](int64_t b, int64_t e) { f(b * unit, e * unit < L ? e * unit : L); });
}

/**
 * Dot form. Short rows srow(s) = S + s * lds for s < ns (K-contiguous), long rows Lm + l * ldl.
 * Result (l, s) goes to C[l * cl + s * cs].
 */
void dot_form(int64_t ns, const float* S, int64_t lds, int64_t nl, const float* Lm, int64_t ldl, int64_t K,
              float alpha, float beta, float* C, int64_t cl, int64_t cs, int maxThreads) {
  split_long(nl, RD, 2.0 * (double)RD * (double)ns * (double)K, maxThreads, [&](int64_t l0, int64_t l1) {
    for (int64_t g0 = 0; g0 < ns; g0 += G) {
      const int64_t ng = ns - g0 < G ? ns - g0 : G;
      const float* srow[G];
      for (int s = 0; s < G; s++) srow[s] = S + (g0 + (s < ng ? s : 0)) * lds;  // padding rows repeat row 0
      int64_t l = l0;
      float dots[RD][G];
      for (; l + RD <= l1; l += RD) {
        const float* lrow[RD];
        for (int r = 0; r < RD; r++) lrow[r] = Lm + (l + r) * ldl;
        dot_block<RD>(K, lrow, srow, dots);
        for (int r = 0; r < RD; r++)
          for (int64_t s = 0; s < ng; s++) {
            float* c = C + (l + r) * cl + (g0 + s) * cs;
            *c = combine(alpha, dots[r][s], beta, *c);
          }
      }
      for (; l < l1; l++) {
        const float* lrow[1] = {Lm + l * ldl};
        dot_block<1>(K, lrow, srow, dots);
        for (int64_t s = 0; s < ng; s++) {
          float* c = C + l * cl + (g0 + s) * cs;
          *c = combine(alpha, dots[0][s], beta, *c);
        }
      }
    }
  });
}

/**
 * Outer-product form. P holds ceil(ns / G) packed groups of K * G values (P[g][k * G + s] = short
 * operand (g * G + s, k), 0 past ns); the long operand is V [K, nl] (row stride ldv). Result
 * (l, s) goes to C[l * cl + s * cs].
 */
void outer_form(int64_t ns, const float* P, int64_t nl, const float* V, int64_t ldv, int64_t K, float alpha,
                float beta, float* C, int64_t cl, int64_t cs, int maxThreads) {
  split_long(nl, W, 2.0 * (double)W * (double)ns * (double)K, maxThreads, [&](int64_t l0, int64_t l1) {
    // K is walked in blocks of KB rows of V, each block across the whole [l0, l1) range, so that V
    // is read as KB row streams rather than as narrow column strips (one page per row when V's
    // rows are long); the partial sums wait in `part` between blocks (stored and reloaded
    // exactly, so each element is still summed in k order).
    constexpr int64_t KB = 32;
    static thread_local AlignedBuffer partBuf;
    const int64_t chunks = (l1 - l0 + W - 1) / W;
    vf* part = reinterpret_cast<vf*>(partBuf.get((K > KB ? chunks : 0) * G * VO * kLanes));
    for (int64_t g0 = 0; g0 < ns; g0 += G) {
      const int64_t ng = ns - g0 < G ? ns - g0 : G;
      const float* Pg = P + (g0 / G) * K * G;
      for (int64_t kb = 0; kb < K; kb += KB) {
        const int64_t kn = K - kb < KB ? K - kb : KB;
        const bool first = kb == 0, last = kb + KB >= K;
        for (int64_t ch = 0; ch < chunks; ch++) {
          const int64_t l = l0 + ch * W;
          const int64_t width = l1 - l < W ? l1 - l : W;
          vf acc[G][VO];
          vf* saved = part + ch * G * VO;
          for (int s = 0; s < G; s++)
            for (int j = 0; j < VO; j++) acc[s][j] = first ? vf{} : saved[s * VO + j];
          if (width == W)
            outer_block<true>(kn, Pg + kb * G, V + kb * ldv + l, ldv, width, acc);
          else
            outer_block<false>(kn, Pg + kb * G, V + kb * ldv + l, ldv, width, acc);
          if (!last) {
            for (int s = 0; s < G; s++)
              for (int j = 0; j < VO; j++) saved[s * VO + j] = acc[s][j];
            continue;
          }
          if (cl == 1) {
            // C rows are short-side rows: contiguous along l
            for (int64_t s = 0; s < ng; s++) {
              float* c = C + (g0 + s) * cs + l;
              for (int j = 0; j < VO; j++) {
                const int64_t n = width - j * kLanes;
                if (n <= 0) break;
                const vf a = vsplat(alpha) * acc[s][j];
                if (n >= kLanes) {
                  vstore(c + j * kLanes, beta == 0.0f ? a : a + vsplat(beta) * vload(c + j * kLanes));
                } else {
                  const vf old = beta == 0.0f ? vf{} : load_tail(c + j * kLanes, n, 0.0f);
                  store_tail(c + j * kLanes, beta == 0.0f ? a : a + vsplat(beta) * old, n);
                }
              }
            }
          } else {
            float tmp[G][W];
            for (int s = 0; s < G; s++)
              for (int j = 0; j < VO; j++) vstore(&tmp[s][j * kLanes], acc[s][j]);
            for (int64_t i = 0; i < width; i++)
              for (int64_t s = 0; s < ng; s++) {
                float* c = C + (l + i) * cl + (g0 + s) * cs;
                *c = combine(alpha, tmp[s][i], beta, *c);
              }
          }
        }
      }
    }
  });
}

/**
 * Packs ns short rows for the outer form: P[g][k * G + s] = X(g * G + s, k), where X(s, k) =
 * src[s * rs + k * ks]; zero past ns.
 */
float* pack_groups(int64_t ns, int64_t K, const float* src, int64_t rs, int64_t ks) {
  static thread_local AlignedBuffer buf;
  const int64_t groups = (ns + G - 1) / G;
  float* P = buf.get(groups * K * G);
  for (int64_t g = 0; g < groups; g++) {
    float* Pg = P + g * K * G;
    for (int64_t k = 0; k < K; k++)
      for (int s = 0; s < G; s++) {
        const int64_t row = g * G + s;
        Pg[k * G + s] = row < ns ? src[row * rs + k * ks] : 0.0f;
      }
  }
  return P;
}

/** Copies ns rows X(s, k) = src[s * rs + k * ks] into a K-contiguous [ns, K] buffer. */
float* pack_rows(int64_t ns, int64_t K, const float* src, int64_t rs, int64_t ks) {
  static thread_local AlignedBuffer buf;
  float* out = buf.get(ns * K);
  for (int64_t s = 0; s < ns; s++)
    for (int64_t k = 0; k < K; k++) out[s * K + k] = src[s * rs + k * ks];
  return out;
}

}  // namespace

bool sgemm_skinny(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int maxThreads) {
  if (K <= 0 || M <= 0 || N <= 0) return false;
  // The outer form reads its long operand once per group of G short rows: past one group the
  // blocked GEMM (which reads it once) is as fast, so the outer form takes short sides <= G only.
  if (N <= kSkinnyMax && N <= M && (!transA || N <= G)) {
    // short side N: s = column of C, l = row of C
    if (!transA) {
      // dot form: long rows A[m, :]; short rows op(B)^T[n, :] = B[n, :] (transB) or B[:, n]
      const float* S = transB ? B : pack_rows(N, K, B, 1, ldb);
      dot_form(N, S, transB ? ldb : K, M, A, lda, K, alpha, beta, C, ldc, 1, maxThreads);
    } else {
      // outer form: long operand A [K, M] in place; short operand op(B)[k, n]
      const float* P = transB ? pack_groups(N, K, B, ldb, 1) : pack_groups(N, K, B, 1, ldb);
      outer_form(N, P, M, A, lda, K, alpha, beta, C, ldc, 1, maxThreads);
    }
    return true;
  }
  if (M <= kSkinnyMax && (transB || M <= G)) {
    // short side M: s = row of C, l = column of C
    if (transB) {
      // dot form: long rows B[n, :]; short rows op(A)[m, :] = A[m, :] or (transA) A[:, m]
      const float* S = transA ? pack_rows(M, K, A, 1, lda) : A;
      dot_form(M, S, transA ? K : lda, N, B, ldb, K, alpha, beta, C, 1, ldc, maxThreads);
    } else {
      // outer form: long operand B [K, N] in place; short operand op(A)[m, k]
      const float* P = transA ? pack_groups(M, K, A, 1, lda) : pack_groups(M, K, A, lda, 1);
      outer_form(M, P, N, B, ldb, K, alpha, beta, C, 1, ldc, maxThreads);
    }
    return true;
  }
  return false;
}

}  // namespace mt
