// Loading kernels: safetensors float data (F32 / BF16 / F16) decoded to float32, and NF4
// quantisation (src/quant/nf4.ts, docs/quantization.md) straight from the stored bytes, so a
// 4-bit load never holds a float32 copy of a quantised tensor. Both read either from memory or
// from an open file descriptor with pread (each pool task reads and converts its own chunk of at
// most kLoadChunk elements into a thread-local buffer: reading and computing overlap across
// threads, and the scratch per thread is bounded whatever the tensor size).
//
// Results are bit-identical to the TypeScript reference (test/native-weight-load.test.ts):
//  - bf16 -> f32 is a 16-bit shift; f16 -> f32 goes through the same 64K-entry table as
//    src/io/dtype.ts (NaN payloads kept, no quieting).
//  - NF4: per block of blockSize values, m = max |w| (float32), inv = 1 / m in float32 (0 when
//    m == 0), index = number of the 15 float32 thresholds strictly below w * inv (float32 product):
//    exactly the reference's binary search. Element 2i is the high nibble of byte i.
//  - Double quantisation of the scales: the mean is summed left to right in double (as the
//    reference's JS numbers), the centred scales rounded to float32, and each 8-bit index is the
//    nearest dynamic-map value with the reference's double-precision tie test.
#pragma once

#include <cstdint>

namespace mt {

enum class StoredFloat { F32 = 0, BF16 = 1, F16 = 2 };

/** Elements converted per task (and per pread); bounds each thread's scratch. */
constexpr int64_t kLoadChunk = (int64_t)1 << 18;

/** Largest NF4 block size the quantiser takes. */
constexpr int64_t kMaxNf4Block = 4096;

/** The NF4 block kernels: AVX-512, AVX2 + FMA, portable (each computes the same bits). */
enum class Nf4Isa { Portable = 0, Avx2 = 1, Avx512 = 2 };

const char* nf4_isa_name(Nf4Isa isa);
/** The kernels this build has, best first (out holds at least 3); returns the count. */
int nf4_isa_available(Nf4Isa* out);
Nf4Isa nf4_isa();
/** Selects a kernel the build has (tests run each); false when it lacks it. */
bool nf4_set_isa(Nf4Isa isa);

/** Where stored bytes come from: memory (bytes != null) or a file descriptor at byteOffset. */
struct StoredSource {
  const uint8_t* bytes;
  int fd;
  int64_t byteOffset;
  StoredFloat dtype;
};

/**
 * Decodes numel stored values to float32 into out. Returns 0, or -errno when a read fails, or 1
 * when the file ends early.
 */
int decode_stored_floats(const StoredSource& src, int64_t numel, float* out);

/**
 * NF4-quantises numel stored values in blocks of blockSize (even) into codes (ceil(numel / 2)
 * bytes) and absmax (one float32 per block). thresholds: the 15 decision thresholds. Returns -1
 * on success, the index of the first block holding a NaN or an infinity (the caller words the
 * error), or a value <= -2 (-2 - errno, or -2 for a short read) when reading fails.
 */
int64_t nf4_quantize_stored(const StoredSource& src, int64_t numel, int64_t blockSize, const float* thresholds,
                            uint8_t* codes, float* absmax);

/**
 * Double quantisation of n block scales: qabsmax (n bytes), nestedAbsmax (ceil(n / nestedBlockSize)
 * floats). dynamicCode: the 256 sorted values. Returns the offset (the float32 mean).
 */
float nf4_quantize_scales(const float* absmax, int64_t n, int64_t nestedBlockSize, const float* dynamicCode,
                          uint8_t* qabsmax, float* nestedAbsmax);

}  // namespace mt
