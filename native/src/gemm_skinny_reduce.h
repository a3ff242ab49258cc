// The end of a dot-form product (gemm_skinny.cc, nf4_skinny.cc): the lanes of G partial-sum
// vectors reduced in one fixed order, and C = alpha * dot (+ beta * C). Shared so that the NF4
// skinny kernel reduces exactly as the dense skinny GEMM does (bit-identical results).
#pragma once

#include "simd.h"  // (the intrinsics too)

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the deliberately undefined lanes inside its own AVX-512 cast / extract intrinsics
// (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace mt {
namespace skinny {

constexpr int G = 8;  // short-side rows handled together

/**
 * out[s] = sum of the lanes of v[s], s < G. Each vector's lanes are summed by the same tree
 * whichever vectors share the call: ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) after the
 * two 256-bit halves are added (AVX-512), or left to right (portable).
 */
inline void hsum_g(const vf* v, float* out) {
#if defined(__AVX512F__)
  __m256 h[G];
  for (int i = 0; i < G; i++) {
    const __m512 x = (__m512)v[i];
    h[i] = _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  }
#elif defined(__AVX__)
  __m256 h[G];
  for (int i = 0; i < G; i++) h[i] = (__m256)v[i];
#endif
#if defined(__AVX512F__) || defined(__AVX__)
  const __m256 t0 = _mm256_hadd_ps(h[0], h[1]), t1 = _mm256_hadd_ps(h[2], h[3]);
  const __m256 t2 = _mm256_hadd_ps(h[4], h[5]), t3 = _mm256_hadd_ps(h[6], h[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  // u0 = [sums of lanes 0-3 of h0..h3 | lanes 4-7 of h0..h3], u1 the same for h4..h7
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31)));
#else
  for (int i = 0; i < G; i++) out[i] = hsum(v[i]);
#endif
}

inline float combine(float alpha, float x, float beta, float c) { return beta == 0.0f ? alpha * x : alpha * x + beta * c; }

}  // namespace skinny
}  // namespace mt

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
