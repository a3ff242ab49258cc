#include "gemm.h"

#include "aligned_buffer.h"
#include "gemm_kernel.h"
#include "gemm_pack.h"
#include "gemv.h"
#include "thread_pool.h"

namespace mt {
namespace {

using gemm::MR;
using gemm::NR;

// Cache blocking: an A micro-panel (KC x MR) stays in L1 while the packed B block (KC x NC)
// streams from L2; MC rows of A are packed at a time.
constexpr int64_t KC = 256;
constexpr int64_t MC = MR * 12;
constexpr int64_t NC = NR * 32;
// Below this many flops per thread, extra threads cost more than they save.
constexpr double kMinFlopsPerThread = 2.5e5;
// Packing one float costs about this many flops of micro-kernel time.
constexpr double kPackCostFlops = 16.0;

struct GemmArgs {
  bool ta, tb;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// [begin, end) of part `idx` of `parts` when `total` is split in whole units of `unit`.
inline void split_range(int64_t total, int parts, int64_t unit, int idx, int64_t& b, int64_t& e) {
  int64_t units = ceil_div(total, unit);
  b = units * idx / parts * unit;
  e = units * (idx + 1) / parts * unit;
  if (b > total) b = total;
  if (e > total) e = total;
}

// Edge tile: the kernel writes a full MR x NR tile to a scratch buffer; only mr x nr lands in C.
inline void edge_tile(int64_t kc, const float* ap, const float* bp, float* C, int64_t ldc, int64_t mr,
                      int64_t nr, float alpha, float beta) {
  alignas(64) float tmp[MR * NR];
  gemm::micro_kernel(kc, ap, bp, tmp, NR, 1.0f, 0.0f);
  for (int64_t r = 0; r < mr; r++) {
    float* c = C + r * ldc;
    const float* t = tmp + r * NR;
    if (beta == 0.0f) {
      for (int64_t j = 0; j < nr; j++) c[j] = alpha * t[j];
    } else {
      for (int64_t j = 0; j < nr; j++) c[j] = alpha * t[j] + beta * c[j];
    }
  }
}

// All micro-tiles of an mc x nc block of C from packed panels (A panels aStride floats apart,
// B panels bStride floats apart, kc steps each).
void macro_kernel(int64_t mc, int64_t nc, int64_t kc, float alpha, const float* Ap, int64_t aStride,
                  const float* Bp, int64_t bStride, float beta, float* C, int64_t ldc) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    int64_t mr = mc - ir < MR ? mc - ir : MR;
    const float* ap = Ap + (ir / MR) * aStride;
    for (int64_t jr = 0; jr < nc; jr += NR) {
      int64_t nr = nc - jr < NR ? nc - jr : NR;
      const float* bp = Bp + (jr / NR) * bStride;
      float* c = C + ir * ldc + jr;
      if (mr == MR && nr == NR)
        gemm::micro_kernel(kc, ap, bp, c, ldc, alpha, beta);
      else
        edge_tile(kc, ap, bp, c, ldc, mr, nr, alpha, beta);
    }
  }
}

// The whole blocked loop nest over one rectangle of C, on the calling thread.
void gemm_region(const GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (m0 >= m1 || n0 >= n1) return;
  static thread_local AlignedBuffer bufA, bufB;
  int64_t kcMax = g.K < KC ? g.K : KC;
  int64_t ncMax = n1 - n0 < NC ? n1 - n0 : NC;
  int64_t mcMax = m1 - m0 < MC ? m1 - m0 : MC;
  float* Ap = bufA.get(ceil_div(mcMax, MR) * MR * kcMax);
  float* Bp = bufB.get(ceil_div(ncMax, NR) * NR * kcMax);
  for (int64_t jc = n0; jc < n1; jc += NC) {
    int64_t nc = n1 - jc < NC ? n1 - jc : NC;
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      int64_t kc = g.K - pc < KC ? g.K - pc : KC;
      float beta = pc == 0 ? g.beta : 1.0f;
      gemm::pack_b(g.tb, g.B, g.ldb, pc, kc, jc, nc, Bp);
      for (int64_t ic = m0; ic < m1; ic += MC) {
        int64_t mc = m1 - ic < MC ? m1 - ic : MC;
        gemm::pack_a(g.ta, g.A, g.lda, ic, mc, pc, kc, Ap);
        macro_kernel(mc, nc, kc, g.alpha, Ap, kc * MR, Bp, kc * NR, beta, g.C + ic * g.ldc + jc, g.ldc);
      }
    }
  }
}

// Per-thread cost of splitting C into tm x tn rectangles: padded micro-kernel flops plus packing.
double grid_cost(const GemmArgs& g, int tm, int tn) {
  double rows = (double)ceil_div(ceil_div(g.M, MR), tm) * MR;
  double cols = (double)ceil_div(ceil_div(g.N, NR), tn) * NR;
  return 2.0 * rows * cols * (double)g.K + kPackCostFlops * (double)g.K * (rows + cols);
}

