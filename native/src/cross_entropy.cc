#include "cross_entropy.h"

#include <cmath>

#include "simd.h"
#include "softmax.h"
#include "thread_pool.h"

namespace mt {
namespace {
constexpr int64_t kGrain = 1 << 13;
}

void cross_entropy_forward(const float* logits, const int32_t* targets, int64_t rows, int64_t V,
                           int32_t ignoreIndex, float* losses, float* lse) {
  parallel_for(rows, kGrain / (V > 0 ? V : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* x = logits + r * V;
      float m = row_max(x, V);
      double l = (double)m + std::log(exp_shifted_sum(x, m, V));
      lse[r] = (float)l;
      int32_t t = targets[r];
      losses[r] = t == ignoreIndex ? 0.0f : (float)(l - (double)x[t]);
    }
  });
}

void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse, const float* dlosses,
                            int64_t rows, int64_t V, int32_t ignoreIndex, float* dlogits) {
  parallel_for(rows, kGrain / (V > 0 ? V : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* x = logits + r * V;
      float* d = dlogits + r * V;
      int32_t t = targets[r];
      if (t == ignoreIndex) {
        for (int64_t j = 0; j < V; j++) d[j] = 0.0f;
        continue;
      }
      const float l = lse[r], g = dlosses[r];
      map1(x, d, V, [l, g](auto v) { return g * fexp_ftz(v - l); });
      d[t] = g * (sexp_ftz(x[t] - l) - 1.0f);
    }
  });
}

}  // namespace mt
