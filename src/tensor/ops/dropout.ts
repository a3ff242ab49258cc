import { kernelsFor } from '../backends/registry.js';
import type { Rng } from '../random.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1 / (1 - p).
 * The mask comes from the caller's seeded RNG, so runs are reproducible and resumable.
 */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  assertFloat('dropout', x);
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const mask = Tensor.empty(x.shape, x.dtype);
  const mf = mask.f;
  const keepScale = 1 / (1 - p);
  for (let i = 0; i < mf.length; i++) mf[i] = rng.next() < p ? 0 : keepScale;
  const k = kernelsFor(x);
  const y = Tensor.empty(x.shape, x.dtype);
  k.binary('mul', x.f, x.shape, mf, x.shape, y.f, x.shape);
  record('dropout', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    if (t.beta === 0) k.binary('mul', dy.f, x.shape, mf, x.shape, t.data, x.shape);
    else {
      const g = Tensor.empty(x.shape, x.dtype);
      k.binary('mul', dy.f, x.shape, mf, x.shape, g.f, x.shape);
      k.axpby(1, g.f, 1, t.data, x.size);
    }
  });
  return y;
}