void scale_c(float* C, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * ldc;
    if (beta == 0.0f)
      for (int64_t j = 0; j < N; j++) c[j] = 0.0f;
    else
      for (int64_t j = 0; j < N; j++) c[j] = beta * c[j];
  }
}

// M == 1 or N == 1: a matrix-vector product on the unpacked operands.
void gemv_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int maxThreads) {
  static thread_local AlignedBuffer vecBuf, outBuf;
  // The vector operand, made contiguous when it is strided.
  auto contiguous = [&](const float* p, int64_t stride) -> const float* {
    if (stride == 1) return p;
    float* v = vecBuf.get(K);
    for (int64_t k = 0; k < K; k++) v[k] = p[k * stride];
    return v;
  };
  if (M == 1) {
    const float* a = contiguous(A, ta ? lda : 1);
    if (tb)
      gemv_rows(N, K, alpha, B, ldb, a, beta, C, 1, maxThreads);
    else
      gemv_cols(N, K, alpha, B, ldb, a, beta, C, maxThreads);
    return;
  }
  const float* b = contiguous(B, tb ? 1 : ldb);
  if (!ta) {
    gemv_rows(M, K, alpha, A, lda, b, beta, C, ldc, maxThreads);
  } else if (ldc == 1) {
    gemv_cols(M, K, alpha, A, lda, b, beta, C, maxThreads);
  } else {
    float* y = outBuf.get(M);
    gemv_cols(M, K, alpha, A, lda, b, 0.0f, y, maxThreads);
    for (int64_t i = 0; i < M; i++) C[i * ldc] = beta == 0.0f ? y[i] : y[i] + beta * C[i * ldc];
  }
}

}  // namespace

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int maxThreads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(C, M, N, ldc, beta);
    return;
  }
  if (M == 1 || N == 1) {
    gemv_case(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, maxThreads);
    return;
  }
  GemmArgs g{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  int nt = maxThreads <= 0 ? pool_threads() : maxThreads;
  double flops = 2.0 * (double)M * (double)N * (double)K;
  int byWork = (int)(flops / kMinFlopsPerThread);
  if (byWork < nt) nt = byWork < 1 ? 1 : byWork;
  if (nt <= 1) {
    gemm_region(g, 0, M, 0, N);
    return;
  }
  // Threads: C is cut into tm x tn rectangles (tm * tn = nt, the grid with the least per-thread
  // cost), one pool task each; every task runs the whole blocked loop on its rectangle with its
  // own packed panels, so the packed data stays in that core's caches. (Measured here against
  // packing shared panels once and handing out many small tiles: 290-320 vs 255-270 GFLOP/s
  // at 512-2048, and 3 us vs 8 us at 64^3.)
  int bestM = nt, bestN = 1;
  double best = -1.0;
  for (int tm = 1; tm <= nt; tm++) {
    if (nt % tm) continue;
    int tn = nt / tm;
    if (ceil_div(M, MR) < tm || ceil_div(N, NR) < tn) continue;
    double c = grid_cost(g, tm, tn);
    if (best < 0 || c < best) best = c, bestM = tm, bestN = tn;
  }
  if (best < 0) {
    gemm_region(g, 0, M, 0, N);
    return;
  }
  auto body = [&](int task, int) {
    int mi = task / bestN, ni = task % bestN;
    int64_t m0, m1, n0, n1;
    split_range(M, bestM, MR, mi, m0, m1);
    split_range(N, bestN, NR, ni, n0, n1);
    gemm_region(g, m0, m1, n0, n1);
  };
  run_tasks(nt, body);
}

int64_t gemm_mr() { return MR; }
int64_t gemm_nr() { return NR; }
int64_t gemm_packed_a_size(int64_t M, int64_t K) { return ceil_div(M, MR) * MR * K; }
int64_t gemm_packed_b_size(int64_t K, int64_t N) { return ceil_div(N, NR) * NR * K; }

void gemm_pack_a(bool transA, int64_t M, int64_t K, const float* A, int64_t lda, float* Ap) {
  gemm::pack_a(transA, A, lda, 0, M, 0, K, Ap);
}

void gemm_pack_b(bool transB, int64_t K, int64_t N, const float* B, int64_t ldb, float* Bp) {
  gemm::pack_b(transB, B, ldb, 0, K, 0, N, Bp);
}

void sgemm_packed(int64_t M, int64_t N, int64_t K, float alpha, const float* Ap, int64_t aPanelStride,
                  const float* Bp, int64_t bPanelStride, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_c(C, M, N, ldc, beta);
    return;
  }
  macro_kernel(M, N, K, alpha, Ap, aPanelStride, Bp, bPanelStride, beta, C, ldc);
}

}  // namespace mt
