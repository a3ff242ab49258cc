#include "nf4_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "aligned_buffer.h"
#include "gemm.h"
#include "gemm_driver.h"
#include "gemm_skinny.h"
#include "nf4_skinny.h"
#include "thread_pool.h"

#include "intrinsics.h"

namespace mt {
namespace {

using gemm::min64;
using gemm::NR;

// The block scale in float32 with two roundings (the reference's Math.fround(Math.fround(q * n) +
// offset)): compilers must not fuse the multiply and the add.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
inline float block_scale(const Nf4Weight& w, int64_t b) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  if (w.absmax) return w.absmax[b];
  const int64_t nb = w.nestedBlockSize;
  // the nested block by a shift when its size is a power of two (256 in practice): an int64
  // division per 64-value block cost as much as the multiply-adds of a 16-row product
  const int64_t nested = (nb & (nb - 1)) == 0 ? b >> __builtin_ctzll((unsigned long long)nb) : b / nb;
  const float t = w.nestedCode[w.qabsmax[b]] * w.nestedAbsmax[nested];
  return t + w.offset;
}

// The 16 values of a block with scale s: code[c] * s, one float32 product each (a vector multiply
// rounds each lane exactly as the scalar one).
typedef float v16f __attribute__((vector_size(64)));
inline void scaled_table(const Nf4Weight& w, float s, float* lut) {
  v16f c;
  std::memcpy(&c, w.code, sizeof c);
  c *= s;
  std::memcpy(lut, &c, sizeof c);
}

// Dequantises elements [e, end) of one block (scale s) into out[0 ..).
inline void dequantize_in_block(const Nf4Weight& w, float s, int64_t e, int64_t end, float* out) {
  const uint8_t* codes = w.codes;
  alignas(64) float lut[16];
  scaled_table(w, s, lut);
  float* o = out;
  if ((e & 1) && e < end) {
    *o++ = lut[codes[e >> 1] & 15];
    e++;
  }
#if defined(__AVX512F__)
  // 32 values from 16 bytes: the nibbles in element order, widened to 32-bit indices, then one
  // 16-entry table lookup (vpermps) per 16 values.
  if (end - e >= 32) {
    const __m512 table = _mm512_load_ps(lut);
    const __m128i low4 = _mm_set1_epi8(15);
    for (; e + 32 <= end; e += 32, o += 32) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + (e >> 1)));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low4);
      const __m128i lo = _mm_and_si128(bytes, low4);
      _mm512_storeu_ps(o, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)), table));
      _mm512_storeu_ps(o + 16, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(hi, lo)), table));
    }
  }
#elif defined(__AVX2__)
  // 16 values from 8 bytes: two 8-entry lookups (vpermps) blended on the index's bit 3.
  if (end - e >= 16) {
    const __m256 tlo = _mm256_load_ps(lut), thi = _mm256_load_ps(lut + 8);
    const __m128i low4 = _mm_set1_epi8(15);
    const __m256i seven = _mm256_set1_epi32(7);
    for (; e + 16 <= end; e += 16, o += 16) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + (e >> 1)));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low4);
      const __m128i lo = _mm_and_si128(bytes, low4);
      const __m128i nib = _mm_unpacklo_epi8(hi, lo);  // 16 indices in element order
      for (int h = 0; h < 2; h++) {
        const __m256i idx = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(nib, 8) : nib);
        const __m256 a = _mm256_permutevar8x32_ps(tlo, idx), b = _mm256_permutevar8x32_ps(thi, idx);
        _mm256_storeu_ps(o + 8 * h, _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven))));
      }
    }
  }
#endif
  for (; e + 2 <= end; e += 2, o += 2) {
    const uint8_t byte = codes[e >> 1];
    o[0] = lut[byte >> 4];
    o[1] = lut[byte & 15];
  }
  if (e < end) *o = lut[codes[e >> 1] >> 4];
}

// Dequantising one value costs about three packed floats of the dense GEMM (table lookups, plus a
// transpose for W^T).
constexpr double kNf4PackCost = 3 * gemm::kPackCostFlops;

/** op(B) = W^T [K, N]: panel column j is row j of W. */
struct Nf4PackT {
  const Nf4Weight* w;

  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nr, float* dst) const {
    static thread_local AlignedBuffer tileBuf;
    float* tile = tileBuf.get(NR * kc);  // rows j0 .. j0 + nr of W, columns k0 .. k0 + kc
    for (int64_t r = 0; r < nr; r++) nf4_dequantize(*w, (j0 + r) * w->K + k0, kc, tile + r * kc);
    gemm::panel_transpose<NR>(tile, kc, kc, nr, dst);
  }
  double cost() const { return kNf4PackCost; }
};

/** op(B) = W [N, K] (the GEMM's K is N): panel rows are runs of W's rows. */
struct Nf4PackN {
  const Nf4Weight* w;

  void pack(int64_t k0, int64_t kc, int64_t j0, int64_t nr, float* dst) const {
    for (int64_t k = 0; k < kc; k++) {
      float* row = dst + k * NR;
      nf4_dequantize(*w, (k0 + k) * w->K + j0, nr, row);
      for (int64_t c = nr; c < NR; c++) row[c] = 0.0f;
    }
  }
  double cost() const { return kNf4PackCost; }
};

}  // namespace

