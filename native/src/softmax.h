// Row softmax and log-softmax over x [rows, cols] (max trick; sums in double), and their backward.
#pragma once

#include <cstdint>

namespace mt {

/** out may alias x. */
void softmax_forward(const float* x, int64_t rows, int64_t cols, float* out);
/** dx = y * (dy - sum(dy * y)) per row. */
void softmax_backward(const float* y, const float* dy, int64_t rows, int64_t cols, float* dx);
/** out = x - logsumexp(x) per row; out may alias x. */
void log_softmax_forward(const float* x, int64_t rows, int64_t cols, float* out);
/** dx = dy - exp(y) * sum(dy) per row. */
void log_softmax_backward(const float* y, const float* dy, int64_t rows, int64_t cols, float* dx);

/** max of a row (NaN propagates); -inf for an empty row. */
float row_max(const float* x, int64_t n);
/** out[i] = exp(x[i] - m); returns the sum of out in double. out may alias x. */
double exp_shifted_sum(const float* x, float m, float* out, int64_t n);
/** sum of exp(x[i] - m) in double, nothing stored. */
double exp_shifted_sum(const float* x, float m, int64_t n);

}  // namespace mt
