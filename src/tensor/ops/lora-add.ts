import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import type { LoraAddOptions } from './grouped-lora-add.js';
import { assertFloat, lastDim } from './shape-utils.js';

/**
 * The LoRA update fused into one op: z = y + s (x Aᵀ) Bᵀ for y [..., out] (the base layer's
 * output), x [..., in], A [r, in], B [out, r]. The rank-r product t = x Aᵀ is the only temporary:
 * the second GEMM adds into z with beta 1, so no [..., out] delta, scaled delta or sum tensors are
 * made (three fewer full-width activations per adapted linear than the composition; with inPlace,
 * for a y no other op reads, not even z: the update is added onto y's storage).
 * Backward: dy = dz, u = dz B [.., r]; dx += s u A, dA += s uᵀ x, dB += s dzᵀ t.
 */
export function loraAdd(y: Tensor, x: Tensor, a: Tensor, b: Tensor, s: number, opts: LoraAddOptions = {}): Tensor {
  assertFloat('loraAdd', y, x, a, b);
  const inF = lastDim(x);
  const outF = lastDim(y);
  const M = inF === 0 ? 0 : x.size / inF;
  const r = a.shape[0]!;
  if (a.rank !== 2 || a.shape[1] !== inF || b.rank !== 2 || b.shape[0] !== outF || b.shape[1] !== r || y.size !== M * outF) {
    throw new Error(`loraAdd: shapes y ${shapeStr(y.shape)}, x ${shapeStr(x.shape)}, A ${shapeStr(a.shape)}, B ${shapeStr(b.shape)} do not fit`);
  }
  const k = kernelsFor(y, x, a, b);
  const t = Tensor.empty([M, r], x.dtype);
  k.gemm(false, true, M, r, inF, 1, x.f, a.f, 0, t.f);
  let z: Tensor;
  if (opts.inPlace) z = new Tensor(y.data, y.shape);
  else {
    z = Tensor.empty(y.shape, y.dtype);
    z.f.set(y.f);
  }
  k.gemm(false, true, M, outF, r, s, t.f, b.f, 1, z.f);
  record('loraAdd', [y, x, a, b], [z], ([dz], ctx) => {
    if (!dz) return;
    ctx.pass(0, dz);
    const needX = ctx.needs(1);
    const needA = ctx.needs(2);
    if (needX || needA) {
      const u = Tensor.empty([M, r], x.dtype);
      k.gemm(false, false, M, r, outF, s, dz.f, b.f, 0, u.f);
      const tx = ctx.target(1);
      if (tx) k.gemm(false, false, M, inF, r, 1, u.f, a.f, tx.beta, tx.data);
      const ta = ctx.target(2);
      if (ta) k.gemm(true, false, r, inF, M, 1, u.f, x.f, ta.beta, ta.data);
    }
    const tb = ctx.target(3);
    if (tb) k.gemm(true, false, outF, r, M, s, dz.f, t.f, tb.beta, tb.data);
  });
  return z;
}
