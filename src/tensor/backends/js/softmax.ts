import type { FloatArray } from '../../backend.js';

/** Row softmax with the max trick; out may alias x. */
export function softmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) if (x[base + c]! > mx) mx = x[base + c]!;
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const e = Math.exp(x[base + c]! - mx);
      out[base + c] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let c = 0; c < cols; c++) out[base + c] = out[base + c]! * inv;
  }
}

export function softmaxBackward(y: FloatArray, dy: FloatArray, rows: number, cols: number, dx: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[base + c]! * y[base + c]!;
    for (let c = 0; c < cols; c++) dx[base + c] = y[base + c]! * (dy[base + c]! - dot);
  }
}

/** Row log-softmax: out = x - max - log(sum(exp(x - max))). */
export function logSoftmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) if (x[base + c]! > mx) mx = x[base + c]!;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[base + c]! - mx);
    const lse = mx + Math.log(sum);
    for (let c = 0; c < cols; c++) out[base + c] = x[base + c]! - lse;
  }
}

export function logSoftmaxBackward(y: FloatArray, dy: FloatArray, rows: number, cols: number, dx: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += dy[base + c]!;
    for (let c = 0; c < cols; c++) dx[base + c] = dy[base + c]! - Math.exp(y[base + c]!) * s;
  }
}
