// Packing for the blocked GEMM: copies a block of op(A) or op(B) into the k-major panel layout
// the micro-kernels stream (gemm_kernel.h), zero-padding the last panel, so all four transA /
// transB combinations reach the same kernel. The panel primitives are templates on the panel
// width so that the skinny kernels (gemm_skinny.cc) and the NF4 GEMM (nf4_gemm.cc) share them.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "gemm_kernel.h"

namespace mt {
namespace gemm {

/**
 * Packs op(A)[i0 : i0 + mc, k0 : k0 + kc] into ceil(mc / MR) panels of kc * MR floats:
 * Ap[p * kc * MR + k * MR + r] = op(A)[i0 + p * MR + r, k0 + k] (0 past mc).
 */
void pack_a(bool transA, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* Ap);

/**
 * Packs op(B)[k0 : k0 + kc, j0 : j0 + nc] into ceil(nc / NR) panels of kc * NR floats:
 * Bp[q * kc * NR + k * NR + c] = op(B)[k0 + k, j0 + q * NR + c] (0 past nc).
 */
void pack_b(bool transB, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* Bp);

// ------------------------------------------------------------------ panel primitives

/** Rows of a row-major source copied into a panel: dst[k * W + c] = src[k * ld + c] (0 for c >= w). */
template <int W>
inline void panel_copy(const float* src, int64_t ld, int64_t kc, int64_t w, float* dst) {
  if (w == W) {
    for (int64_t k = 0; k < kc; k++) std::memcpy(dst + k * W, src + k * ld, sizeof(float) * W);
  } else {
    for (int64_t k = 0; k < kc; k++) {
      int64_t c = 0;
      for (; c < w; c++) dst[k * W + c] = src[k * ld + c];
      for (; c < W; c++) dst[k * W + c] = 0.0f;
    }
  }
}

#if defined(__AVX512F__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the deliberately undefined pass-through operand inside its own
// _mm512_unpacklo_ps / _mm512_shuffle_f32x4 wrappers (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// Transposes a block of `rows` (<= 16) source rows x 16 columns: dst[k * ldd + c] = src[c * ld + k]
// for k < 16, c < cols (lanes c >= rows hold 0). 16 loads, 64 shuffles, 16 (masked) stores.
inline void transpose16(const float* src, int64_t ld, int rows, float* dst, int64_t ldd, __mmask16 storeMask) {
  __m512 r[16], t[16], u[16];
  for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + i * ld) : _mm512_setzero_ps();
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int j = 0; j < 4; j++) {
    u[4 * j + 0] = _mm512_shuffle_ps(t[4 * j + 0], t[4 * j + 2], 0x44);
    u[4 * j + 1] = _mm512_shuffle_ps(t[4 * j + 0], t[4 * j + 2], 0xEE);
    u[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
    u[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
  }
  // u[4j + c] holds, in 128-bit lane L, element (row 4j..4j+3, column 4L + c).
  for (int c = 0; c < 4; c++) {
    __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    __m512 w0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    __m512 v1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    _mm512_mask_storeu_ps(dst + (0 + c) * ldd, storeMask, _mm512_shuffle_f32x4(v0, v1, 0x88));
    _mm512_mask_storeu_ps(dst + (4 + c) * ldd, storeMask, _mm512_shuffle_f32x4(w0, w1, 0x88));
    _mm512_mask_storeu_ps(dst + (8 + c) * ldd, storeMask, _mm512_shuffle_f32x4(v0, v1, 0xDD));
    _mm512_mask_storeu_ps(dst + (12 + c) * ldd, storeMask, _mm512_shuffle_f32x4(w0, w1, 0xDD));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

/** A transposing copy into a panel: dst[k * W + c] = src[c * ld + k] for c < w (0 for c >= w). */
template <int W>
inline void panel_transpose(const float* src, int64_t ld, int64_t kc, int64_t w, float* dst) {
  int64_t k0 = 0;
#if defined(__AVX512F__)
  static_assert(W <= 16 || W % 16 == 0, "panel width");
  for (; k0 + 16 <= kc; k0 += 16) {
    for (int c0 = 0; c0 < W; c0 += 16) {
      int width = W - c0 < 16 ? W - c0 : 16;
      int64_t rows = w - c0 < width ? w - c0 : width;
      if (rows < 0) rows = 0;
      transpose16(src + c0 * ld + k0, ld, (int)rows, dst + k0 * W + c0, W, (__mmask16)((1u << width) - 1));
    }
  }
#else
  constexpr int KB = 16;  // k block: W source rows x KB columns stay in L1 while transposed
  if (w == W) {
    for (; k0 + KB <= kc; k0 += KB) {
      float blk[W][KB];
      for (int c = 0; c < W; c++) std::memcpy(blk[c], src + c * ld + k0, sizeof(float) * KB);
      for (int k = 0; k < KB; k++)
        for (int c = 0; c < W; c++) dst[(k0 + k) * W + c] = blk[c][k];
    }
  }
#endif
  for (; k0 < kc; k0++) {
    int64_t c = 0;
    for (; c < w; c++) dst[k0 * W + c] = src[c * ld + k0];
    for (; c < W; c++) dst[k0 * W + c] = 0.0f;
  }
}

}  // namespace gemm
}  // namespace mt
