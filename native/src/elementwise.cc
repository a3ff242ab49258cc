#include "elementwise.h"

#include <cmath>

#include "simd.h"
#include "thread_pool.h"

namespace mt {
namespace {

// Elements per thread below which a second thread does not pay off (measured: a fork / join is
// ~1-2 us, a cheap op streams ~4-8 elements per ns from L2).
constexpr int64_t kGrainCheap = 1 << 16;
constexpr int64_t kGrainTranscendental = 1 << 14;

struct AddOp {
  template <class T>
  static T f(T a, T b) { return a + b; }
};
struct SubOp {
  template <class T>
  static T f(T a, T b) { return a - b; }
};
struct MulOp {
  template <class T>
  static T f(T a, T b) { return a * b; }
};
struct DivOp {
  template <class T>
  static T f(T a, T b) { return a / b; }
};
struct MaxOp {
  template <class T>
  static T f(T a, T b) { return fmax_nan(a, b); }
};
struct MinOp {
  template <class T>
  static T f(T a, T b) { return fmin_nan(a, b); }
};

// One innermost run: out[i] = op(a[i * sa], b[i * sb]) with sa, sb in {0, 1}.
template <class Op>
void binary_run(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  int64_t i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + kLanes <= n; i += kLanes) vstore(out + i, Op::f(vload(a + i), vload(b + i)));
    for (; i < n; i++) out[i] = Op::f(a[i], b[i]);
  } else if (sa == 1) {
    const float bv = b[0];
    const vf bb = vsplat(bv);
    for (; i + kLanes <= n; i += kLanes) vstore(out + i, Op::f(vload(a + i), bb));
    for (; i < n; i++) out[i] = Op::f(a[i], bv);
  } else if (sb == 1) {
    const float av = a[0];
    const vf aa = vsplat(av);
    for (; i + kLanes <= n; i += kLanes) vstore(out + i, Op::f(aa, vload(b + i)));
    for (; i < n; i++) out[i] = Op::f(av, b[i]);
  } else {
    const float v = Op::f(a[0], b[0]);
    for (; i < n; i++) out[i] = v;
  }
}

// A broadcast loop nest after size-1 dims are dropped and contiguous dims merged: dims[0] is the
// outermost; sa / sb are element strides (0 where the operand broadcasts).
struct BroadcastPlan {
  int rank = 0;
  int64_t dims[kMaxRank];
  int64_t sa[kMaxRank];
  int64_t sb[kMaxRank];
};

BroadcastPlan make_plan(const int64_t* aShape, int aRank, const int64_t* bShape, int bRank, const int64_t* outShape,
                        int outRank) {
  // Strides of a and b in out's (right-aligned) dims; 0 where the dim is 1 or missing.
  int64_t sa[kMaxRank], sb[kMaxRank];
  int64_t strideA = 1, strideB = 1;
  for (int d = outRank - 1; d >= 0; d--) {
    int da = d - (outRank - aRank), db = d - (outRank - bRank);
    int64_t na = da >= 0 ? aShape[da] : 1, nb = db >= 0 ? bShape[db] : 1;
    sa[d] = na == 1 ? 0 : strideA;
    sb[d] = nb == 1 ? 0 : strideB;
    strideA *= na;
    strideB *= nb;
  }
  BroadcastPlan p;
  for (int d = 0; d < outRank; d++) {
    if (outShape[d] == 1) continue;
    if (p.rank > 0) {
      int q = p.rank - 1;
      // Merge d into the previous (outer) dim when both operands continue contiguously.
      if (p.sa[q] == sa[d] * outShape[d] && p.sb[q] == sb[d] * outShape[d]) {
        p.dims[q] *= outShape[d];
        p.sa[q] = sa[d];
        p.sb[q] = sb[d];
        continue;
      }
    }
    p.dims[p.rank] = outShape[d];
    p.sa[p.rank] = sa[d];
    p.sb[p.rank] = sb[d];
    p.rank++;
  }
  if (p.rank == 0) {
    p.dims[0] = 1;
    p.sa[0] = p.sb[0] = 0;
    p.rank = 1;
  }
  return p;
}

