// Rotary position embedding, rotate_half form, on x [B, T, H, Dh] with cos / sin tables [T, Dh/2].
#pragma once

#include <cstdint>

namespace mt {

/**
 * out[i] = x[i] cos - x[i+h] sin, out[i+h] = x[i+h] cos + x[i] sin for i < h = Dh/2 (sin negated
 * when inverse). out may alias x. Computed in double, one rounding per output.
 */
void rope(const float* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t Dh,
          bool inverse, float* out);

}  // namespace mt
