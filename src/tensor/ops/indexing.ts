import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

function checkIndex(op: string, idx: Int32Array, limit: number): void {
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i]!;
    if (v < 0 || v >= limit) throw new Error(`${op}: index ${v} at position ${i} is out of range [0, ${limit})`);
  }
}

/** Rows of x [R, D] at idx (int32 [n]) -> [n, D]; backward scatter-adds (MoE dispatch). */
export function gatherRows(x: Tensor, idx: Tensor | Int32Array): Tensor {
  assertFloat('gatherRows', x);
  const ix = idx instanceof Int32Array ? idx : idx.i32;
  const R = x.shape[0]!;
  const D = x.rank === 0 ? 1 : x.size / Math.max(R, 1);
  checkIndex('gatherRows', ix, R);
  const k = kernelsFor(x);
  const out = Tensor.empty([ix.length, ...x.shape.slice(1)], x.dtype);
  k.gatherRows(x.f, ix, ix.length, D, out.f);
  record('gatherRows', [x], [out], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    if (t.beta === 0) k.scatterRows(dy.f, ix, null, ix.length, D, x.rank === 0 ? 1 : R, t.data);
    else k.scatterAddRows(dy.f, ix, null, ix.length, D, t.data);
  });
  return out;
}

/**
 * out [rows, D] = sum over i of w[i] * src[i] placed at row idx[i] (zeros elsewhere): the MoE
 * combine. Gradients reach src (dsrc[i] = w[i] dout[idx[i]]) and the weights
 * (dw[i] = <dout[idx[i]], src[i]>), so the router learns through its gate values.
 */
export function scatterAddRows(src: Tensor, idx: Tensor | Int32Array, rows: number, weights?: Tensor | null): Tensor {
  assertFloat('scatterAddRows', src);
  const ix = idx instanceof Int32Array ? idx : idx.i32;
  const n = src.shape[0]!;
  if (ix.length !== n) throw new Error(`scatterAddRows: ${ix.length} indices for ${n} source rows`);
  if (weights && weights.size !== n) throw new Error(`scatterAddRows: weights ${shapeStr(weights.shape)} for ${n} rows`);
  checkIndex('scatterAddRows', ix, rows);
  const dim = src.rank === 1 ? 1 : src.shape.slice(1).reduce((a, b) => a * b, 1);
  const k = kernelsFor(src, weights);
  const out = Tensor.empty([rows, ...src.shape.slice(1)], src.dtype);
  k.scatterRows(src.f, ix, weights ? weights.f : null, n, dim, rows, out.f);
  const inputs = weights ? [src, weights] : [src];
  record('scatterAddRows', inputs, [out], ([dy], ctx) => {
    if (!dy) return;
    if (!weights) {
      if (ctx.needs(0)) {
        const g = Tensor.empty(src.shape, src.dtype);
        k.gatherRows(dy.f, ix, n, dim, g.f);
        ctx.pass(0, g);
      }
      return;
    }
    // both gradients in one pass over the pairs
    const g = ctx.needs(0) ? Tensor.empty(src.shape, src.dtype) : null;
    const dw = ctx.needs(1) ? Tensor.empty(weights.shape, weights.dtype) : null;
    k.scatterRowsBackward(dy.f, ix, weights.f, src.f, n, dim, rows, g ? g.f : null, dw ? dw.f : null);
    if (g) ctx.pass(0, g);
    if (dw) ctx.pass(1, dw);
  });
  return out;
}

/** out[r, j] = x[r, idx[r, j]] for x [R, C] and idx int32 [R, k] (gate values of chosen experts). */
export function takeAlongRows(x: Tensor, idx: Tensor): Tensor {
  assertFloat('takeAlongRows', x);
  const ix = idx.i32;
  const C = x.shape[x.rank - 1]!;
  const R = C === 0 ? 0 : x.size / C;
  const kk = idx.shape[idx.rank - 1]!;
  if (ix.length !== R * kk) throw new Error(`takeAlongRows: index ${shapeStr(idx.shape)} does not match ${R} rows of ${shapeStr(x.shape)}`);
  checkIndex('takeAlongRows', ix, C);
  const k = kernelsFor(x);
  const out = Tensor.empty([...x.shape.slice(0, -1), kk], x.dtype);
  k.takeAlongRows(x.f, ix, R, C, kk, out.f);
  record('takeAlongRows', [x], [out], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    if (t.beta === 0) k.fill(t.data, 0, x.size);
    k.takeAlongRowsBackward(dy.f, ix, R, C, kk, t.data);
  });
  return out;
}
