// Row indexing kernels: embedding lookup, MoE dispatch (gather) and combine (scatter-add), and
// take-along-rows for top-k values. Indices are checked by the binding before these run.
#pragma once

#include <cstdint>

namespace mt {

/** out[i, :] = src[idx[i], :]. */
void gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t dim, float* out);

/**
 * out[idx[i], :] += w[i] * src[i, :] (w null: 1). Rows are added in order i = 0..n-1; threads
 * split the columns, so duplicate indices never race and results do not depend on thread count.
 */
void scatter_add_rows(const float* src, const int32_t* idx, const float* w, int64_t n, int64_t dim, float* out);

/**
 * scatter_add_rows onto out [rows, dim] as if it were zero, without the zeroing pass: each row is
 * the sum of its sources in order of i (the same roundings as scatter_add_rows onto zeros), rows no
 * index names are 0. Threads split the rows (each written once).
 */
void scatter_rows(const float* src, const int32_t* idx, const float* w, int64_t n, int64_t dim, int64_t rows, float* out);

/** out[i] = dot(a[idx[i], :], b[i, :]) (summed in double). */
void gather_row_dot(const float* a, const int32_t* idx, const float* b, int64_t n, int64_t dim, float* out);

/**
 * The backward of the weighted combine in one pass over the pairs: dsrc[i, :] = w[i] * dy[idx[i], :]
 * (float products, as gather_rows then a multiply) and dw[i] = dot(dy[idx[i], :], src[i, :]) (as
 * gather_row_dot); either output may be null.
 */
void scatter_rows_backward(const float* dy, const int32_t* idx, const float* w, const float* src, int64_t n, int64_t dim,
                           float* dsrc, float* dw);

/** out[r, j] = x[r, idx[r, j]] for x [rows, cols], idx [rows, k]. */
void take_along_rows(const float* x, const int32_t* idx, int64_t rows, int64_t cols, int64_t k, float* out);

/** dx[r, idx[r, j]] += dy[r, j] (accumulates; rows are independent). */
void take_along_rows_backward(const float* dy, const int32_t* idx, int64_t rows, int64_t cols, int64_t k, float* dx);

}  // namespace mt
