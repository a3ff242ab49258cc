#include "indexing.h"

#include <cstring>
#include <vector>

#include "simd.h"
#include "thread_pool.h"

namespace mt {
namespace {
constexpr int64_t kGrain = 1 << 15;  // floats moved per thread, at least
}

void gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t dim, float* out) {
  parallel_for(n, kGrain / (dim > 0 ? dim : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) std::memcpy(out + i * dim, src + (int64_t)idx[i] * dim, sizeof(float) * dim);
  });
}

void scatter_add_rows(const float* src, const int32_t* idx, const float* w, int64_t n, int64_t dim, float* out) {
  // Column blocks of 256 floats per task; only large scatters are split (a random-row scatter is
  // latency-bound, and two threads writing neighbouring parts of the same rows slow each other).
  constexpr int64_t CB = 256;
  int64_t blocks = (dim + CB - 1) / CB;
  parallel_for(blocks, (kGrain * 16) / (n * CB > 0 ? n * CB : 1) + 1, [&](int64_t b, int64_t e) {
    int64_t j0 = b * CB, j1 = e * CB < dim ? e * CB : dim;
    int64_t wcols = j1 - j0;
    for (int64_t i = 0; i < n; i++) {
      const float* s = src + i * dim + j0;
      float* o = out + (int64_t)idx[i] * dim + j0;
      if (w) {
        // o + w s in double, one rounding (as the js backend; the terms may cancel).
        const double wi = w[i];
        for (int64_t j = 0; j < wcols; j++) o[j] = (float)((double)o[j] + wi * (double)s[j]);
      } else {
        map2(s, o, o, wcols, [](auto sv, auto ov) { return ov + sv; });
      }
    }
  });
}

void scatter_rows(const float* src, const int32_t* idx, const float* w, int64_t n, int64_t dim, int64_t rows, float* out) {
  if (rows <= 0) return;
  // the sources of each row, in order of i (counting sort)
  std::vector<int64_t> start((size_t)rows + 1, 0);
  for (int64_t i = 0; i < n; i++) start[(size_t)idx[i] + 1]++;
  for (int64_t r = 0; r < rows; r++) start[r + 1] += start[r];
  std::vector<int32_t> order((size_t)n);
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; i++) order[next[idx[i]]++] = (int32_t)i;
  }
  parallel_for(rows, kGrain / (dim > 0 ? dim : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      float* o = out + r * dim;
      const int64_t s0 = start[r], s1 = start[r + 1];
      if (s0 == s1) {
        std::memset(o, 0, sizeof(float) * (size_t)dim);
        continue;
      }
      // the first source onto 0 (0 + x, as scatter_add_rows onto zeros: -0 becomes +0), then the rest
      const float* s = src + (int64_t)order[s0] * dim;
      if (w) {
        const double wi = w[order[s0]];
        for (int64_t j = 0; j < dim; j++) o[j] = (float)(0.0 + wi * (double)s[j]);
      } else {
        for (int64_t j = 0; j < dim; j++) o[j] = 0.0f + s[j];
      }
      for (int64_t q = s0 + 1; q < s1; q++) {
        s = src + (int64_t)order[q] * dim;
        if (w) {
          const double wi = w[order[q]];
          for (int64_t j = 0; j < dim; j++) o[j] = (float)((double)o[j] + wi * (double)s[j]);
        } else {
          map2(s, o, o, dim, [](auto sv, auto ov) { return ov + sv; });
        }
      }
    }
  });
}

void gather_row_dot(const float* a, const int32_t* idx, const float* b, int64_t n, int64_t dim, float* out) {
  parallel_for(n, kGrain / (dim > 0 ? dim : 1) + 1, [&](int64_t b0, int64_t e0) {
    for (int64_t i = b0; i < e0; i++) out[i] = (float)dot_d(a + (int64_t)idx[i] * dim, b + i * dim, dim);
  });
}

void scatter_rows_backward(const float* dy, const int32_t* idx, const float* w, const float* src, int64_t n, int64_t dim,
                           float* dsrc, float* dw) {
  parallel_for(n, kGrain / (dim > 0 ? dim : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const float* d = dy + (int64_t)idx[i] * dim;
      if (dw) dw[i] = (float)dot_d(d, src + i * dim, dim);
      if (dsrc) {
        const float wi = w[i];
        float* o = dsrc + i * dim;
        for (int64_t j = 0; j < dim; j++) o[j] = d[j] * wi;
      }
    }
  });
}

void take_along_rows(const float* x, const int32_t* idx, int64_t rows, int64_t cols, int64_t k, float* out) {
  parallel_for(rows, kGrain / (k > 0 ? k : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++)
      for (int64_t j = 0; j < k; j++) out[r * k + j] = x[r * cols + idx[r * k + j]];
  });
}

void take_along_rows_backward(const float* dy, const int32_t* idx, int64_t rows, int64_t cols, int64_t k, float* dx) {
  parallel_for(rows, kGrain / (k > 0 ? k : 1) + 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++)
      for (int64_t j = 0; j < k; j++) dx[r * cols + idx[r * k + j]] += dy[r * k + j];
  });
}

}  // namespace mt
