// SwiGLU gating: out = silu(g) * u, and its backward.
#pragma once

#include <cstdint>

namespace mt {

void swiglu_forward(const float* g, const float* u, float* out, int64_t n);

/** s = sigmoid(g): dg = dout * u * s * (1 + g (1 - s)), du = dout * g * s. */
void swiglu_backward(const float* g, const float* u, const float* dout, float* dg, float* du, int64_t n);

}  // namespace mt
