#include "rmsnorm.h"

#include <cmath>

#include "simd.h"
#include "thread_pool.h"

namespace mt {
namespace {
constexpr int64_t kGrain = 1 << 14;  // elements per thread, at least
}

void rmsnorm_forward(const float* x, const float* w, float eps, int64_t rows, int64_t dim, float* out, float* rstd) {
  parallel_for(rows, kGrain / (dim > 0 ? dim : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* xr = x + r * dim;
      float* o = out + r * dim;
      double ms = dim > 0 ? dot_d(xr, xr, dim) / (double)dim : 0.0;
      const double rs = 1.0 / std::sqrt(ms + (double)eps);
      rstd[r] = (float)rs;
      for (int64_t j = 0; j < dim; j++) o[j] = (float)((double)w[j] * ((double)xr[j] * rs));
    }
  });
}

void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t rows, int64_t dim,
                      float* dx, float* dw) {
  parallel_for(rows, kGrain / (dim > 0 ? dim : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      const double m = dim > 0 ? dot3_d(w, dyr, xr, dim) / (double)dim : 0.0;
      // rstd (w dy - x rstd^2 m) in double: the two terms may cancel.
      const double rs = rstd[r];
      const double c = m * rs * rs;
      float* o = dx + r * dim;
      for (int64_t j = 0; j < dim; j++) o[j] = (float)(rs * ((double)w[j] * (double)dyr[j] - (double)xr[j] * c));
    }
  });
  // dw by column blocks: every thread walks all rows for its own columns.
  constexpr int64_t CB = 256;
  int64_t blocks = (dim + CB - 1) / CB;
  parallel_for(blocks, kGrain / (rows * CB > 0 ? rows * CB : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; blk++) {
      int64_t j0 = blk * CB, n = dim - j0 < CB ? dim - j0 : CB;
      double acc[CB];
      for (int64_t j = 0; j < n; j++) acc[j] = 0.0;
      for (int64_t r = 0; r < rows; r++) {
        const float* dyr = dy + r * dim + j0;
        const float* xr = x + r * dim + j0;
        const double rs = rstd[r];
        for (int64_t j = 0; j < n; j++) acc[j] += (double)dyr[j] * (double)xr[j] * rs;
      }
      for (int64_t j = 0; j < n; j++) dw[j0 + j] = (float)((double)dw[j0 + j] + acc[j]);
    }
  });
}

}  // namespace mt
