// The blocked GEMM loop nest (BLIS / GotoBLAS structure) for any source of op(B): the dense GEMM
// (gemm.cc) packs B from a float matrix, the NF4 GEMM (nf4_gemm.cc) dequantises 4-bit codes
// straight into the same panels. A `PackB` provides
//
//   void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nr, float* dst) const;
//     one panel: dst[k * NR + c] = op(B)[k0 + k, j0 + c] for k < kc, c < nr (nr <= NR), 0 for c >= nr
//   double cost() const;
//     the cost of packing one value, in micro-kernel flops (for choosing the thread grid)
//
// (Tried: software-prefetching the next product's B inside the micro-kernels, spread over their k
// loops, to overlap a cold weight's memory traffic with arithmetic: one isolated cold call got
// ~10 us faster, but the sequences of an MoE layer's expert products got 3-5% slower, so the
// plain structure stays.)
// (Tried: non-temporal stores for the experts' weight gradients (dW written once per step): the
// MoE layer's backward got ~0.6 ms faster, but the whole tiny-moe training step ~3.5 ms slower,
// because AdamW then reads the gradients from DRAM (~9 GB/s here) instead of L3 (~23 GB/s).)
//
// Each C element is summed over K in the same order (KC blocks in order, the micro-kernel's k
// loop within a block) whatever the thread count, so results do not depend on the split.
#pragma once

#include <cstdint>

#include "aligned_buffer.h"
#include "gemm_kernel.h"
#include "gemm_pack.h"
#include "thread_pool.h"

namespace mt {
namespace gemm {

// Cache blocking: an A micro-panel (KC x MR) stays in L1 while the packed B block (KC x NC)
// streams from L2; MC rows of A are packed at a time.
constexpr int64_t KC = 256;
constexpr int64_t MC = MR * 12;
constexpr int64_t NC = NR * 32;
// Below this many flops per thread, extra threads cost more than they save.
constexpr double kMinFlopsPerThread = 2.5e5;
// Packing one float costs about this many flops of micro-kernel time.
constexpr double kPackCostFlops = 16.0;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// [begin, end) of part `idx` of `parts` when `total` is split in whole units of `unit`.
inline void split_range(int64_t total, int parts, int64_t unit, int idx, int64_t& b, int64_t& e) {
  int64_t units = ceil_div(total, unit);
  b = units * idx / parts * unit;
  e = units * (idx + 1) / parts * unit;
  if (b > total) b = total;
  if (e > total) e = total;
}

/** The A operand, C and the scalars of one product; op(B) comes from a PackB. */
struct GemmAC {
  bool ta;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  float beta;
  float* C;
  int64_t ldc;
};

// Edge tile: the kernel writes a full MR x NR tile to a scratch buffer; only mr x nr lands in C.
inline void edge_tile(int64_t kc, const float* ap, const float* bp, float* C, int64_t ldc, int64_t mr, int64_t nr,
                      float alpha, float beta) {
  alignas(64) float tmp[MR * NR];
  micro_kernel(kc, ap, bp, tmp, NR, 1.0f, 0.0f);
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

// The first mr (< MR) rows of a full-width tile, straight into C (gemm_kernel.h, ROWS).
template <int R = MR - 1>
inline void row_tile(int64_t mr, int64_t kc, const float* ap, const float* bp, float* C, int64_t ldc, float alpha,
                     float beta) {
  if constexpr (R >= 1) {
    if (mr == R) return micro_kernel<R>(kc, ap, bp, C, ldc, alpha, beta);
    row_tile<R - 1>(mr, kc, ap, bp, C, ldc, alpha, beta);
  }
}

// All micro-tiles of an mc x nc block of C from packed panels (A panels aStride floats apart,
// B panels bStride floats apart, kc steps each).
inline void macro_kernel(int64_t mc, int64_t nc, int64_t kc, float alpha, const float* Ap, int64_t aStride,
                         const float* Bp, int64_t bStride, float beta, float* C, int64_t ldc) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t mr = min64(mc - ir, MR);
    const float* ap = Ap + (ir / MR) * aStride;
    for (int64_t jr = 0; jr < nc; jr += NR) {
      const int64_t nr = min64(nc - jr, NR);
      const float* bp = Bp + (jr / NR) * bStride;
      float* c = C + ir * ldc + jr;
      if (mr == MR && nr == NR)
        micro_kernel(kc, ap, bp, c, ldc, alpha, beta);
      else if (nr == NR)
        row_tile(mr, kc, ap, bp, c, ldc, alpha, beta);
      else
        edge_tile(kc, ap, bp, c, ldc, mr, nr, alpha, beta);
    }
  }
}

/** The whole blocked loop nest over one rectangle of C, on the calling thread. */
template <class PackB>
void gemm_region(const GemmAC& g, const PackB& pb, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (m0 >= m1 || n0 >= n1) return;
  static thread_local AlignedBuffer bufA, bufB;
  const int64_t kcMax = min64(g.K, KC);
  const int64_t ncMax = min64(n1 - n0, NC);
  const int64_t mcMax = min64(m1 - m0, MC);
  float* Ap = bufA.get(ceil_div(mcMax, MR) * MR * kcMax);
  float* Bp = bufB.get(ceil_div(ncMax, NR) * NR * kcMax);
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = min64(n1 - jc, NC);
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      const int64_t kc = min64(g.K - pc, KC);
      const float beta = pc == 0 ? g.beta : 1.0f;
      for (int64_t jr = 0; jr < nc; jr += NR) pb.pack(pc, kc, jc + jr, min64(nc - jr, NR), Bp + (jr / NR) * kc * NR);
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = min64(m1 - ic, MC);
        pack_a(g.ta, g.A, g.lda, ic, mc, pc, kc, Ap);
        macro_kernel(mc, nc, kc, g.alpha, Ap, kc * MR, Bp, kc * NR, beta, g.C + ic * g.ldc + jc, g.ldc);
      }
    }
  }
}

