// GEMMs with one short side (M or N <= kSkinnyMax): router projections (x [T, D] against 8-16
// router rows) and LoRA's rank-r products. The blocked GEMM would pad the short side to a full
// micro-tile (N = 8 uses 8 of 32 columns) and pack the long operand for a handful of uses, so
// these take one of two unpacked forms instead:
//  - dot form, when both operands run along K in memory (C = A B^T with A [M, K], B [N, K]):
//    16-lane partial dot products of a few long rows against up to 8 short rows, reduced at the
//    end;
//  - outer-product form, when the long operand runs along its long side (A^T B, or A B with a
//    short A): per k, a few vectors of the long operand times up to 8 broadcast values of the
//    short one.
// The outer form reads its long operand once per 8 short rows, so it takes short sides <= 8
// (beyond, the blocked GEMM is as fast). The short operand is copied (transposed where needed)
// into a small buffer; the long one is read where it lies. Work is split over the long side, so each C element has one summation
// order whatever the thread count.
#pragma once

#include <cstdint>

namespace mt {

constexpr int64_t kSkinnyMax = 16;

/**
 * C = alpha * op(A) * op(B) + beta * C as sgemm (gemm.h), when min(M, N) <= kSkinnyMax and the
 * other sides are long enough for it to pay; returns false (nothing done) otherwise.
 */
bool sgemm_skinny(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int maxThreads);

}  // namespace mt
