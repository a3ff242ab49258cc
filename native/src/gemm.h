// Blocked single-precision GEMM with packing (BLIS / GotoBLAS structure):
//   C[M,N] = alpha * op(A) * op(B) + beta * C,  row-major with leading dimensions.
// op(A) is [M,K]: A stored [M,K] (lda >= K), or [K,M] when transA (lda >= M).
// op(B) is [K,N]: B stored [K,N] (ldb >= N), or [N,K] when transB (ldb >= K).
// beta == 0 writes C without reading it. Each C element is summed over K in the same order
// whatever the thread count, so results do not depend on how the work is split.
#pragma once

#include <cstdint>

namespace mt {

/** maxThreads <= 0: use the pool size; 1: stay on the calling thread. */
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int maxThreads);

/** One product of a group: C = alpha * op(A) * op(B) + beta * C with its own sizes and operands. */
struct GemmProblem {
  int64_t M, N, K;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
};

/**
 * Runs `count` independent products (same transposes, alpha and beta) as one pool job: each
 * product is one task, or a few when it is large next to the others, largest first, so the
 * threads share out whole products (an expert each) instead of splitting every small product in
 * two. Results are those of sgemm on each product, whatever the thread count.
 */
void sgemm_grouped(bool transA, bool transB, int64_t count, const GemmProblem* problems, float alpha, float beta,
                   int maxThreads);

// ------------------------------------------------------------------ packed operands
// For callers that reuse an operand across many products (attention reuses K and V panels for
// every query block). A packed A holds ceil(M / MR) panels of K * MR floats (Ap[p][k][r]), a
// packed B ceil(N / NR) panels of K * NR floats (Bp[q][k][c]); panels past M / N are zero-padded.
// Rows k0.. of a packed operand start at Ap + k0 * MR (Bp + k0 * NR) with the panel stride of the
// full pack, and panel p starts at p * stride.

int64_t gemm_mr();
int64_t gemm_nr();
/** Floats in a packed op(A) [M, K] / op(B) [K, N]. */
int64_t gemm_packed_a_size(int64_t M, int64_t K);
int64_t gemm_packed_b_size(int64_t K, int64_t N);
void gemm_pack_a(bool transA, int64_t M, int64_t K, const float* A, int64_t lda, float* Ap);
void gemm_pack_b(bool transB, int64_t K, int64_t N, const float* B, int64_t ldb, float* Bp);

/**
 * C[M,N] = alpha * A * B + beta * C on the calling thread, from packed panels over K steps;
 * aPanelStride / bPanelStride are the distances (floats) between consecutive panels (K * MR and
 * K * NR for a pack made with this K).
 */
void sgemm_packed(int64_t M, int64_t N, int64_t K, float alpha, const float* Ap, int64_t aPanelStride,
                  const float* Bp, int64_t bPanelStride, float beta, float* C, int64_t ldc);

}  // namespace mt
