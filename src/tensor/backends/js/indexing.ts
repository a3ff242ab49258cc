import type { FloatArray } from '../../backend.js';

export function gatherRows(src: FloatArray, idx: Int32Array, n: number, dim: number, out: FloatArray): void {
  for (let i = 0; i < n; i++) {
    const s = idx[i]! * dim;
    const o = i * dim;
    for (let j = 0; j < dim; j++) out[o + j] = src[s + j]!;
  }
}

export function scatterAddRows(src: FloatArray, idx: Int32Array, w: FloatArray | null, n: number, dim: number,
  out: FloatArray): void {
  for (let i = 0; i < n; i++) {
    const o = idx[i]! * dim;
    const s = i * dim;
    const wi = w === null ? 1 : w[i]!;
    for (let j = 0; j < dim; j++) out[o + j] = out[o + j]! + wi * src[s + j]!;
  }
}

export function scatterRows(src: FloatArray, idx: Int32Array, w: FloatArray | null, n: number, dim: number,
  rows: number, out: FloatArray): void {
  out.fill(0, 0, rows * dim);
  scatterAddRows(src, idx, w, n, dim, out);
}

export function scatterRowsBackward(dy: FloatArray, idx: Int32Array, w: FloatArray, src: FloatArray, n: number,
  dim: number, _rows: number, dsrc: FloatArray | null, dw: FloatArray | null): void {
  if (dw) gatherRowDot(dy, idx, src, n, dim, dw);
  if (dsrc) {
    gatherRows(dy, idx, n, dim, dsrc);
    for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) dsrc[i * dim + j] = dsrc[i * dim + j]! * w[i]!;
  }
}

export function gatherRowDot(a: FloatArray, idx: Int32Array, b: FloatArray, n: number, dim: number,
  out: FloatArray): void {
  for (let i = 0; i < n; i++) {
    const ar = idx[i]! * dim;
    const br = i * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) s += a[ar + j]! * b[br + j]!;
    out[i] = s;
  }
}

export function takeAlongRows(x: FloatArray, idx: Int32Array, rows: number, cols: number, k: number,
  out: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) out[r * k + j] = x[r * cols + idx[r * k + j]!]!;
  }
}

export function takeAlongRowsBackward(dy: FloatArray, idx: Int32Array, rows: number, cols: number, k: number,
  dx: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const c = r * cols + idx[r * k + j]!;
      dx[c] = dx[c]! + dy[r * k + j]!;
    }
  }
}
