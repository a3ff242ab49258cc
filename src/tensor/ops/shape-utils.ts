import { shapeStr } from '../dtype.js';
import type { Tensor } from '../tensor.js';

/** The numpy broadcast of two shapes, or a clear error naming the op. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalises a possibly negative axis. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** [outer, axisLen, inner] of a shape around an axis. */
export function splitAt(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return [outer, shape[axis]!, inner];
}

export function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1]!;
}

export function assertFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    t.assertLive();
    if (t.dtype === 'int32') throw new Error(`${op}: expected a float tensor, got int32 ${t}`);
  }
  const d = ts[0]!.dtype;
  for (const t of ts) if (t.dtype !== d) throw new Error(`${op}: mixed dtypes ${d} and ${t.dtype}`);
}

export function assertShape(op: string, what: string, t: Tensor, shape: readonly (number | null)[]): void {
  const ok = t.shape.length === shape.length && shape.every((d, i) => d === null || d === t.shape[i]);
  if (!ok) {
    const want = `[${shape.map((d) => (d === null ? '*' : String(d))).join(', ')}]`;
    throw new Error(`${op}: ${what} has shape ${shapeStr(t.shape)}, expected ${want}`);
  }
}
