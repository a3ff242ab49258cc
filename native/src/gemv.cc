#include "gemv.h"

#include "simd.h"
#include "thread_pool.h"

namespace mt {
namespace {

// About this many multiply-adds per thread before a second thread pays off.
constexpr int64_t kMinWorkPerThread = 1 << 16;

inline float dot(const float* a, const float* b, int64_t n) {
  vf s0{}, s1{};
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    s0 += vload(a + i) * vload(b + i);
    s1 += vload(a + i + kLanes) * vload(b + i + kLanes);
  }
  for (; i + kLanes <= n; i += kLanes) s0 += vload(a + i) * vload(b + i);
  float s = hsum(s0 + s1);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

template <class F>
inline void split(int64_t count, int64_t grain, int maxThreads, F&& f) {
  if (maxThreads == 1)
    f((int64_t)0, count);
  else
    parallel_for(count, grain, f);
}

}  // namespace

void gemv_rows(int64_t rows, int64_t K, float alpha, const float* Mat, int64_t ld, const float* x, float beta,
               float* y, int64_t incy, int maxThreads) {
  int64_t grain = kMinWorkPerThread / (K > 0 ? K : 1) + 1;
  split(rows, grain, maxThreads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      float d = alpha * dot(x, Mat + i * ld, K);
      float* yi = y + i * incy;
      *yi = beta == 0.0f ? d : d + beta * *yi;
    }
  });
}

void gemv_cols(int64_t cols, int64_t K, float alpha, const float* Mat, int64_t ld, const float* x, float beta,
               float* y, int maxThreads) {
  constexpr int V = kVecBytes == 64 ? 16 : 8;  // accumulator vectors (fit the register file)
  constexpr int64_t CB = V * kLanes;           // columns kept in registers across the k loop
  int64_t blocks = (cols + CB - 1) / CB;
  int64_t grain = kMinWorkPerThread / (K * CB > 0 ? K * CB : 1) + 1;
  split(blocks, grain, maxThreads, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; blk++) {
      int64_t j0 = blk * CB;
      int64_t n = cols - j0 < CB ? cols - j0 : CB;
      if (n == CB) {
        vf acc[V];
        for (int v = 0; v < V; v++) acc[v] = vf{};
        for (int64_t k = 0; k < K; k++) {
          vf xk = vsplat(x[k]);
          const float* row = Mat + k * ld + j0;
          for (int v = 0; v < V; v++) acc[v] += xk * vload(row + v * kLanes);
        }
        for (int v = 0; v < V; v++) {
          float* yv = y + j0 + v * kLanes;
          vf r = alpha * acc[v];
          if (beta != 0.0f) r += beta * vload(yv);
          vstore(yv, r);
        }
      } else {
        float acc[CB];
        for (int64_t j = 0; j < n; j++) acc[j] = 0.0f;
        for (int64_t k = 0; k < K; k++) {
          float xk = x[k];
          const float* row = Mat + k * ld + j0;
          for (int64_t j = 0; j < n; j++) acc[j] += xk * row[j];
        }
        for (int64_t j = 0; j < n; j++) y[j0 + j] = beta == 0.0f ? alpha * acc[j] : alpha * acc[j] + beta * y[j0 + j];
      }
    }
  });
}

}  // namespace mt
