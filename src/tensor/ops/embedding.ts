import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';

/**
 * Embedding lookup: ids (int32, any shape) into weight [V, D] -> [..., D]. Backward scatter-adds
 * rows into dW (never a one-hot).
 */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  const idx = ids.i32;
  if (weight.rank !== 2) throw new Error(`embedding: weight has shape ${shapeStr(weight.shape)}, expected [vocab, dim]`);
  const [V, D] = weight.shape as [number, number];
  for (let i = 0; i < idx.length; i++) {
    const id = idx[i]!;
    if (id < 0 || id >= V || !Number.isInteger(id)) throw new Error(`embedding: token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
  }
  const k = kernelsFor(weight);
  const out = Tensor.empty([...ids.shape, D], weight.dtype);
  k.gatherRows(weight.f, idx, idx.length, D, out.f);
  record('embedding', [weight], [out], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    if (t.beta === 0) k.fill(t.data, 0, V * D);
    k.scatterAddRows(dy.f, idx, null, idx.length, D, t.data);
  });
  return out;
}