template <class Op>
void binary_plan(const BroadcastPlan& p, const float* a, const float* b, float* out) {
  const int inner = p.rank - 1;
  const int64_t n = p.dims[inner];
  int64_t rows = 1;
  for (int d = 0; d < inner; d++) rows *= p.dims[d];
  if (rows == 1) {
    // One run: split it across threads.
    parallel_for(n, kGrainCheap, [&](int64_t b0, int64_t e0) {
      binary_run<Op>(a + b0 * p.sa[inner], p.sa[inner], b + b0 * p.sb[inner], p.sb[inner], out + b0, e0 - b0);
    });
    return;
  }
  int64_t grain = kGrainCheap / n + 1;
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    // Offsets of row r0 from its multi-index, then odometer increments.
    int64_t idx[kMaxRank];
    int64_t offA = 0, offB = 0, rem = r0;
    for (int d = inner - 1; d >= 0; d--) {
      idx[d] = rem % p.dims[d];
      rem /= p.dims[d];
      offA += idx[d] * p.sa[d];
      offB += idx[d] * p.sb[d];
    }
    for (int64_t r = r0; r < r1; r++) {
      binary_run<Op>(a + offA, p.sa[inner], b + offB, p.sb[inner], out + r * n, n);
      for (int d = inner - 1; d >= 0; d--) {
        offA += p.sa[d];
        offB += p.sb[d];
        if (++idx[d] < p.dims[d]) break;
        offA -= p.sa[d] * p.dims[d];
        offB -= p.sb[d] * p.dims[d];
        idx[d] = 0;
      }
    }
  });
}

template <class F>
void map1_threaded(const float* x, float* out, int64_t n, int64_t grain, F f) {
  parallel_for(n, grain, [&](int64_t b, int64_t e) { map1(x + b, out + b, e - b, f); });
}

template <class F>
void map3_threaded(const float* a, const float* b, const float* c, float* out, int64_t n, int64_t grain, F f) {
  parallel_for(n, grain, [&](int64_t b0, int64_t e0) { map3(a + b0, b + b0, c + b0, out + b0, e0 - b0, f); });
}

// Scalar loops through double, for the ops the vector code does not cover (log, tanh): the same
// arithmetic as JavaScript's Math functions followed by a rounding to float.
template <class F>
void scalar_threaded(const float* x, float* out, int64_t n, F f) {
  parallel_for(n, kGrainTranscendental, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out[i] = f(x[i]);
  });
}

}  // namespace

void binary(BinaryOp op, const float* a, const int64_t* aShape, int aRank, const float* b, const int64_t* bShape,
            int bRank, float* out, const int64_t* outShape, int outRank) {
  for (int d = 0; d < outRank; d++)
    if (outShape[d] == 0) return;
  BroadcastPlan p = make_plan(aShape, aRank, bShape, bRank, outShape, outRank);
  switch (op) {
    case BinaryOp::Add: binary_plan<AddOp>(p, a, b, out); break;
    case BinaryOp::Sub: binary_plan<SubOp>(p, a, b, out); break;
    case BinaryOp::Mul: binary_plan<MulOp>(p, a, b, out); break;
    case BinaryOp::Div: binary_plan<DivOp>(p, a, b, out); break;
    case BinaryOp::Max: binary_plan<MaxOp>(p, a, b, out); break;
    case BinaryOp::Min: binary_plan<MinOp>(p, a, b, out); break;
  }
}

