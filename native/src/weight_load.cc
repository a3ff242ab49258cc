#include "weight_load.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>

#include "thread_pool.h"

#include "intrinsics.h"

namespace mt {
namespace {

constexpr int kStoredSize[3] = {4, 2, 2};


// float32 bits of every f16 bit pattern, exactly as src/io/dtype.ts builds its table.
const uint32_t* f16_table() {
  static uint32_t* table = [] {
    uint32_t* t = new uint32_t[65536];
    for (uint32_t h = 0; h < 65536; h++) {
      const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
      if (exp == 0x1f) {
        t[h] = sign | 0x7f800000u | (mant << 13);
      } else if (exp != 0) {
        t[h] = sign | ((exp + 112) << 23) | (mant << 13);
      } else if (mant == 0) {
        t[h] = sign;
      } else {
        const float v = (float)mant * 0x1p-24f;  // exact
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        t[h] = sign | bits;
      }
    }
    return t;
  }();
  return table;
}

// Bytes of src for elements [e0, e0 + n): a pointer into memory, or read into buf. Returns null and
// sets err on a failed read.
const uint8_t* stored_chunk(const StoredSource& src, int64_t e0, int64_t n, uint8_t* buf, int& err) {
  const int size = kStoredSize[(int)src.dtype];
  if (src.bytes) return src.bytes + e0 * size;
  int64_t want = n * size, done = 0, pos = src.byteOffset + e0 * size;
  while (done < want) {
    ssize_t r = pread(src.fd, buf + done, (size_t)(want - done), (off_t)(pos + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      err = -errno;
      return nullptr;
    }
    if (r == 0) {
      err = 1;
      return nullptr;
    }
    done += r;
  }
  return buf;
}

// n stored values -> float32 (out may alias nothing in p).
inline void decode(StoredFloat dtype, const uint8_t* p, int64_t n, float* out) {
  switch (dtype) {
    case StoredFloat::F32:
      if ((const void*)p != (const void*)out) std::memcpy(out, p, (size_t)n * 4);
      return;
    case StoredFloat::BF16: {
      uint32_t* o = reinterpret_cast<uint32_t*>(out);
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        o[i] = (uint32_t)h << 16;
      }
      return;
    }
    case StoredFloat::F16: {
      const uint32_t* t = f16_table();
      uint32_t* o = reinterpret_cast<uint32_t*>(out);
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        o[i] = t[h];
      }
      return;
    }
  }
}

struct ThreadScratch {
  uint8_t* bytes = nullptr;
  float* floats = nullptr;
  ~ThreadScratch() {
    delete[] bytes;
    delete[] floats;
  }
  void ensure() {
    if (!bytes) {
      bytes = new uint8_t[kLoadChunk * 4 + 64];
      floats = new float[kLoadChunk + 16];
    }
  }
};

thread_local ThreadScratch scratch;

// NF4 index of x: the count of thresholds strictly below it (branch-free, vectorises).
inline uint8_t nf4_index(float x, const float* t) {
  int q = 0;
  for (int i = 0; i < 15; i++) q += x > t[i];
  return (uint8_t)q;
}

// ---- one NF4 block: absmax, finiteness, codes. Three paths computing the same bits; the active one
// is chosen at run time (tests run each one the build has).

// Portable: any length (partial blocks too).
bool quantize_block_portable(const float* w, int64_t len, const float* t, float* absmaxOut, uint8_t* out) {
  float m = 0.f;
  bool finite = true;
  for (int64_t i = 0; i < len; i++) {
    const float a = std::fabs(w[i]);
    m = a > m ? a : m;
    finite &= a <= 3.4028234663852886e38f;  // false for inf and NaN
  }
  if (!finite) return false;
  *absmaxOut = m;
  const float inv = m == 0.f ? 0.f : 1.f / m;
  uint8_t q[kMaxNf4Block];
  for (int64_t i = 0; i < len; i++) q[i] = m == 0.f ? 7 : nf4_index(w[i] * inv, t);
  int64_t i = 0;
  for (; i + 1 < len; i += 2) out[i >> 1] = (uint8_t)((q[i] << 4) | q[i + 1]);
  if (i < len) out[i >> 1] = (uint8_t)(q[i] << 4);
  return true;
}

#if defined(__AVX512F__)
// AVX-512, len a multiple of 16: the index by a branch-free binary search over the 15 thresholds
// (vpermps table lookups), nibbles paired with one multiply-add of bytes.
bool quantize_block_avx512(const float* w, int64_t len, const float* t, float* absmaxOut, uint8_t* out) {
  const __m512 big = _mm512_set1_ps(3.4028234663852886e38f);
  __m512 vmax = _mm512_setzero_ps();
  __mmask16 bad = 0;
  for (int64_t i = 0; i < len; i += 16) {
    const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(w + i));
    bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);  // inf or NaN
    vmax = _mm512_max_ps(vmax, a);
  }
  if (bad) return false;
  const float m = _mm512_reduce_max_ps(vmax);
  *absmaxOut = m;
  const __m512 inv = _mm512_set1_ps(m == 0.f ? 0.f : 1.f / m);
  alignas(64) float tt[16];
  for (int k = 0; k < 15; k++) tt[k] = t[k];
  tt[15] = t[14];
  const __m512 table = _mm512_load_ps(tt);
  const __m512i c8 = _mm512_set1_epi32(8), c4 = _mm512_set1_epi32(4), c2 = _mm512_set1_epi32(2),
                c1 = _mm512_set1_epi32(1), c7 = _mm512_set1_epi32(7), c3 = _mm512_set1_epi32(3);
  const __m128i pairs = _mm_set1_epi16(0x0110);
  for (int64_t i = 0; i < len; i += 16) {
    const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(w + i), inv);
    __m512i idx = _mm512_setzero_si512();
    __mmask16 k = _mm512_cmp_ps_mask(x, _mm512_permutexvar_ps(_mm512_add_epi32(idx, c7), table), _CMP_GT_OQ);
    idx = _mm512_mask_add_epi32(idx, k, idx, c8);
    k = _mm512_cmp_ps_mask(x, _mm512_permutexvar_ps(_mm512_add_epi32(idx, c3), table), _CMP_GT_OQ);
    idx = _mm512_mask_add_epi32(idx, k, idx, c4);
    k = _mm512_cmp_ps_mask(x, _mm512_permutexvar_ps(_mm512_add_epi32(idx, c1), table), _CMP_GT_OQ);
    idx = _mm512_mask_add_epi32(idx, k, idx, c2);
    k = _mm512_cmp_ps_mask(x, _mm512_permutexvar_ps(idx, table), _CMP_GT_OQ);
    idx = _mm512_mask_add_epi32(idx, k, idx, c1);
    const __m128i bytes = _mm512_cvtepi32_epi8(idx);
    const __m128i packed = _mm_maddubs_epi16(bytes, pairs);  // 16 * q[2j] + q[2j + 1]
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + (i >> 1)), _mm_packus_epi16(packed, packed));
  }
  return true;
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
// AVX2, len a multiple of 8: the index as the count of thresholds below (15 compares).
bool quantize_block_avx2(const float* w, int64_t len, const float* t, float* absmaxOut, uint8_t* out) {
  const __m256 signless = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 big = _mm256_set1_ps(3.4028234663852886e38f);
  __m256 vmax = _mm256_setzero_ps();
  int bad = 0;
  for (int64_t i = 0; i < len; i += 8) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(w + i), signless);
    bad |= _mm256_movemask_ps(_mm256_cmp_ps(a, big, _CMP_NLE_UQ));
    vmax = _mm256_max_ps(vmax, a);
  }
  if (bad) return false;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float m = 0.f;
  for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
  *absmaxOut = m;
  const __m256 inv = _mm256_set1_ps(m == 0.f ? 0.f : 1.f / m);
  __m256 tv[15];
  for (int k = 0; k < 15; k++) tv[k] = _mm256_set1_ps(t[k]);
  alignas(32) int32_t q[8];
  for (int64_t i = 0; i < len; i += 8) {
    const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(w + i), inv);
    __m256i idx = _mm256_setzero_si256();
    for (int k = 0; k < 15; k++) idx = _mm256_sub_epi32(idx, _mm256_castps_si256(_mm256_cmp_ps(x, tv[k], _CMP_GT_OQ)));
    _mm256_store_si256(reinterpret_cast<__m256i*>(q), idx);
    for (int j = 0; j < 8; j += 2) out[(i + j) >> 1] = (uint8_t)((q[j] << 4) | q[j + 1]);
  }
  return true;
}
#endif

