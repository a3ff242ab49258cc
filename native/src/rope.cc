#include "rope.h"

#include "thread_pool.h"

namespace mt {

void rope(const float* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t Dh,
          bool inverse, float* out) {
  const int64_t half = Dh / 2;
  const double sgn = inverse ? -1.0 : 1.0;
  const int64_t rows = B * T;  // one (b, t) row holds H heads of Dh values
  parallel_for(rows, (1 << 14) / (H * Dh > 0 ? H * Dh : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t bt = b; bt < e; bt++) {
      const int64_t t = bt % T;
      const float* c = cos + t * half;
      const float* s = sin + t * half;
      for (int64_t h = 0; h < H; h++) {
        const float* xi = x + (bt * H + h) * Dh;
        float* o = out + (bt * H + h) * Dh;
        for (int64_t i = 0; i < half; i++) {
          double x1 = xi[i], x2 = xi[i + half];
          double cv = c[i], sv = sgn * (double)s[i];
          o[i] = (float)(x1 * cv - x2 * sv);
          o[i + half] = (float)(x2 * cv + x1 * sv);
        }
      }
    }
  });
}

}  // namespace mt
