// Packing for the blocked GEMM: copies a block of op(A) or op(B) into the k-major panel layout
// the micro-kernel streams (gemm_kernel.h), zero-padding the last panel, so all four transA /
// transB combinations reach the same kernel.
#pragma once

#include <cstdint>

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

}  // namespace gemm
}  // namespace mt
