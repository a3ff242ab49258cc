import type { Backend } from '../backend.js';
import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat, normAxis, splitAt } from './shape-utils.js';

/**
 * Copies `outer` blocks of `len` values from src (block o at srcOff + o * srcStride) to dst (block o
 * at dstOff + o * dstStride). Long blocks go through TypedArray.set (a memcpy); short ones (router
 * logits: 8 values a row) through a plain loop, which is far cheaper than a subarray per block.
 */
function copyBlocks(src: Float32Array | Float64Array, srcOff: number, srcStride: number, dst: Float32Array | Float64Array,
  dstOff: number, dstStride: number, outer: number, len = srcStride): void {
  if (len >= 64) {
    for (let o = 0; o < outer; o++) dst.set(src.subarray(srcOff + o * srcStride, srcOff + o * srcStride + len), dstOff + o * dstStride);
    return;
  }
  for (let o = 0; o < outer; o++) {
    const s = srcOff + o * srcStride;
    const d = dstOff + o * dstStride;
    for (let i = 0; i < len; i++) dst[d + i] = src[s + i]!;
  }
}

/** Like copyBlocks, but adds src into dst. */
function addBlocks(k: Backend, src: Float32Array | Float64Array, srcOff: number, srcStride: number, dst: Float32Array | Float64Array,
  dstOff: number, dstStride: number, outer: number, len: number): void {
  if (len >= 64) {
    for (let o = 0; o < outer; o++) {
      k.axpby(1, src.subarray(srcOff + o * srcStride, srcOff + o * srcStride + len), 1, dst.subarray(dstOff + o * dstStride, dstOff + o * dstStride + len), len);
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    const s = srcOff + o * srcStride;
    const d = dstOff + o * dstStride;
    for (let i = 0; i < len; i++) dst[d + i] = dst[d + i]! + src[s + i]!;
  }
}

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
    copyBlocks(x.f, 0, x.shape[ax]! * inner, yf, off * inner, total * inner, outer);
    off += x.shape[ax]!;
  }
  record('concat', xs, [y], ([dy], ctx) => {
    if (!dy) return;
    xs.forEach((x, i) => {
      const t = ctx.target(i);
      if (!t) return;
      const len = x.shape[ax]! * inner;
      const args = [dy.f, offsets[i]! * inner, total * inner, t.data, 0, len, outer, len] as const;
      if (t.beta === 0) copyBlocks(...args);
      else addBlocks(kernelsFor(x), ...args);
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
  copyBlocks(x.f, start * inner, dim * inner, y.f, 0, len, outer, len);
  record('slice', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    const k = kernelsFor(x);
    if (t.beta === 0) k.fill(t.data, 0, x.size);
    addBlocks(k, dy.f, 0, len, t.data, start * inner, dim * inner, outer, len);
  });
  return y;
}
