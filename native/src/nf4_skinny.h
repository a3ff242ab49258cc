// The NF4 GEMM for a handful of rows of A: the input gradient dX = dY W of a QLoRA expert, whose
// ~16 rows (128 tokens x top-8 over 64 experts) are too few to repay dequantising W into packed
// panels or a float slab. Each weight vector is dequantised in registers straight from its codes
// (the nibbles index the 16-entry code table, times the block's scale) and multiplied into up to
// 16 rows of accumulators at once, so every weight value is dequantised once per 16 rows.
//
// The arithmetic is the outer-product form of the dense skinny GEMM (gemm_skinny.cc): each C
// element is one multiply-add chain over W's rows in order, then alpha / beta as it applies them,
// so the result is bit-identical to the dense GEMM on the dequantised weight done in groups of at
// most 8 rows (test/native-nf4-gemm.test.ts).
#pragma once

#include <cstdint>

#include "nf4_gemm.h"

namespace mt {

/** The most rows of A nf4_gemm_skinny takes. */
constexpr int64_t kNf4SkinnyMaxRows = 16;

/**
 * C[M, N] = A[M, K] * W^T + beta * C (W [N, K] NF4) for 2 <= M <= kNf4SkinnyMaxRows and N >= 2,
 * under the same condition on the blocks; returns false (nothing done) otherwise. The dense dot
 * form's arithmetic: bit-identical to the dense GEMM on the dequantised weight.
 */
bool nf4_gemm_skinny_t(int64_t M, const float* A, const Nf4Weight& w, float beta, float* C, int maxThreads);

/**
 * C[M, K] = A[M, N] * W + beta * C (W [N, K] NF4) for 2 <= M <= kNf4SkinnyMaxRows, when the weight's
 * blocks tile its rows in whole vectors (power-of-two blockSize, a multiple of the vector width,
 * dividing K); returns false (nothing done) otherwise. maxThreads <= 0: the pool size.
 */
bool nf4_gemm_skinny_n(int64_t M, const float* A, const Nf4Weight& w, float beta, float* C, int maxThreads);

}  // namespace mt
