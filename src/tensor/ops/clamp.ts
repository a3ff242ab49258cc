import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

/**
 * min(max(x, lo), hi) element-wise (torch.clamp; OLMoE's clip_qkv). The gradient passes where
 * lo <= x <= hi and is 0 where the value was clipped (torch's clamp backward, ties included).
 * A plain loop: it runs on q / k / v of the few families that clip, not on the hot path.
 */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  assertFloat('clamp', x);
  if (!(lo <= hi)) throw new Error(`clamp: lower bound ${lo} is above upper bound ${hi}`);
  const y = Tensor.empty(x.shape, x.dtype);
  const xf = x.f;
  const yf = y.f;
  for (let i = 0; i < x.size; i++) {
    const v = xf[i]!;
    yf[i] = v < lo ? lo : v > hi ? hi : v;
  }
  record('clamp', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    const out = t.data;
    for (let i = 0; i < x.size; i++) {
      const v = xf[i]!;
      const g = v >= lo && v <= hi ? dy.f[i]! : 0;
      out[i] = t.beta === 0 ? g : out[i]! + g;
    }
  });
  return y;
}
