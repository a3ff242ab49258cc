#include "weight_load.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>

#include "thread_pool.h"

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

}  // namespace

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
        float m = 0.f;
        bool finite = true;
        for (int64_t i = lo; i < hi; i++) {
          const float a = std::fabs(w[i]);
          m = a > m ? a : m;
          finite &= a <= 3.4028234663852886e38f;  // false for inf and NaN
        }
        if (!finite) {
          int64_t seen = badBlock.load();
          while (b < seen && !badBlock.compare_exchange_weak(seen, b)) {
          }
          return;
        }
        absmax[b] = m;
        const float inv = m == 0.f ? 0.f : 1.f / m;
        uint8_t q[kMaxNf4Block];
        const int64_t len = hi - lo;
        if (m == 0.f) {
          for (int64_t i = 0; i < len; i++) q[i] = 7;
        } else {
          for (int64_t i = 0; i < len; i++) q[i] = nf4_index(w[lo + i] * inv, t);
        }
        uint8_t* out = codes + ((e0 + lo) >> 1);
        int64_t i = 0;
        for (; i + 1 < len; i += 2) out[i >> 1] = (uint8_t)((q[i] << 4) | q[i + 1]);
        if (i < len) out[i >> 1] = (uint8_t)(q[i] << 4);
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
    int lo = 0, hi = 255;
    while (hi - lo > 1) {
      const int mid = (lo + hi) >> 1;
      if (dyn[mid] <= x) lo = mid;
      else hi = mid;
    }
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
