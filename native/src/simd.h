// Portable SIMD helpers on GCC/Clang vector extensions: one `vf` type whose width follows the
// target (AVX-512: 16 lanes, AVX: 8, otherwise 4, which maps to SSE on x86 and NEON on arm64).
// Loads and stores are unaligned (memcpy), selects are bitwise, and exp is our own branch-free
// Cephes-style polynomial (max relative error ~2 ulp), so the kernels vectorise without
// -ffast-math and keep IEEE semantics (NaN propagates, overflow gives inf, underflow gives 0).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the deliberately undefined lanes inside its own AVX-512 cast / extract / reduce
// intrinsics (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mt {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
constexpr int kLanes = kVecBytes / 4;

typedef float vf __attribute__((vector_size(kVecBytes)));
typedef int32_t vi __attribute__((vector_size(kVecBytes)));

static inline vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
static inline vf vsplat(float x) { return vf{} + x; }
static inline vf as_vf(vi v) { return (vf)v; }
static inline vi as_vi(vf v) { return (vi)v; }
/** m ? a : b lane-wise, m a comparison result (all ones / all zeros per lane). */
static inline vf vselect(vi m, vf a, vf b) { return as_vf((m & as_vi(a)) | (~m & as_vi(b))); }
/**
 * max / min that propagate NaN from either side, as the js backend: a >= b || isNaN(a) ? a : b
 * (so max(-0, +0) is -0, the first operand).
 */
static inline vf vmax_nan(vf a, vf b) {
  vf r = vselect(a >= b, a, b);
  return vselect(a != a, a, r);
}
static inline vf vmin_nan(vf a, vf b) {
  vf r = vselect(a <= b, a, b);
  return vselect(a != a, a, r);
}
static inline float hsum(vf v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; i++) s += v[i];
  return s;
}
static inline double hsum_d(vf v) {
  double s = 0.0;
  for (int i = 0; i < kLanes; i++) s += (double)v[i];
  return s;
}
/** Largest lane; NaN if any lane is NaN. */
static inline float hmax_nan(vf v) {
#if defined(__AVX512F__)
  const __m512 x = (__m512)v;
  if (_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q)) return x[0] != x[0] ? x[0] : __builtin_nanf("");
  return _mm512_reduce_max_ps(x);
#else
  float m = v[0];
  for (int i = 1; i < kLanes; i++) m = v[i] >= m || v[i] != v[i] ? (m != m ? m : v[i]) : m;
  return m;
#endif
}

static inline float max_nan(float a, float b) { return a >= b || a != a ? a : b; }
static inline float min_nan(float a, float b) { return a <= b || a != a ? a : b; }

// exp(x): x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 Cephes polynomial, 2^n applied in two
// halves so that results down to the subnormal range and up to FLT_MAX are formed without overflow
// of the exponent field. The rounding to n uses the 1.5 * 2^23 trick (no float->int conversion,
// so NaN input is not UB and simply propagates through the polynomial).
template <class V, class I>
static inline V exp_poly(V x) {
  const V hi = V{} + 88.8f, lo = V{} + -104.0f;
  x = (V)(((I)(x > hi) & (I)hi) | (~(I)(x > hi) & (I)x));
  x = (V)(((I)(x < lo) & (I)lo) | (~(I)(x < lo) & (I)x));
  const V magic = V{} + 12582912.0f;  // 1.5 * 2^23
  V t = x * 1.44269504088896341f + magic;
  V n = t - magic;
  I ni = (I)t - (I)magic;
  V r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V p = V{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  V y = p * (r * r) + r + 1.0f;
  I n1 = ni >> 1;
  I n2 = ni - n1;
  V s1 = (V)((n1 + 127) << 23);
  V s2 = (V)((n2 + 127) << 23);
  return y * s1 * s2;
}

typedef float f1 __attribute__((vector_size(4)));
typedef int32_t i1 __attribute__((vector_size(4)));

static inline vf vexp(vf x) { return exp_poly<vf, vi>(x); }
/** Scalar exp with exactly the same arithmetic as vexp (so vector bodies and tails agree). */
static inline float sexp(float x) {
  f1 v = {x};
  return exp_poly<f1, i1>(v)[0];
}

// exp(x) for x >= -86 and exactly 0 below (results under 4.5e-38 flushed), with no subnormal
// arithmetic anywhere: a subnormal result costs a ~150-cycle microcode assist per vector on x86,
// and masked lanes (exp(-inf)) would pay it in every padded tail. For probabilities (softmax,
// attention, cross-entropy) and sigmoids, where such values are zero for all purposes.
template <class V, class I>
static inline V exp_ftz_poly(V x) {
  const V lo = V{} + -86.0f;
  const I tiny = (I)(x < lo);
  const V xc = (V)((tiny & (I)lo) | (~tiny & (I)x));
  return (V)(~tiny & (I)exp_poly<V, I>(xc));
}
static inline vf vexp_ftz(vf x) { return exp_ftz_poly<vf, vi>(x); }
static inline float sexp_ftz(float x) {
  f1 v = {x};
  return exp_ftz_poly<f1, i1>(v)[0];
}

// Overloads so one generic lambda body serves the vector loop and its scalar tail.
static inline vf fexp(vf x) { return vexp(x); }
static inline float fexp(float x) { return sexp(x); }
static inline vf fexp_ftz(vf x) { return vexp_ftz(x); }
static inline float fexp_ftz(float x) { return sexp_ftz(x); }
static inline vf fmax_nan(vf a, vf b) { return vmax_nan(a, b); }
static inline float fmax_nan(float a, float b) { return max_nan(a, b); }
static inline vf fmin_nan(vf a, vf b) { return vmin_nan(a, b); }
static inline float fmin_nan(float a, float b) { return min_nan(a, b); }
static inline vf fsplat(vf, float x) { return vsplat(x); }
static inline float fsplat(float, float x) { return x; }

/** out[i] = f(x[i]) for i < n; f is a generic lambda taking vf or float. */
template <class F>
static inline void map1(const float* x, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(out + i, f(vload(x + i)));
  for (; i < n; i++) out[i] = f(x[i]);
}

/** out[i] = f(a[i], b[i]) for i < n. */
template <class F>
static inline void map2(const float* a, const float* b, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(out + i, f(vload(a + i), vload(b + i)));
  for (; i < n; i++) out[i] = f(a[i], b[i]);
}

/** out[i] = f(a[i], b[i], c[i]) for i < n. */
template <class F>
static inline void map3(const float* a, const float* b, const float* c, float* out, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore(out + i, f(vload(a + i), vload(b + i), vload(c + i)));
  for (; i < n; i++) out[i] = f(a[i], b[i], c[i]);
}

// Double-precision vectors of half the float lane count (same register width): a float vector
// is widened as two halves. (A double vector as wide as two registers would make GCC keep it on
// the stack.)
constexpr int kLanesD = kLanes / 2;
typedef float vfh __attribute__((vector_size(kVecBytes / 2)));
typedef double vd __attribute__((vector_size(kVecBytes)));

/** kLanesD floats at p, widened to double. */
static inline vd vload_d(const float* p) {
  vfh h;
  std::memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, vd);
}
/** Rounds kLanesD doubles to float and stores them at p. */
static inline void vstore_d(float* p, vd v) {
  vfh h = __builtin_convertvector(v, vfh);
  std::memcpy(p, &h, sizeof h);
}
/** The last n < kLanes floats at p as one vector (masked load); the lanes past n hold `fill`. */
static inline vf load_tail(const float* p, int64_t n, float fill) {
#if defined(__AVX512F__)
  return (vf)_mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << n) - 1), p);
