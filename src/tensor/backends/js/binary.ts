import type { BinaryOp, FloatArray } from '../../backend.js';

function apply(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add': return a + b;
    case 'sub': return a - b;
    case 'mul': return a * b;
    case 'div': return a / b;
    case 'max': return a >= b || Number.isNaN(a) ? a : b;
    case 'min': return a <= b || Number.isNaN(a) ? a : b;
  }
}

/** Strides of `shape` right-aligned against `outShape`, 0 where the dim broadcasts. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let stride = 1;
  for (let i = shape.length - 1, o = outShape.length - 1; i >= 0; i--, o--) {
    const d = shape[i]!;
    strides[o] = d === 1 ? 0 : stride;
    stride *= d;
  }
  return strides;
}

/** Elementwise a (op) b with numpy broadcasting, see Backend.binary. */
export function binary(op: BinaryOp, a: FloatArray, aShape: readonly number[], b: FloatArray,
  bShape: readonly number[], out: FloatArray, outShape: readonly number[]): void {
  if (aShape.length > outShape.length || bShape.length > outShape.length) {
    throw new Error(`binary ${op}: operand shapes [${aShape.join(', ')}] and [${bShape.join(', ')}] have more dims than the output [${outShape.join(', ')}]`);
  }
  let n = 1;
  for (const d of outShape) n *= d;
  const aSize = sizeOf(aShape) === n;
  const bSize = sizeOf(bShape);
  if (aSize && bSize === n) {
    for (let i = 0; i < n; i++) out[i] = apply(op, a[i]!, b[i]!);
    return;
  }
  if (aSize && bSize === 1) {
    const bv = b[0]!;
    for (let i = 0; i < n; i++) out[i] = apply(op, a[i]!, bv);
    return;
  }
  const rank = outShape.length;
  const as = broadcastStrides(aShape, outShape);
  const bs = broadcastStrides(bShape, outShape);
  const idx = new Array<number>(rank).fill(0);
  let ai = 0;
  let bi = 0;
  for (let i = 0; i < n; i++) {
    out[i] = apply(op, a[ai]!, b[bi]!);
    // increment the multi-index, odometer style
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      ai += as[d]!;
      bi += bs[d]!;
      if (idx[d]! < outShape[d]!) break;
      ai -= as[d]! * outShape[d]!;
      bi -= bs[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
