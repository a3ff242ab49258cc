import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat, normAxis, splitAt } from './shape-utils.js';

/**
 * Concatenation along an axis. Block copies are TypedArray.set (a memcpy on every backend), so
 * this op needs no kernel of its own.
 */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  assertFloat('concat', ...xs);
  const first = xs[0]!;
  const ax = normAxis('concat', axis, first.rank);
  for (const x of xs) {
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(`concat: shapes ${xs.map((t) => shapeStr(t.shape)).join(', ')} differ outside axis ${ax}`);
    }
  }
  const shape = first.shape.slice();
  shape[ax] = xs.reduce((a, x) => a + x.shape[ax]!, 0);
  const [outer, total, inner] = splitAt(shape, ax);
  const y = Tensor.empty(shape, first.dtype);
  const yf = y.f;
  let off = 0;
  const offsets: number[] = [];
  for (const x of xs) {
    offsets.push(off);
    const len = x.shape[ax]! * inner;
    const xf = x.f;
    for (let o = 0; o < outer; o++) yf.set(xf.subarray(o * len, (o + 1) * len), o * total * inner + off * inner);
    off += x.shape[ax]!;
  }
  record('concat', xs, [y], ([dy], ctx) => {
    if (!dy) return;
    xs.forEach((x, i) => {
      const t = ctx.target(i);
      if (!t) return;
      const len = x.shape[ax]! * inner;
      const k = kernelsFor(x);
      for (let o = 0; o < outer; o++) {
        const src = dy.f.subarray(o * total * inner + offsets[i]! * inner, o * total * inner + offsets[i]! * inner + len);
        const dst = t.data.subarray(o * len, (o + 1) * len);
        if (t.beta === 0) dst.set(src);
        else k.axpby(1, src, 1, dst, len);
      }
    });
  });
  return y;
}

/** x[..., start:end, ...] along one axis (a copy). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  assertFloat('slice', x);
  const ax = normAxis('slice', axis, x.rank);
  const dim = x.shape[ax]!;
  if (!(0 <= start && start <= end && end <= dim)) throw new Error(`slice: range [${start}, ${end}) is outside axis ${ax} of ${shapeStr(x.shape)}`);
  const [outer, , inner] = splitAt(x.shape, ax);
  const shape = x.shape.slice();
  shape[ax] = end - start;
  const len = (end - start) * inner;
  const y = Tensor.empty(shape, x.dtype);
  const xf = x.f;
  const yf = y.f;
  for (let o = 0; o < outer; o++) yf.set(xf.subarray(o * dim * inner + start * inner, o * dim * inner + start * inner + len), o * len);
  record('slice', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    const k = kernelsFor(x);
    if (t.beta === 0) k.fill(t.data, 0, x.size);
    for (let o = 0; o < outer; o++) {
      const dst = t.data.subarray(o * dim * inner + start * inner, o * dim * inner + start * inner + len);
      k.axpby(1, dy.f.subarray(o * len, (o + 1) * len), 1, dst, len);
    }
  });
  return y;
}