Nf4Isa best_isa() {
#if defined(__AVX512F__)
  return Nf4Isa::Avx512;
#elif defined(__AVX2__) && defined(__FMA__)
  return Nf4Isa::Avx2;
#else
  return Nf4Isa::Portable;
#endif
}

std::atomic<int> g_isa{(int)best_isa()};

bool quantize_block(const float* w, int64_t len, int64_t blockSize, const float* t, float* absmaxOut, uint8_t* out) {
  const Nf4Isa isa = (Nf4Isa)g_isa.load(std::memory_order_relaxed);
#if defined(__AVX512F__)
  if (isa == Nf4Isa::Avx512 && len == blockSize && len % 16 == 0) return quantize_block_avx512(w, len, t, absmaxOut, out);
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if (isa == Nf4Isa::Avx2 && len == blockSize && len % 8 == 0) return quantize_block_avx2(w, len, t, absmaxOut, out);
#endif
  (void)isa;
  (void)blockSize;
  return quantize_block_portable(w, len, t, absmaxOut, out);
}

}  // namespace

const char* nf4_isa_name(Nf4Isa isa) {
  switch (isa) {
    case Nf4Isa::Avx512: return "avx512";
    case Nf4Isa::Avx2: return "avx2";
    default: return "portable";
  }
}