void unary(UnaryOp op, const float* x, float* out, int64_t n) {
  switch (op) {
    case UnaryOp::Neg:
      map1_threaded(x, out, n, kGrainCheap, [](auto v) { return -v; });
      break;
    case UnaryOp::Exp:
      map1_threaded(x, out, n, kGrainTranscendental, [](auto v) { return fexp(v); });
      break;
    case UnaryOp::Log:
      scalar_threaded(x, out, n, [](float v) { return (float)std::log((double)v); });
      break;
    case UnaryOp::Sqrt:
      parallel_for(n, kGrainCheap, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) out[i] = std::sqrt(x[i]);
      });
      break;
    case UnaryOp::Rsqrt:
      parallel_for(n, kGrainCheap, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) out[i] = (float)(1.0 / std::sqrt((double)x[i]));
      });
      break;
    case UnaryOp::Square:
      map1_threaded(x, out, n, kGrainCheap, [](auto v) { return v * v; });
      break;
    case UnaryOp::Abs:
      parallel_for(n, kGrainCheap, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) out[i] = std::fabs(x[i]);
      });
      break;
    case UnaryOp::Silu:
      map1_threaded(x, out, n, kGrainTranscendental, [](auto v) { return v / (1.0f + fexp_ftz(-v)); });
      break;
    case UnaryOp::Sigmoid:
      map1_threaded(x, out, n, kGrainTranscendental, [](auto v) { return 1.0f / (1.0f + fexp_ftz(-v)); });
      break;
    case UnaryOp::Relu:
      // As the js backend: x > 0 ? x : 0 (NaN gives 0).
      parallel_for(n, kGrainCheap, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
      });
      break;
    case UnaryOp::Tanh:
      scalar_threaded(x, out, n, [](float v) { return (float)std::tanh((double)v); });
      break;
  }
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n) {
  const int64_t g = kGrainCheap;
  switch (op) {
    case UnaryOp::Neg:
      map3_threaded(x, y, dy, dx, n, g, [](auto, auto, auto d) { return -d; });
      break;
    case UnaryOp::Exp:
      map3_threaded(x, y, dy, dx, n, g, [](auto, auto yv, auto d) { return d * yv; });
      break;
    case UnaryOp::Log:
      map3_threaded(x, y, dy, dx, n, g, [](auto xv, auto, auto d) { return d / xv; });
      break;
    case UnaryOp::Sqrt:
      map3_threaded(x, y, dy, dx, n, g, [](auto, auto yv, auto d) { return d / (2.0f * yv); });
      break;
    case UnaryOp::Rsqrt:
      map3_threaded(x, y, dy, dx, n, g, [](auto, auto yv, auto d) { return -0.5f * d * yv * yv * yv; });
      break;
    case UnaryOp::Square:
      map3_threaded(x, y, dy, dx, n, g, [](auto xv, auto, auto d) { return 2.0f * xv * d; });
      break;
    case UnaryOp::Abs:
      parallel_for(n, g, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) dx[i] = x[i] > 0.0f ? dy[i] : (x[i] < 0.0f ? -dy[i] : 0.0f);
      });
      break;
    case UnaryOp::Silu:
      map3_threaded(x, y, dy, dx, n, kGrainTranscendental, [](auto xv, auto, auto d) {
        auto s = 1.0f / (1.0f + fexp_ftz(-xv));
        return d * (s * (1.0f + xv * (1.0f - s)));
      });
      break;
    case UnaryOp::Sigmoid:
      map3_threaded(x, y, dy, dx, n, g, [](auto, auto yv, auto d) { return d * (yv * (1.0f - yv)); });
      break;
    case UnaryOp::Relu:
      parallel_for(n, g, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
      });
      break;
    case UnaryOp::Tanh:
      // 1 - y^2 cancels as |y| -> 1: evaluated in double, one rounding.
      parallel_for(n, g, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) {
          const double yv = y[i];
          dx[i] = (float)((double)dy[i] * (1.0 - yv * yv));
        }
      });
      break;
  }
}

void axpby(double alpha, const float* x, double beta, float* out, int64_t n) {
  // In double with one rounding, as the js backend (the two terms may cancel).
  parallel_for(n, kGrainCheap, [&](int64_t b, int64_t e) {
    if (beta == 0.0)
      for (int64_t i = b; i < e; i++) out[i] = (float)(alpha * (double)x[i]);
    else
      for (int64_t i = b; i < e; i++) out[i] = (float)(alpha * (double)x[i] + beta * (double)out[i]);
  });
}

void fill(float* out, float value, int64_t n) {
  parallel_for(n, kGrainCheap * 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out[i] = value;
  });
}

}  // namespace mt
