// The quantised GEMM of QLoRA: a dense float32 matrix times a 4-bit NF4 weight W [N, K] that is
// never dequantised as a whole. The blocked GEMM (gemm_driver.h) asks for op(B) one KC x NR panel
// at a time; the NF4 packers below dequantise exactly that panel's codes into it (through a
// KC x NR scratch tile for the transposed case), so the float weight exists only panel by panel
// in each thread's cache.
//
// Format (src/quant/nf4.ts, docs/quantization.md): W flattened row-major; element e is the high
// nibble of codes[e / 2] when e is even, the low nibble when odd; its value is
// code[nibble] * scale(e / blockSize), rounded to float32, where the block scale is absmax[b], or
// with double quantisation nestedCode[qabsmax[b]] * nestedAbsmax[b / nestedBlockSize] + offset
// (two float32 roundings, no fused multiply-add), exactly as the TypeScript reference.
#pragma once

#include <cstdint>

namespace mt {

struct Nf4Weight {
  int64_t N, K;  // W is [N, K]
  const uint8_t* codes;
  const float* code;  // 16 values
  int64_t blockSize;
  const float* absmax;  // per block, or null with double quantisation
  const uint8_t* qabsmax;  // per block (double quantisation)
  const float* nestedAbsmax;  // per nested block
  const float* nestedCode;  // 256 values
  int64_t nestedBlockSize;
  float offset;
};

/** Elements [e0, e0 + n) of the flattened W, dequantised into out[0 .. n). */
void nf4_dequantize(const Nf4Weight& w, int64_t e0, int64_t n, float* out);

/** The scales of blocks [b0, b0 + n) into out[0 .. n) (absmax, or the double-quantised value). */
void nf4_block_scales(const Nf4Weight& w, int64_t b0, int64_t n, float* out);

/**
 * transW: C[M, N] = A[M, K] * W^T + beta * C; otherwise C[M, K] = A[M, N] * W + beta * C.
 * beta == 0 writes C without reading it. maxThreads <= 0: the pool size.
 */
void nf4_gemm(bool transW, int64_t M, const float* A, const Nf4Weight& w, float beta, float* C, int maxThreads);

/**
 * Independent NF4 products in one call (one projection of every expert of an MoE layer): for each
 * i < count, product i of nf4_gemm with Ms[i] rows, As[i], Ws[i], Cs[i] (all W the same [N, K]
 * shape). The threads share out whole products (largest first, claimed one at a time), each
 * computed single-threaded, so the result of every product equals nf4_gemm's.
 */
void nf4_gemm_grouped(bool transW, int64_t count, const int64_t* Ms, const float* const* As, const Nf4Weight* Ws,
                      float beta, float* const* Cs);

}  // namespace mt
