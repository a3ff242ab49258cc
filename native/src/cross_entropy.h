// Fused log-softmax + negative log-likelihood over logits [rows, V] (no one-hot), and its backward.
#pragma once

#include <cstdint>

namespace mt {

/**
 * lse[r] = logsumexp(logits[r]) (every row); losses[r] = lse[r] - logits[r, t_r], or 0 when
 * t_r == ignoreIndex. Targets must already be checked to lie in [0, V) or equal ignoreIndex.
 */
void cross_entropy_forward(const float* logits, const int32_t* targets, int64_t rows, int64_t V,
                           int32_t ignoreIndex, float* losses, float* lse);

/** dlogits[r, :] = dlosses[r] * (softmax(logits[r]) - onehot(t_r)), 0 for ignored rows. */
void cross_entropy_backward(const float* logits, const int32_t* targets, const float* lse, const float* dlosses,
                            int64_t rows, int64_t V, int32_t ignoreIndex, float* dlogits);

}  // namespace mt
