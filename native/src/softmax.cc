#include "softmax.h"

#include <cmath>
#include <limits>

#include "simd.h"
#include "thread_pool.h"

namespace mt {
namespace {
constexpr int64_t kGrain = 1 << 13;  // elements per thread, at least (exp-bound)

template <class F>
void by_rows(int64_t rows, int64_t cols, F&& f) {
  parallel_for(rows, kGrain / (cols > 0 ? cols : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) f(r);
  });
}

}  // namespace

float row_max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  // Four independent accumulators hide the latency of the NaN-aware max.
  vf a0 = vsplat(m), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    a0 = vmax_nan(vload(x + i), a0);
    a1 = vmax_nan(vload(x + i + kLanes), a1);
    a2 = vmax_nan(vload(x + i + 2 * kLanes), a2);
    a3 = vmax_nan(vload(x + i + 3 * kLanes), a3);
  }
  for (; i + kLanes <= n; i += kLanes) a0 = vmax_nan(vload(x + i), a0);
  if (i < n) a1 = vmax_nan(load_tail(x + i, n - i, m), a1);
  return hmax_nan(vmax_nan(vmax_nan(a0, a1), vmax_nan(a2, a3)));
}

double exp_shifted_sum(const float* x, float m, float* out, int64_t n) {
  vd lo{}, hi{};
  const vf mv = vsplat(m);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    vf e = vexp_ftz(vload(x + i) - mv);
    vstore(out + i, e);
    add_wide(lo, hi, e);
  }
  if (i < n) {  // the tail through one padded vector (exp(-inf) = 0 in the unused lanes)
    vf e = vexp_ftz(load_tail(x + i, n - i, -std::numeric_limits<float>::infinity()) - mv);
    store_tail(out + i, e, n - i);
    add_wide(lo, hi, e);
  }
  return hsum_wide(lo, hi);
}

double exp_shifted_sum(const float* x, float m, int64_t n) {
  vd lo{}, hi{};
  const vf mv = vsplat(m);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) add_wide(lo, hi, vexp_ftz(vload(x + i) - mv));
  if (i < n) add_wide(lo, hi, vexp_ftz(load_tail(x + i, n - i, -std::numeric_limits<float>::infinity()) - mv));
  return hsum_wide(lo, hi);
}

void softmax_forward(const float* x, int64_t rows, int64_t cols, float* out) {
  if (cols > 0 && cols < kLanes) {
    // Short rows (router probabilities over a few experts): one padded vector per row.
    by_rows(rows, cols, [&](int64_t r) {
      const float ninf = -std::numeric_limits<float>::infinity();
      const vf v = load_tail(x + r * cols, cols, ninf);
      const vf e = vexp_ftz(v - vsplat(hmax_nan(v)));
      vd lo{}, hi{};
      add_wide(lo, hi, e);
      store_tail(out + r * cols, e * (float)(1.0 / hsum_wide(lo, hi)), cols);
    });
    return;
  }
  by_rows(rows, cols, [&](int64_t r) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    float m = row_max(xr, cols);
    double s = exp_shifted_sum(xr, m, o, cols);
    const float inv = (float)(1.0 / s);  // as the js backend: e * (1 / sum)
    map1(o, o, cols, [inv](auto e) { return e * inv; });
  });
}

void softmax_backward(const float* y, const float* dy, int64_t rows, int64_t cols, float* dx) {
  by_rows(rows, cols, [&](int64_t r) {
    const float* yr = y + r * cols;
    const float* dyr = dy + r * cols;
    // dy - s in double: dy and s nearly cancel where y carries most of the gradient.
    const double s = dot_d(dyr, yr, cols);
    float* o = dx + r * cols;
    const vd sv = vd{} + s;
    int64_t i = 0;
    for (; i + kLanesD <= cols; i += kLanesD) vstore_d(o + i, vload_d(yr + i) * (vload_d(dyr + i) - sv));
    for (; i < cols; i++) o[i] = (float)((double)yr[i] * ((double)dyr[i] - s));
  });
}

void log_softmax_forward(const float* x, int64_t rows, int64_t cols, float* out) {
  by_rows(rows, cols, [&](int64_t r) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    float m = row_max(xr, cols);
    double lse = (double)m + std::log(exp_shifted_sum(xr, m, cols));
    // x - lse in double, one rounding per output.
    int64_t i = 0;
    const vd l = vd{} + lse;
    for (; i + kLanesD <= cols; i += kLanesD) vstore_d(o + i, vload_d(xr + i) - l);
    for (; i < cols; i++) o[i] = (float)((double)xr[i] - lse);
  });
}

void log_softmax_backward(const float* y, const float* dy, int64_t rows, int64_t cols, float* dx) {
  by_rows(rows, cols, [&](int64_t r) {
    const float* yr = y + r * cols;
    const float* dyr = dy + r * cols;
    // dy - exp(y) s in double (the two nearly cancel on the likely classes).
    const double s = sum_d(dyr, cols);
    float* o = dx + r * cols;
    const vd sv = vd{} + s;
    int64_t i = 0;
    for (; i + kLanes <= cols; i += kLanes) {
      float p[kLanes];
      vstore(p, vexp_ftz(vload(yr + i)));
      vstore_d(o + i, vload_d(dyr + i) - vload_d(p) * sv);
      vstore_d(o + i + kLanesD, vload_d(dyr + i + kLanesD) - vload_d(p + kLanesD) * sv);
    }
    for (; i < cols; i++) o[i] = (float)((double)dyr[i] - (double)sexp_ftz(yr[i]) * s);
  });
}

}  // namespace mt
