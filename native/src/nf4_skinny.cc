#include "nf4_skinny.h"

#include <cstring>
#include <type_traits>

#include "aligned_buffer.h"
#include "gemm_skinny_reduce.h"
#include "simd.h"
#include "thread_pool.h"

#include "intrinsics.h"

namespace mt {
namespace {

// Rows of A per outer-form pass: as many accumulator vectors as the register file holds with room
// for the weight vector (32 zmm; 16 ymm / xmm).
constexpr int kRowsPerPass = kLanes == 16 ? 16 : 8;
// Rows of A per dot-form pass: 16 with one W row at a time (AVX-512; measured as fast as 2 passes
// of 8 rows x 3 W rows, and each weight vector is dequantised once), else 8.
constexpr int kDotRows = kLanes == 16 ? 16 : 8;
// W rows per dot-form step with 8 rows of A (3 x 8 accumulators in 32 zmm; 1 x 8 in 16 ymm).
constexpr int kDotW = kLanes == 16 ? 3 : 1;
// About this many flops per task before another thread pays off.
constexpr double kMinFlopsPerTask = 2.0e5;

/**
 * x in every lane. (simd.h's vsplat is 0 + x, which GCC must keep as an add because of -0; here
 * the value only ever multiplies into sums that start at +0, where a zero's sign cannot show, so a
 * plain broadcast, folded into the multiply-add's memory operand, gives the same bits.)
 */
inline vf bcast(float x) {
#if defined(__AVX512F__)
  return (vf)_mm512_set1_ps(x);
#elif defined(__AVX__)
  return (vf)_mm256_set1_ps(x);
#else
  vf v;
  for (int i = 0; i < kLanes; i++) v[i] = x;
  return v;
#endif
}

/**
 * kLanes weight values from kLanes / 2 code bytes (element order: high nibble first), each
 * code[nibble] * s in float32 (the product dequantize_in_block's table holds).
 */
struct Dequant {
  const float* code;
#if defined(__AVX512F__)
  __m512 table;
  explicit Dequant(const float* c) : code(c), table(_mm512_loadu_ps(c)) {}
  inline vf operator()(const uint8_t* bytes, float s) const {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes));
    const __m128i low4 = _mm_set1_epi8(15);
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), low4), _mm_and_si128(b, low4));
    return (vf)_mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(nib), table), _mm512_set1_ps(s));
  }
#elif defined(__AVX2__)
  __m256 tlo, thi;
  explicit Dequant(const float* c) : code(c), tlo(_mm256_loadu_ps(c)), thi(_mm256_loadu_ps(c + 8)) {}
  inline vf operator()(const uint8_t* bytes, float s) const {
    uint32_t word;
    std::memcpy(&word, bytes, 4);
    const __m128i b = _mm_cvtsi32_si128((int)word);
    const __m128i low4 = _mm_set1_epi8(15);
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), low4), _mm_and_si128(b, low4));
    const __m256i idx = _mm256_cvtepu8_epi32(nib);
    const __m256 lo = _mm256_permutevar8x32_ps(tlo, idx), hi = _mm256_permutevar8x32_ps(thi, idx);
    const __m256 v = _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7))));
    return (vf)_mm256_mul_ps(v, _mm256_set1_ps(s));
  }
#else
  explicit Dequant(const float* c) : code(c) {}
  inline vf operator()(const uint8_t* bytes, float s) const {
    alignas(64) float t[kLanes];
    for (int i = 0; i < kLanes / 2; i++) {
      t[2 * i] = code[bytes[i] >> 4] * s;
      t[2 * i + 1] = code[bytes[i] & 15] * s;
    }
    return vload(t);
  }
#endif
};

/**
 * Rows [0, R) of C (ldc K) at columns [c0, c1) (multiples of kLanes): acc[r] = sum over n of
 * P[n * R + r] * W[n, c .. c + kLanes), one chain in n order, then C = alpha * acc (+ beta * C) as
 * the dense outer form stores it (gemm_skinny.cc). Rows >= `rows` of P are zero and not stored.
 *
 * W's rows are walked in blocks of NB, each block across all the columns, so that the block's code
 * lines, scales and packed A stay in L1 across the 8 column vectors a 64-byte code line serves; the
 * partial sums wait in `part` between blocks, stored and reloaded exactly (each chain is unchanged).
 */
