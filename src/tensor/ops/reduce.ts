import { kernelsFor } from '../backends/registry.js';
import { sameShape } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat, normAxis, splitAt } from './shape-utils.js';

const ZERO32 = new Float32Array(1);
const ZERO64 = new Float64Array(1);

/**
 * Writes (beta 0) or adds (beta 1) `g` broadcast from `gShape` to `shape` into `out`
 * (the backward of every reduction and of broadcasting).
 */
export function broadcastInto(g: Tensor, gShape: readonly number[], shape: readonly number[], out: Float32Array | Float64Array, beta: 0 | 1): void {
  const k = kernelsFor(g);
  if (beta === 0) k.binary('add', g.f, gShape, g.dtype === 'float64' ? ZERO64 : ZERO32, [], out, shape);
  else k.binary('add', out, shape, g.f, gShape, out, shape);
}

/**
 * Sums `g` (of shape `from`) down to `to` (a shape that broadcasts to `from`): the gradient of a
 * broadcast operand.
 */
export function sumToShape(g: Tensor, to: readonly number[]): Tensor {
  if (sameShape(g.shape, to)) return g;
  const k = kernelsFor(g);
  let cur = g;
  const rank = g.rank;
  const padded = [...new Array<number>(rank - to.length).fill(1), ...to];
  for (let ax = 0; ax < rank; ax++) {
    if (padded[ax] === 1 && cur.shape[ax] !== 1) {
      const [outer, len, inner] = splitAt(cur.shape, ax);
      const shape = cur.shape.slice();
      shape[ax] = 1;
      const next = Tensor.empty(shape, g.dtype);
      k.reduce('sum', cur.f, outer, len, inner, next.f);
      cur = next;
    }
  }
  return new Tensor(cur.data, to);
}

function reduceOp(name: 'sum' | 'mean', x: Tensor, axis: number | undefined, keepDims: boolean): Tensor {
  assertFloat(name, x);
  const k = kernelsFor(x);
  let outShape: number[];
  let keepShape: number[];
  let outer: number;
  let len: number;
  let inner: number;
  if (axis === undefined) {
    outShape = keepDims ? x.shape.map(() => 1) : [];
    keepShape = x.shape.map(() => 1);
    [outer, len, inner] = [1, x.size, 1];
  } else {
    const ax = normAxis(name, axis, x.rank);
    [outer, len, inner] = splitAt(x.shape, ax);
    keepShape = x.shape.slice();
    keepShape[ax] = 1;
    outShape = keepDims ? keepShape : x.shape.filter((_, i) => i !== ax);
  }
  const y = Tensor.empty(outShape, x.dtype);
  k.reduce('sum', x.f, outer, len, inner, y.f);
  const scale = name === 'mean' ? (len === 0 ? 0 : 1 / len) : 1;
  if (scale !== 1) k.axpby(scale, y.f, 0, y.f, y.size);
  record(name, [x], [y], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (!t) return;
    let g = dy;
    if (scale !== 1) {
      g = Tensor.empty(dy.shape, dy.dtype);
      k.axpby(scale, dy.f, 0, g.f, dy.size);
    }
    broadcastInto(g, keepShape, x.shape, t.data, t.beta);
  });
  return y;
}

/** Sum over one axis, or over everything when axis is omitted. */
export function sum(x: Tensor, axis?: number, keepDims = false): Tensor {
  return reduceOp('sum', x, axis, keepDims);
}

/** Mean over one axis, or over everything when axis is omitted. */
export function mean(x: Tensor, axis?: number, keepDims = false): Tensor {
  return reduceOp('mean', x, axis, keepDims);
}

/** Max over one axis (no gradient: used for statistics and the max trick). */
export function maxAlong(x: Tensor, axis: number, keepDims = false): Tensor {
  assertFloat('maxAlong', x);
  const ax = normAxis('maxAlong', axis, x.rank);
  const [outer, len, inner] = splitAt(x.shape, ax);
  const shape = x.shape.slice();
  if (keepDims) shape[ax] = 1;
  else shape.splice(ax, 1);
  const y = Tensor.empty(shape, x.dtype);
  kernelsFor(x).reduce('max', x.f, outer, len, inner, y.f);
  return y;
}
