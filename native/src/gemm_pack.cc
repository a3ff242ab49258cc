#include "gemm_pack.h"

namespace mt {
namespace gemm {

void pack_a(bool transA, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* Ap) {
  for (int64_t p = 0; p * MR < mc; p++) {
    int64_t rows = mc - p * MR < MR ? mc - p * MR : MR;
    float* dst = Ap + p * kc * MR;
    int64_t i = i0 + p * MR;
    if (transA)
      panel_copy<MR>(A + k0 * lda + i, lda, kc, rows, dst);
    else
      panel_transpose<MR>(A + i * lda + k0, lda, kc, rows, dst);
  }
}

void pack_b(bool transB, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* Bp) {
  for (int64_t q = 0; q * NR < nc; q++) {
    int64_t cols = nc - q * NR < NR ? nc - q * NR : NR;
    float* dst = Bp + q * kc * NR;
    int64_t j = j0 + q * NR;
    if (transB)
      panel_transpose<NR>(B + j * ldb + k0, ldb, kc, cols, dst);
    else
      panel_copy<NR>(B + k0 * ldb + j, ldb, kc, cols, dst);
  }
}

}  // namespace gemm
}  // namespace mt
