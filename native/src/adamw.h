// AdamW update in place (decoupled weight decay, as torch.optim.AdamW): moments in double with
// one rounding per stored value, the step's square root and division in float.
#pragma once

#include <cstdint>

namespace mt {

/**
 * g' = gradScale * g; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
 * p = p (1 - lr wd) - lr (m / bc1) / (sqrt(v / bc2) + eps).
 */
void adamw(float* p, const float* g, float* m, float* v, int64_t n, double lr, double b1, double b2, double eps,
           double wd, double bc1, double bc2, double gradScale);

}  // namespace mt
