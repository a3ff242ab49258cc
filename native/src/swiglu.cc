#include "swiglu.h"

#include "simd.h"
#include "thread_pool.h"

namespace mt {
namespace {
constexpr int64_t kGrain = 1 << 14;
}

void swiglu_forward(const float* g, const float* u, float* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    map2(g + b, u + b, out + b, e - b, [](auto gv, auto uv) { return gv / (1.0f + fexp_ftz(-gv)) * uv; });
  });
}

void swiglu_backward(const float* g, const float* u, const float* dout, float* dg, float* du, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes) {
      vf gv = vload(g + i), uv = vload(u + i), d = vload(dout + i);
      vf s = 1.0f / (1.0f + vexp_ftz(-gv));
      vstore(dg + i, d * uv * (s * (1.0f + gv * (1.0f - s))));
      vstore(du + i, d * (gv * s));
    }
    for (; i < e; i++) {
      float gv = g[i], uv = u[i], d = dout[i];
      float s = 1.0f / (1.0f + sexp_ftz(-gv));
      dg[i] = d * uv * (s * (1.0f + gv * (1.0f - s)));
      du[i] = d * (gv * s);
    }
  });
}

}  // namespace mt