void nf4_dequantize(const Nf4Weight& w, int64_t e0, int64_t n, float* out) {
  const int64_t end = e0 + n;
  int64_t e = e0;
  // one division per call (a shift for power-of-two blocks), then the blocks in order
  const int64_t bs = w.blockSize;
  int64_t b = (bs & (bs - 1)) == 0 ? e >> __builtin_ctzll((unsigned long long)bs) : e / bs;
  for (; e < end; b++) {
    const int64_t blockEnd = min64(end, (b + 1) * bs);
    dequantize_in_block(w, block_scale(w, b), e, blockEnd, out + (e - e0));
    e = blockEnd;
  }
}

void nf4_block_scales(const Nf4Weight& w, int64_t b0, int64_t n, float* out) {
  for (int64_t i = 0; i < n; i++) out[i] = block_scale(w, b0 + i);
}

namespace {

// Whether sgemm(false, transW, M, cols, ...) leaves its blocked path (gemv, gemm_skinny.h).
bool dense_takes_short_path(bool transW, int64_t M, int64_t cols) {
  if (M == 1 || cols == 1) return true;
  if (cols <= kSkinnyMax && cols <= M) return true;
  return M <= kSkinnyMax && (transW || M <= 8);
}

// Few rows of A (decoding, a short batch): the dense GEMM would take its matrix-vector or skinny
// path, so W is dequantised a slab at a time and each slab goes through sgemm: every C element is
// then computed exactly as the dense GEMM computes it on the dequantised weight. Slabs: rows of W
// (columns of C) for transW; for W, column slabs of 256 (the gemv column block); a tail slab that
// would take another path than the whole product (one column; for W, 16 or fewer) is merged into
// the previous one.
void nf4_gemm_short(bool transW, int64_t M, const float* A, const Nf4Weight& w, float beta, float* C,
                    int maxThreads) {
  const int64_t cols = transW ? w.N : w.K;
  const int64_t slab = transW ? (w.K > 0 && (1 << 16) / w.K > 1 ? min64((1 << 16) / w.K, 64) : 1) : 256;
  int64_t slabs = (cols + slab - 1) / slab;
  // merge a tail slab that would take another path: 1 column (gemv), or for W up to 16 columns
  const int64_t tail = cols - (slabs - 1) * slab;
  if (slabs > 1 && (tail == 1 || (!transW && tail <= kSkinnyMax))) slabs--;
  auto run = [&](int64_t b, int64_t e) {
    static thread_local AlignedBuffer tileBuf;
    for (int64_t i = b; i < e; i++) {
      const int64_t j0 = i * slab, j1 = i + 1 == slabs ? cols : j0 + slab, n = j1 - j0;
      if (transW) {
        // C[:, j0:j1] = A W[j0:j1, :]^T
        float* tile = tileBuf.get(n * w.K);
        nf4_dequantize(w, j0 * w.K, n * w.K, tile);
        sgemm(false, true, M, n, w.K, 1.0f, A, w.K, tile, w.K, beta, C + j0, w.N, 1);
      } else {
        // C[:, j0:j1] = A W[:, j0:j1]
        float* tile = tileBuf.get(w.N * n);
        for (int64_t r = 0; r < w.N; r++) nf4_dequantize(w, r * w.K + j0, n, tile + r * n);
        sgemm(false, false, M, n, w.N, 1.0f, A, w.N, tile, n, beta, C + j0, w.K, 1);
      }
    }
  };
  if (maxThreads == 1) run(0, slabs);
  else parallel_for(slabs, 1, run);
}

}  // namespace

void nf4_gemm(bool transW, int64_t M, const float* A, const Nf4Weight& w, float beta, float* C, int maxThreads) {
  // transW: C[M, N] = A[M, K] W^T; else C[M, K] = A[M, N] W
  const int64_t cols = transW ? w.N : w.K, inner = transW ? w.K : w.N;
  if (M <= 0 || cols <= 0) return;
  if (inner <= 0) {
    sgemm(false, false, M, cols, 0, 1.0f, A, 0, A, 0, beta, C, cols, 1);  // C = beta * C
    return;
  }
  // an expert's few rows: W dequantised in registers (nf4_skinny.h)
  if (transW ? nf4_gemm_skinny_t(M, A, w, beta, C, maxThreads) : nf4_gemm_skinny_n(M, A, w, beta, C, maxThreads)) return;
  if (dense_takes_short_path(transW, M, cols)) {
    nf4_gemm_short(transW, M, A, w, beta, C, maxThreads);
    return;
  }
  const gemm::GemmAC g{false, M, cols, inner, 1.0f, A, inner, beta, C, cols};
  if (transW)
    gemm::gemm_threaded(g, Nf4PackT{&w}, maxThreads);
  else
    gemm::gemm_threaded(g, Nf4PackN{&w}, maxThreads);
}

void nf4_gemm_grouped(bool transW, int64_t count, const int64_t* Ms, const float* const* As, const Nf4Weight* Ws,
                      float beta, float* const* Cs) {
  static thread_local std::vector<int64_t> order;
  order.clear();
  for (int64_t i = 0; i < count; i++)
    if (Ms[i] > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return Ms[a] > Ms[b]; });
  const int64_t* ord = order.data();
  auto task = [&](int t, int) {
    const int64_t i = ord[t];
    nf4_gemm(transW, Ms[i], As[i], Ws[i], beta, Cs[i], 1);
  };
  const int n = (int)order.size();
  if (n == 1) {
    nf4_gemm(transW, Ms[ord[0]], As[ord[0]], Ws[ord[0]], beta, Cs[ord[0]], 0);
    return;
  }
  run_tasks(n, task);
}

}  // namespace mt
