/**
 * The rule shared by the cumulative-probability routers, top-p (paper 003) and the XMoE threshold
 * (paper 001): sort a token's router probabilities descending (ties go to the lower row) and keep
 * rows up to and including the first at which the running sum, accumulated in float64, has
 * reached the bound. The two routers differ only in what "reached" means (> p, >= t).
 */
import { argsortDesc, ops, type Tensor } from '../tensor/index.js';
import { padSlots } from './build-routing.js';

/** One token's rows (probs[offset .. offset + n)), in descending probability, up to the first that reaches the bound. */
export function cumulativePrefix(probs: ArrayLike<number>, offset: number, n: number, reached: (cum: number) => boolean,
  order: Int32Array = new Int32Array(n)): number[] {
  argsortDesc(probs, offset, n, order);
  const out: number[] = [];
  let cum = 0;
  for (let j = 0; j < n; j++) {
    const r = order[j]!;
    cum += probs[offset + r]!;
    out.push(r);
    if (reached(cum)) break;
  }
  return out;
}

/** Softmax over the R router rows of logits [T, R], then every token's prefix as padded slots. */
export function routeByCumulativePrefix(logits: Tensor, R: number, reached: (cum: number) => boolean):
  { probs: Tensor; kmax: number; slotRows: Int32Array; index: Int32Array } {
  const T = logits.shape[0]!;
  const probs = ops.softmax(logits);
  const order = new Int32Array(R);
  const lists: number[][] = [];
  for (let t = 0; t < T; t++) lists.push(cumulativePrefix(probs.f, t * R, R, reached, order));
  return { probs, ...padSlots(lists) };
}
