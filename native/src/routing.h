// The router step of a top-k MoE layer in one call (top-k routers, AdaMoE null experts): softmax
// over the router rows, the k largest probabilities of each token, their gates, and the
// (token, true expert) pairs grouped by expert, which is what the expert GEMMs and the combine
// read. Replaces softmax + top-k + take-along-rows + masks + sums + divisions + a counting sort
// done as separate ops and TypeScript loops. The js reference is src/tensor/backends/js/routing.ts.
#pragma once

#include <cstdint>

namespace mt {

/**
 * logits [T, R]; rows [0, N) are true experts, rows [N, R) cost nothing (AdaMoE null experts).
 * Writes probs = softmax(logits) [T, R]; slot_rows [T, k]: each token's k largest probabilities
 * in descending order (ties: lower row; 1 <= k <= R); top1 [T] (largest probability, first on
 * ties); selected [T, R] (1 where a row is among the token's k); offsets [N + 1] and, for the
 * P = offsets[N] pairs grouped by expert and in token order within an expert, tokens [P] and gates
 * [P]; slot_pair [T, k] (the pair of each slot, -1 for a null row). The gate of a pair is its
 * probability, renormalised over the token's chosen true rows when `normalize` (sum in double,
 * rounded to float, 1 when the token chose none: AdaMoE §3.4 option 2, Mixtral's top-k). When
 * null_sums is not null it gets each token's summed probability of its chosen null rows
 * (identity-mapped null experts). Returns P. tokens and gates need room for T * k.
 */
int64_t route_top_k(const float* logits, int64_t T, int64_t R, int64_t N, int64_t k, bool normalize, float* probs,
                    int32_t* slot_rows, int32_t* slot_pair, int32_t* top1, uint8_t* selected, int32_t* offsets,
                    int32_t* tokens, float* gates, float* null_sums);

/**
 * dlogits [T, R] from the gradients of probs (dprobs [T, R]), of the pair gates (dgates [P]) and of
 * the null sums (dnull [T]); any of them may be null. Overwrites dlogits.
 */
void route_top_k_backward(const float* probs, const int32_t* slot_rows, const int32_t* slot_pair, const float* gates,
                          int64_t T, int64_t R, int64_t N, int64_t k, bool normalize, const float* dprobs,
                          const float* dgates, const float* dnull, float* dlogits);

}  // namespace mt