#elif defined(__AVX2__)
  const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return (vf)_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
#else
  float tmp[kLanes];
  for (int i = 0; i < kLanes; i++) tmp[i] = i < n ? p[i] : fill;
  return vload(tmp);
#endif
}
/** Stores the first n < kLanes lanes of v at p (masked store). */
static inline void store_tail(float* p, vf v, int64_t n) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#elif defined(__AVX2__)
  const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  _mm256_maskstore_ps(p, m, (__m256)v);
#else
  float tmp[kLanes];
  vstore(tmp, v);
  for (int64_t i = 0; i < n; i++) p[i] = tmp[i];
#endif
}

/** Adds the lanes of a float vector, widened to double, into two double accumulators. */
static inline void add_wide(vd& lo, vd& hi, vf v) {
#if defined(__AVX512F__)
  const __m512 x = (__m512)v;
  lo += (vd)_mm512_cvtps_pd(_mm512_castps512_ps256(x));
  hi += (vd)_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
#elif defined(__AVX__)
  const __m256 x = (__m256)v;
  lo += (vd)_mm256_cvtps_pd(_mm256_castps256_ps128(x));
  hi += (vd)_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
#else
  vfh a, b;
  std::memcpy(&a, &v, sizeof a);
  std::memcpy(&b, reinterpret_cast<const char*>(&v) + sizeof a, sizeof b);
  lo += __builtin_convertvector(a, vd);
  hi += __builtin_convertvector(b, vd);
#endif
}
static inline double hsum_wide(vd lo, vd hi) {
  vd t = lo + hi;
#if defined(__AVX512F__)
  return _mm512_reduce_add_pd((__m512d)t);
#else
  double s = 0.0;
  for (int l = 0; l < kLanesD; l++) s += t[l];
  return s;
#endif
}

/** Sum of x[i] in double. */
static inline double sum_d(const float* x, int64_t n) {
  vd a0{}, a1{};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    a0 += vload_d(x + i);
    a1 += vload_d(x + i + kLanesD);
  }
  double s = hsum_wide(a0, a1);
  for (; i < n; i++) s += (double)x[i];
  return s;
}
/** Sum of x[i] * y[i] in double (each product exact). */
static inline double dot_d(const float* x, const float* y, int64_t n) {
  vd a0{}, a1{};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    a0 += vload_d(x + i) * vload_d(y + i);
    a1 += vload_d(x + i + kLanesD) * vload_d(y + i + kLanesD);
  }
  double s = hsum_wide(a0, a1);
  for (; i < n; i++) s += (double)x[i] * (double)y[i];
  return s;
}
/** Sum of x[i] * y[i] * z[i] in double. */
static inline double dot3_d(const float* x, const float* y, const float* z, int64_t n) {
  vd a0{}, a1{};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    a0 += vload_d(x + i) * vload_d(y + i) * vload_d(z + i);
    a1 += vload_d(x + i + kLanesD) * vload_d(y + i + kLanesD) * vload_d(z + i + kLanesD);
  }
  double s = hsum_wide(a0, a1);
  for (; i < n; i++) s += (double)x[i] * (double)y[i] * (double)z[i];
  return s;
}

}  // namespace mt

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
