import type { FloatArray } from '../../backend.js';

/** RMSNorm forward over rows: out = w * x * rstd, rstd = 1 / sqrt(mean(x^2) + eps). */
export function rmsnormForward(x: FloatArray, w: FloatArray, eps: number, rows: number, dim: number,
  out: FloatArray, rstd: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[base + i]! * x[base + i]!;
    const rs = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = rs;
    for (let i = 0; i < dim; i++) out[base + i] = w[i]! * (x[base + i]! * rs);
  }
}

/**
 * RMSNorm backward. With xhat = x * rstd and y = w * xhat:
 *   dw += sum_rows dy * xhat
 *   dx = rstd * (dy * w - xhat * mean(dy * w * xhat))
 */
export function rmsnormBackward(dy: FloatArray, x: FloatArray, w: FloatArray, rstd: FloatArray, rows: number,
  dim: number, dx: FloatArray, dw: FloatArray): void {
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    const rs = rstd[r]!;
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += dy[base + i]! * w[i]! * x[base + i]! * rs;
    const m = dot / dim;
    for (let i = 0; i < dim; i++) {
      const xhat = x[base + i]! * rs;
      dw[i]! += dy[base + i]! * xhat;
      dx[base + i] = rs * (dy[base + i]! * w[i]! - xhat * m);
    }
  }
}
