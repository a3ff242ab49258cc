// Matrix-vector products for the GEMM shapes with M == 1 or N == 1 (decoding one token, a
// router over one row), where packing a whole operand for one row or column would cost more
// than the product itself.
#pragma once

#include <cstdint>

namespace mt {

/**
 * y[i * incy] = alpha * dot(x, Mat[i * ld : i * ld + K]) + beta * y[i * incy] for i < rows.
 * x is contiguous (K floats). beta == 0 does not read y.
 */
void gemv_rows(int64_t rows, int64_t K, float alpha, const float* Mat, int64_t ld, const float* x, float beta,
               float* y, int64_t incy, int maxThreads);

/**
 * y[j] = alpha * sum_k x[k] * Mat[k * ld + j] + beta * y[j] for j < cols (y contiguous).
 * x is contiguous (K floats). beta == 0 does not read y.
 */
void gemv_cols(int64_t cols, int64_t K, float alpha, const float* Mat, int64_t ld, const float* x, float beta,
               float* y, int maxThreads);

}  // namespace mt