template <int R>
void outer_rows(int64_t rows, const float* P, const Nf4Weight& w, const float* scales, int shift, int64_t c0,
                int64_t c1, float beta, float* C) {
  constexpr int64_t NB = 32;
  const Dequant dq(w.code);
  const int64_t N = w.N, K = w.K;
  const float alpha = 1.0f;
  static thread_local AlignedBuffer partBuf;
  vf* part = reinterpret_cast<vf*>(partBuf.get((N > NB ? (c1 - c0) : 0) * R));
  for (int64_t n0 = 0; n0 < N; n0 += NB) {
    const int64_t n1 = n0 + NB < N ? n0 + NB : N;
    const bool first = n0 == 0, last = n1 == N;
    for (int64_t l = c0; l < c1; l += kLanes) {
      vf acc[R];
      vf* saved = part + ((l - c0) / kLanes) * R;
      for (int r = 0; r < R; r++) acc[r] = first ? vf{} : saved[r];
      const uint8_t* codes = w.codes + ((n0 * K + l) >> 1);
      int64_t e = n0 * K + l;
      for (int64_t n = n0; n < n1; n++, e += K, codes += K >> 1) {
        const vf x = dq(codes, scales[e >> shift]);
        const float* p = P + n * R;
        for (int r = 0; r < R; r++) {
          const vf b = bcast(p[r]);
          acc[r] += b * x;
        }
      }
      if (!last) {
        for (int r = 0; r < R; r++) saved[r] = acc[r];
        continue;
      }
      for (int64_t r = 0; r < rows; r++) {
        float* c = C + r * K + l;
        const vf a = vsplat(alpha) * acc[r];
        vstore(c, beta == 0.0f ? a : a + vsplat(beta) * vload(c));
      }
    }
  }
}

/**
 * C[s, n] = A[s, :] . W[n, :] (+ beta * C) for rows s < `rows` of A (R = 8 or 16 at once, lda K,
 * ldc N) and W rows n in [n0, n1), RD rows of W at a time: the dense dot form's arithmetic
 * (gemm_skinny.cc): kLanes-lane partial sums acc += w * a over k in order, reduced by hsum_g,
 * then combine. W's rows go in blocks of NBLK, each block over K in chunks of KB, so that a chunk of
 * A (interleaved once per call) stays in L1 while the block's rows pass over it; the block's partial
 * sums wait in `part` between chunks (stored and reloaded exactly, so each chain is unchanged).
 */
template <int RD, int R>
void dot_rows(int64_t rows, const float* A, const Nf4Weight& w, const float* scales, int shift, int64_t n0,
              int64_t n1, float beta, float* C) {
  constexpr int64_t KB = 256, NBLK = 32;
  const Dequant dq(w.code);
  const int64_t N = w.N, K = w.K;
  const float alpha = 1.0f;
  static thread_local AlignedBuffer partBuf, packBuf;
  vf* part = reinterpret_cast<vf*>(partBuf.get((K > KB ? NBLK : 0) * R * kLanes));
  // A interleaved by vector: Ap[(k / kLanes) * R + s] = A[s, k ..] (rows K floats apart would all
  // fall in the same L1 set); padding rows repeat row 0
  vf* Ap = reinterpret_cast<vf*>(packBuf.get(K * R));
  for (int64_t k = 0; k < K; k += kLanes)
    for (int s = 0; s < R; s++) Ap[(k / kLanes) * R + s] = vload(A + (s < rows ? s : 0) * K + k);
  // blocks of NBLK W rows, each over the K chunks in order: the partial sums of one block stay in
  // L1 / L2 between chunks
  for (int64_t b0 = n0; b0 < n1; b0 += NBLK) {
    const int64_t b1 = b0 + NBLK < n1 ? b0 + NBLK : n1;
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
      const int64_t k1 = k0 + KB < K ? k0 + KB : K;
      const bool first = k0 == 0, last = k1 == K;
      const vf* Ac = Ap + (k0 / kLanes) * R;
      auto step = [&](int64_t n, auto rd) {
        constexpr int D = decltype(rd)::value;
        vf acc[D][R];
        for (int r = 0; r < D; r++)
          for (int s = 0; s < R; s++) acc[r][s] = first ? vf{} : part[(n + r - b0) * R + s];
        int64_t e = n * K + k0;
        const uint8_t* codes = w.codes + (e >> 1);
        const vf* a = Ac;
        for (int64_t k = k0; k < k1; k += kLanes, e += kLanes, codes += kLanes / 2, a += R) {
          vf x[D];
          for (int r = 0; r < D; r++) x[r] = dq(codes + r * (K >> 1), scales[(e + r * K) >> shift]);
          for (int s = 0; s < R; s++) {
            const vf as = a[s];
            for (int r = 0; r < D; r++) acc[r][s] += x[r] * as;
          }
        }
        if (!last) {
          for (int r = 0; r < D; r++)
            for (int s = 0; s < R; s++) part[(n + r - b0) * R + s] = acc[r][s];
          return;
        }
        for (int r = 0; r < D; r++) {
          float dots[R];
          for (int g = 0; g < R; g += skinny::G) skinny::hsum_g(acc[r] + g, dots + g);
          for (int64_t s = 0; s < rows; s++) {
            float* c = C + s * N + n + r;
            *c = skinny::combine(alpha, dots[s], beta, *c);
          }
        }
      };
      int64_t n = b0;
      for (; n + RD <= b1; n += RD) step(n, std::integral_constant<int, RD>{});
      for (; n < b1; n++) step(n, std::integral_constant<int, 1>{});
    }
  }
}

