// Scaled dot-product attention with grouped-query heads, blockwise (flash-attention style):
// q [B, T, H, Dh], k / v [B, S, Hkv, Dh], query head h reads kv head h / (H / Hkv); causal means
// query t sees keys s <= t + (S - T). No T x S tensor is ever stored: the forward walks key blocks
// with a running max and sum per query row and writes lse [B, H, T]; the backward recomputes
// the probabilities of one (query block x key block) tile at a time from lse.
#pragma once

#include <cstdint>

namespace mt {

void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t S, int64_t H,
                       int64_t Hkv, int64_t Dh, float scale, bool causal, float* out, float* lse);

/** dq, dk, dv are written (not accumulated). */
void attention_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                        const float* dout, int64_t B, int64_t T, int64_t S, int64_t H, int64_t Hkv, int64_t Dh,
                        float scale, bool causal, float* dq, float* dk, float* dv);

}  // namespace mt