int nf4_isa_available(Nf4Isa* out) {
  int n = 0;
#if defined(__AVX512F__)
  out[n++] = Nf4Isa::Avx512;
#endif
#if defined(__AVX2__) && defined(__FMA__)
  out[n++] = Nf4Isa::Avx2;
#endif
  out[n++] = Nf4Isa::Portable;
  return n;
}

Nf4Isa nf4_isa() { return (Nf4Isa)g_isa.load(); }

bool nf4_set_isa(Nf4Isa isa) {
  Nf4Isa avail[3];
  const int n = nf4_isa_available(avail);
  for (int i = 0; i < n; i++) {
    if (avail[i] == isa) {
      g_isa.store((int)isa);
      return true;
    }
  }
  return false;
}

int decode_stored_floats(const StoredSource& src, int64_t numel, float* out) {
  const int64_t chunks = (numel + kLoadChunk - 1) / kLoadChunk;
  std::atomic<int> firstErr{0};
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    scratch.ensure();
    for (int64_t c = c0; c < c1; c++) {
      const int64_t e0 = c * kLoadChunk, n = std::min(kLoadChunk, numel - e0);
      int err = 0;
      // F32 from a file is read straight into out
      uint8_t* buf = src.dtype == StoredFloat::F32 && !src.bytes ? reinterpret_cast<uint8_t*>(out + e0) : scratch.bytes;
      const uint8_t* p = stored_chunk(src, e0, n, buf, err);
      if (!p) {
        int expected = 0;
        firstErr.compare_exchange_strong(expected, err);
        return;
      }
      decode(src.dtype, p, n, out + e0);
    }
  });
  return firstErr.load();
}