/** Whether the weight's blocks tile its rows in whole vectors; the block index shift. */
bool vector_blocks(const Nf4Weight& w, int* shift) {
  const int64_t bs = w.blockSize;
  if (bs <= 0 || (bs & (bs - 1)) != 0 || bs % kLanes != 0 || w.K % bs != 0) return false;
  *shift = __builtin_ctzll((unsigned long long)bs);
  return true;
}

/** Every block's scale: absmax, or computed once into a thread's buffer (double quantisation). */
const float* all_scales(const Nf4Weight& w) {
  if (w.absmax) return w.absmax;
  static thread_local AlignedBuffer scaleBuf;
  const int64_t blocks = w.N * w.K / w.blockSize;
  float* s = scaleBuf.get(blocks);
  nf4_block_scales(w, 0, blocks, s);
  return s;
}

}  // namespace

bool nf4_gemm_skinny_t(int64_t M, const float* A, const Nf4Weight& w, float beta, float* C, int maxThreads) {
  const int64_t N = w.N, K = w.K;
  int shift = 0;
  // one W row (N == 1) is the dense GEMM's matrix-vector case, with its own summation order
  if (M < 2 || M > kNf4SkinnyMaxRows || N < 2 || K <= 0 || !vector_blocks(w, &shift)) return false;
  const float* scales = all_scales(w);
  const int64_t passes = (M + kDotRows - 1) / kDotRows;
  const int64_t perPass = (M + passes - 1) / passes;
  const double flopsPerRow = 2.0 * (double)M * (double)K;
  int64_t grain = (int64_t)(kMinFlopsPerTask / flopsPerRow) + 1;
  if (maxThreads == 1) grain = N;
  parallel_for(N, grain, [&](int64_t b, int64_t e) {
    for (int64_t g = 0; g < passes; g++) {
      const int64_t g0 = g * perPass, rows = g0 + perPass <= M ? perPass : M - g0;
      if (rows <= 8)
        dot_rows<kDotW, 8>(rows, A + g0 * K, w, scales, shift, b, e, beta, C + g0 * N);
      else if constexpr (kDotRows >= 16)
        dot_rows<1, 16>(rows, A + g0 * K, w, scales, shift, b, e, beta, C + g0 * N);
    }
  });
  return true;
}

bool nf4_gemm_skinny_n(int64_t M, const float* A, const Nf4Weight& w, float beta, float* C, int maxThreads) {
  const int64_t N = w.N, K = w.K;
  int shift = 0;
  if (M < 2 || M > kNf4SkinnyMaxRows || N <= 0 || K <= 0 || !vector_blocks(w, &shift)) return false;
  const float* scales = all_scales(w);
  static thread_local AlignedBuffer packBuf;
  // A's rows packed n-major per pass: P[n * R + r] = A[g0 + r, n] (0 past M)
  const int64_t passes = (M + kRowsPerPass - 1) / kRowsPerPass;
  const int64_t perPass = (M + passes - 1) / passes;
  const int R = perPass <= 4 ? 4 : perPass <= 8 ? 8 : perPass <= 12 ? 12 : 16;
  float* P = packBuf.get(passes * N * R);
  for (int64_t g = 0; g < passes; g++) {
    const int64_t g0 = g * perPass, rows = g0 + perPass <= M ? perPass : M - g0;
    float* Pg = P + g * N * R;
    for (int64_t n = 0; n < N; n++)
      for (int r = 0; r < R; r++) Pg[n * R + r] = r < rows ? A[(g0 + r) * N + n] : 0.0f;
  }
  const int64_t chunks = K / kLanes;
  const double flopsPerChunk = 2.0 * (double)M * (double)N * (double)kLanes;
  int64_t grain = (int64_t)(kMinFlopsPerTask / flopsPerChunk) + 1;
  if (maxThreads == 1) grain = chunks;
  parallel_for(chunks, grain, [&](int64_t b, int64_t e) {
    for (int64_t g = 0; g < passes; g++) {
      const int64_t g0 = g * perPass, rows = g0 + perPass <= M ? perPass : M - g0;
      const float* Pg = P + g * N * R;
      float* Cg = C + g0 * K;
      const int64_t c0 = b * kLanes, c1 = e * kLanes;
      switch (R) {
        case 4: outer_rows<4>(rows, Pg, w, scales, shift, c0, c1, beta, Cg); break;
        case 8: outer_rows<8>(rows, Pg, w, scales, shift, c0, c1, beta, Cg); break;
        case 12: if constexpr (kRowsPerPass >= 12) outer_rows<12>(rows, Pg, w, scales, shift, c0, c1, beta, Cg); break;
        default: if constexpr (kRowsPerPass >= 16) outer_rows<16>(rows, Pg, w, scales, shift, c0, c1, beta, Cg); break;
      }
    }
  });
  return true;
}

}  // namespace mt