/**
 * C = alpha * op(A) * op(B) + beta * C with op(B) from `pb`, on up to maxThreads threads
 * (<= 0: the pool size). C is cut into tm x tn rectangles (tm * tn threads, the grid with the
 * least per-thread cost), one pool task each; every task runs the whole blocked loop on its
 * rectangle with its own packed panels, so the packed data stays in that core's caches. (Measured
 * against packing shared panels once and handing out many small tiles: 290-320 vs 255-270 GFLOP/s
 * at 512-2048, and 3 us vs 8 us at 64^3.)
 */
template <class PackB>
void gemm_threaded(const GemmAC& g, const PackB& pb, int maxThreads) {
  int nt = maxThreads <= 0 ? pool_threads() : maxThreads;
  const double flops = 2.0 * (double)g.M * (double)g.N * (double)g.K;
  const int byWork = (int)(flops / kMinFlopsPerThread);
  if (byWork < nt) nt = byWork < 1 ? 1 : byWork;
  if (nt <= 1) {
    gemm_region(g, pb, 0, g.M, 0, g.N);
    return;
  }
  const double bCost = pb.cost();
  int bestM = nt, bestN = 1;
  double best = -1.0;
  for (int tm = 1; tm <= nt; tm++) {
    if (nt % tm) continue;
    const int tn = nt / tm;
    if (ceil_div(g.M, MR) < tm || ceil_div(g.N, NR) < tn) continue;
    // per-thread cost: padded micro-kernel flops plus packing
    const double rows = (double)ceil_div(ceil_div(g.M, MR), tm) * MR;
    const double cols = (double)ceil_div(ceil_div(g.N, NR), tn) * NR;
    const double c = 2.0 * rows * cols * (double)g.K + (double)g.K * (kPackCostFlops * rows + bCost * cols);
    if (best < 0 || c < best) best = c, bestM = tm, bestN = tn;
  }
  if (best < 0) {
    gemm_region(g, pb, 0, g.M, 0, g.N);
    return;
  }
  auto body = [&](int task, int) {
    const int mi = task / bestN, ni = task % bestN;
    int64_t m0, m1, n0, n1;
    split_range(g.M, bestM, MR, mi, m0, m1);
    split_range(g.N, bestN, NR, ni, n0, n1);
    gemm_region(g, pb, m0, m1, n0, n1);
  };
  run_tasks(nt, body);
}

/** op(B) from a float matrix: B stored [K, N] (ldb >= N), or [N, K] when transB (ldb >= K). */
struct DenseB {
  bool tb;
  const float* B;
  int64_t ldb;

  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nr, float* dst) const {
    if (tb)
      panel_transpose<NR>(B + j0 * ldb + k0, ldb, kc, nr, dst);
    else
      panel_copy<NR>(B + k0 * ldb + j0, ldb, kc, nr, dst);
  }
  double cost() const { return kPackCostFlops; }
};

}  // namespace gemm
}  // namespace mt
