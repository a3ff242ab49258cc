// Reductions: sum / max / min along the middle axis of x viewed as [outer, axisLen, inner], and
// the float64 sum of squares used for gradient norms.
#pragma once

#include <cstdint>

namespace mt {

enum class ReduceOp { Sum, Max, Min };

/**
 * out[o, i] = op over a of x[o, a, i]. Sums accumulate in double. An empty axis gives 0 for sum,
 * -inf for max and +inf for min. max / min propagate NaN.
 */
void reduce(ReduceOp op, const float* x, int64_t outer, int64_t axisLen, int64_t inner, float* out);

/**
 * Sum of x[i]^2 in double. Fixed-size chunks are summed separately and then added in order, so
 * the result does not depend on the thread count.
 */
double sum_squares(const float* x, int64_t n);

}  // namespace mt