int64_t nf4_quantize_stored(const StoredSource& src, int64_t numel, int64_t blockSize, const float* thresholds,
                            uint8_t* codes, float* absmax) {
  const int64_t blocks = (numel + blockSize - 1) / blockSize;
  // chunks hold whole blocks (blockSize is even, so a chunk starts on a byte boundary)
  const int64_t blocksPerChunk = std::max<int64_t>(1, kLoadChunk / blockSize);
  const int64_t chunks = (blocks + blocksPerChunk - 1) / blocksPerChunk;
  float t[15];
  for (int i = 0; i < 15; i++) t[i] = thresholds[i];
  constexpr int64_t kNone = INT64_MAX;
  std::atomic<int64_t> badBlock{kNone};
  std::atomic<int> readErr{0};
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    scratch.ensure();
    for (int64_t c = c0; c < c1; c++) {
      const int64_t b0 = c * blocksPerChunk, b1 = std::min(blocks, b0 + blocksPerChunk);
      const int64_t e0 = b0 * blockSize, n = std::min(numel, b1 * blockSize) - e0;
      int err = 0;
      const uint8_t* p = stored_chunk(src, e0, n, scratch.bytes, err);
      if (!p) {
        int expected = 0;
        readErr.compare_exchange_strong(expected, err);
        return;
      }
      float* w;
      if (src.dtype == StoredFloat::F32 && (reinterpret_cast<uintptr_t>(p) & 3) == 0) {
        w = const_cast<float*>(reinterpret_cast<const float*>(p));
      } else {
        w = scratch.floats;
        decode(src.dtype, p, n, w);
      }
      for (int64_t b = b0; b < b1; b++) {
        const int64_t lo = b * blockSize - e0, hi = std::min(numel - e0, lo + blockSize);
        if (!quantize_block(w + lo, hi - lo, blockSize, t, absmax + b, codes + ((e0 + lo) >> 1))) {
          int64_t seen = badBlock.load();
          while (b < seen && !badBlock.compare_exchange_weak(seen, b)) {
          }
          return;
        }
      }
    }
  });
  const int err = readErr.load();
  if (err) return err < 0 ? -2 + err : -2;
  const int64_t bad = badBlock.load();
  return bad == kNone ? -1 : bad;
}

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
float nf4_quantize_scales(const float* absmax, int64_t n, int64_t nestedBlockSize, const float* dyn,
                          uint8_t* qabsmax, float* nestedAbsmax) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += (double)absmax[i];
  const float offset = n == 0 ? 0.f : (float)(sum / (double)n);
  // nearest dynamic-map index: ties to the lower index, the difference test in double
  auto nearest = [dyn](float x) -> uint8_t {
    if (x <= dyn[0]) return 0;
    if (x >= dyn[255]) return 255;
    // the largest lo in [0, 254] with dyn[lo] <= x (what the reference's bisection ends on), branch-free
    int lo = 0;
    for (int step = 128; step > 0; step >>= 1) {
      const int cand = lo + step;
      lo = cand <= 254 && dyn[cand] <= x ? cand : lo;
    }
    const int hi = lo + 1;
    return (double)x - (double)dyn[lo] <= (double)dyn[hi] - (double)x ? (uint8_t)lo : (uint8_t)hi;
  };
  const uint8_t zero = nearest(0.f);
  const int64_t nb = (n + nestedBlockSize - 1) / nestedBlockSize;
  parallel_for(nb, 64, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      const int64_t lo = b * nestedBlockSize, hi = std::min(n, lo + nestedBlockSize);
      float m = 0.f;
      for (int64_t i = lo; i < hi; i++) {
        const float c = absmax[i] - offset;
        m = std::max(m, std::fabs(c));
      }
      nestedAbsmax[b] = m;
      const float inv = m == 0.f ? 0.f : 1.f / m;
      for (int64_t i = lo; i < hi; i++) {
        const float c = absmax[i] - offset;
        qabsmax[i] = m == 0.f ? zero : nearest(c * inv);
      }
    }
  });
  return offset;
}

}  // namespace mt
