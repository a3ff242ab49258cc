// RMSNorm over the rows of x [rows, dim]: out = w * x * rstd, rstd = 1 / sqrt(mean(x^2) + eps),
// with the mean accumulated in double.
#pragma once

#include <cstdint>

namespace mt {

void rmsnorm_forward(const float* x, const float* w, float eps, int64_t rows, int64_t dim, float* out, float* rstd);

/**
 * dx[r, j] = rstd * (w_j dy_j - x_j rstd^2 mean_i(w_i dy_i x_i)) (written);
 * dw[j] += sum_r dy[r, j] x[r, j] rstd[r] (accumulated; split by columns, so no races and a
 * result independent of the thread count).
 */
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t rows, int64_t dim,
                      float* dx, float* dw);

}  // namespace mt
