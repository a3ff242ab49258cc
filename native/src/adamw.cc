#include "adamw.h"

#include <cmath>

#include "thread_pool.h"

namespace mt {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double b1, double b2, double eps,
           double wd, double bc1, double bc2, double gradScale) {
  const double decay = 1.0 - lr * wd, c1 = 1.0 - b1, c2 = 1.0 - b2;
  const double lrOverBc1 = lr / bc1, invBc2 = 1.0 / bc2;
  const float epsf = (float)eps;
  parallel_for(n, 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      double gi = gradScale * (double)g[i];
      double mi = b1 * (double)m[i] + c1 * gi;
      double vi = b2 * (double)v[i] + c2 * gi * gi;
      m[i] = (float)mi;
      v[i] = (float)vi;
      // The step's square root and division in float (16 lanes, 4x the double throughput); its
      // rounding (~1e-7 of a step of size ~lr) is far below one ulp of p.
      float step = (float)(lrOverBc1 * mi) / (std::sqrt((float)(vi * invBc2)) + epsf);
      p[i] = (float)((double)p[i] * decay - (double)step);
    }
  });
}

}  // namespace mt
