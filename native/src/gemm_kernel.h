// GEMM micro-kernels: C tile [MR x NR] = alpha * Ap * Bp + beta * C over kc steps, where Ap is an
// MR-row panel packed k-major (Ap[k * MR + r]) and Bp an NR-column panel packed k-major
// (Bp[k * NR + c]). The accumulators live in registers; A values are broadcast, B rows loaded as
// vectors. One code path per ISA: AVX-512F, AVX2 + FMA, and a portable one on GCC/Clang vector
// extensions (NEON on arm64, SSE elsewhere).
#pragma once

#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#include "simd.h"

namespace mt {
namespace gemm {

#if defined(__AVX512F__)
constexpr int MR = 12;
constexpr int NV = 2;  // vectors per tile row
constexpr int NR = NV * 16;
constexpr const char* kKernelName = "avx512f-12x32";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int MR = 6;
constexpr int NV = 2;
constexpr int NR = NV * 8;
constexpr const char* kKernelName = "avx2-fma-6x16";
#else
constexpr int MR = 6;
constexpr int NV = 16 / kLanes;  // 16 columns per tile row
constexpr int NR = 16;
constexpr const char* kKernelName = kLanes == 8 ? "portable-avx-6x16" : "portable-6x16";  // 8 lanes: AVX without FMA
#endif

// Writes the tile: C = alpha * acc + beta * C, or C = alpha * acc when beta == 0 (C not read).
// ROWS < MR computes only the first ROWS rows of the tile from the same MR-row panel (the last
// rows of a product whose M is not a multiple of MR: an MoE expert's tokens) straight into C,
// instead of a full tile into a scratch buffer: with ~100 tokens per expert the padded rows were
// ~9% of an expert GEMM's work.
#define MT_GEMM_UNROLL _Pragma("GCC unroll 16")

#if defined(__AVX512F__)
template <int ROWS = MR>
static inline void micro_kernel(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C,
                                int64_t ldc, float alpha, float beta) {
  __m512 acc[ROWS][NV];
  MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++) acc[r][v] =
      _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m512 b[NV];
    MT_GEMM_UNROLL for (int v = 0; v < NV; v++) b[v] = _mm512_load_ps(Bp + v * 16);
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) {
      __m512 a = _mm512_set1_ps(Ap[r]);
      MT_GEMM_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
    Ap += MR;
    Bp += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++)
        _mm512_storeu_ps(C + r * ldc + v * 16, _mm512_mul_ps(va, acc[r][v]));
  } else if (beta == 1.0f) {
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++) {
      float* c = C + r * ldc + v * 16;
      _mm512_storeu_ps(c, _mm512_fmadd_ps(va, acc[r][v], _mm512_loadu_ps(c)));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++) {
      float* c = C + r * ldc + v * 16;
      _mm512_storeu_ps(c, _mm512_fmadd_ps(va, acc[r][v], _mm512_mul_ps(vb, _mm512_loadu_ps(c))));
    }
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
template <int ROWS = MR>
static inline void micro_kernel(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C,
                                int64_t ldc, float alpha, float beta) {
  __m256 acc[ROWS][NV];
  MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++) acc[r][v] =
      _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m256 b[NV];
    MT_GEMM_UNROLL for (int v = 0; v < NV; v++) b[v] = _mm256_load_ps(Bp + v * 8);
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) {
      __m256 a = _mm256_broadcast_ss(Ap + r);
      MT_GEMM_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
    Ap += MR;
    Bp += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++)
        _mm256_storeu_ps(C + r * ldc + v * 8, _mm256_mul_ps(va, acc[r][v]));
  } else if (beta == 1.0f) {
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++) {
      float* c = C + r * ldc + v * 8;
      _mm256_storeu_ps(c, _mm256_fmadd_ps(va, acc[r][v], _mm256_loadu_ps(c)));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++) {
      float* c = C + r * ldc + v * 8;
      _mm256_storeu_ps(c, _mm256_fmadd_ps(va, acc[r][v], _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
    }
  }
}
#else
template <int ROWS = MR>
static inline void micro_kernel(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C,
                                int64_t ldc, float alpha, float beta) {
  vf acc[ROWS][NV];
  MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) MT_GEMM_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = vf{};
  for (int64_t k = 0; k < kc; k++) {
    vf b[NV];
    MT_GEMM_UNROLL for (int v = 0; v < NV; v++) b[v] = vload(Bp + v * kLanes);
    MT_GEMM_UNROLL for (int r = 0; r < ROWS; r++) {
      vf a = vsplat(Ap[r]);
      MT_GEMM_UNROLL for (int v = 0; v < NV; v++) acc[r][v] += a * b[v];
    }
    Ap += MR;
    Bp += NR;
  }
  for (int r = 0; r < ROWS; r++)
    for (int v = 0; v < NV; v++) {
      float* c = C + r * ldc + v * kLanes;
      vf res = alpha * acc[r][v];
      if (beta != 0.0f) res += beta * vload(c);
      vstore(c, res);
    }
}
#endif

#undef MT_GEMM_UNROLL

}  // namespace gemm
}  // namespace mt
