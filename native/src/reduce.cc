#include "reduce.h"

#include <cmath>
#include <limits>

#include "aligned_buffer.h"
#include "simd.h"
#include "thread_pool.h"

namespace mt {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements read per thread, at least

// One output row (inner == 1): reduce a contiguous run.
float reduce_run(ReduceOp op, const float* x, int64_t n) {
  if (op == ReduceOp::Sum) return (float)sum_d(x, n);
  const bool isMax = op == ReduceOp::Max;
  float init = isMax ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  vf acc = vsplat(init);
  int64_t i = 0;
  if (isMax)
    for (; i + kLanes <= n; i += kLanes) acc = vmax_nan(vload(x + i), acc);
  else
    for (; i + kLanes <= n; i += kLanes) acc = vmin_nan(vload(x + i), acc);
  float r = init;
  for (int l = 0; l < kLanes; l++) r = isMax ? max_nan(acc[l], r) : min_nan(acc[l], r);
  for (; i < n; i++) r = isMax ? max_nan(x[i], r) : min_nan(x[i], r);
  return r;
}

// Columns [j0, j1) of one outer slab (inner > 1): x[a * inner + j] over a.
void reduce_columns(ReduceOp op, const float* x, int64_t axisLen, int64_t inner, int64_t j0, int64_t j1, float* out) {
  int64_t w = j1 - j0;
  if (op == ReduceOp::Sum) {
    static thread_local AlignedBuffer accBuf;
    double* acc = reinterpret_cast<double*>(accBuf.get(2 * w));
    for (int64_t j = 0; j < w; j++) acc[j] = 0.0;
    for (int64_t a = 0; a < axisLen; a++) {
      const float* row = x + a * inner + j0;
      for (int64_t j = 0; j < w; j++) acc[j] += (double)row[j];
    }
    for (int64_t j = 0; j < w; j++) out[j0 + j] = (float)acc[j];
    return;
  }
  const bool isMax = op == ReduceOp::Max;
  float init = isMax ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  for (int64_t j = j0; j < j1; j++) out[j] = init;
  for (int64_t a = 0; a < axisLen; a++) {
    const float* row = x + a * inner;
    if (isMax)
      map2(row + j0, out + j0, out + j0, w, [](auto v, auto m) { return fmax_nan(v, m); });
    else
      map2(row + j0, out + j0, out + j0, w, [](auto v, auto m) { return fmin_nan(v, m); });
  }
}

}  // namespace

void reduce(ReduceOp op, const float* x, int64_t outer, int64_t axisLen, int64_t inner, float* out) {
  if (outer <= 0 || inner <= 0) return;
  if (inner == 1) {
    int64_t grain = kGrain / (axisLen > 0 ? axisLen : 1) + 1;
    parallel_for(outer, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; o++) out[o] = reduce_run(op, x + o * axisLen, axisLen);
    });
    return;
  }
  if (outer == 1) {
    int64_t grain = kGrain / (axisLen > 0 ? axisLen : 1) + 1;
    if (grain < 64) grain = 64;
    parallel_for(inner, grain, [&](int64_t b, int64_t e) { reduce_columns(op, x, axisLen, inner, b, e, out); });
    return;
  }
  int64_t grain = kGrain / (axisLen * inner > 0 ? axisLen * inner : 1) + 1;
  parallel_for(outer, grain, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; o++) reduce_columns(op, x + o * axisLen * inner, axisLen, inner, 0, inner, out + o * inner);
  });
}

double sum_squares(const float* x, int64_t n) {
  // Fixed chunks summed in order (the result does not depend on the thread count); a thread takes
  // at least kGrain elements, so one parameter's gradient (1e5..1e6 values) uses both cores.
  constexpr int64_t kChunk = 1 << 13;
  int64_t chunks = (n + kChunk - 1) / kChunk;
  if (chunks <= 1) return n > 0 ? dot_d(x, x, n) : 0.0;
  static thread_local AlignedBuffer partBuf;
  double* parts = reinterpret_cast<double*>(partBuf.get(2 * chunks));
  parallel_for(chunks, kGrain / kChunk, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; c++) {
      int64_t s = c * kChunk, len = n - s < kChunk ? n - s : kChunk;
      parts[c] = dot_d(x + s, x + s, len);
    }
  });
  double total = 0.0;
  for (int64_t c = 0; c < chunks; c++) total += parts[c];
  return total;
}

}  // namespace mt
