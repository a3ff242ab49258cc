import type { FloatArray, UnaryOp } from '../../backend.js';

export function unary(op: UnaryOp, x: FloatArray, out: FloatArray, n: number): void {
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) out[i] = -x[i]!; return;
    case 'exp': for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]!); return;
    case 'log': for (let i = 0; i < n; i++) out[i] = Math.log(x[i]!); return;
    case 'sqrt': for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!); return;
    case 'rsqrt': for (let i = 0; i < n; i++) out[i] = 1 / Math.sqrt(x[i]!); return;
    case 'square': for (let i = 0; i < n; i++) out[i] = x[i]! * x[i]!; return;
    case 'abs': for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]!); return;
    case 'silu': for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v / (1 + Math.exp(-v)); } return;
    case 'sigmoid': for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-x[i]!)); return;
    case 'relu': for (let i = 0; i < n; i++) out[i] = x[i]! > 0 ? x[i]! : 0; return;
    case 'tanh': for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]!); return;
  }
}

/** dx = dy * op'(x); y = op(x) is given for the ops whose derivative is cheaper from it. */
export function unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, dy: FloatArray, dx: FloatArray, n: number): void {
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) dx[i] = -dy[i]!; return;
    case 'exp': for (let i = 0; i < n; i++) dx[i] = dy[i]! * y[i]!; return;
    case 'log': for (let i = 0; i < n; i++) dx[i] = dy[i]! / x[i]!; return;
    case 'sqrt': for (let i = 0; i < n; i++) dx[i] = (0.5 * dy[i]!) / y[i]!; return;
    case 'rsqrt': for (let i = 0; i < n; i++) { const r = y[i]!; dx[i] = -0.5 * dy[i]! * r * r * r; } return;
    case 'square': for (let i = 0; i < n; i++) dx[i] = 2 * dy[i]! * x[i]!; return;
    case 'abs': for (let i = 0; i < n; i++) dx[i] = x[i]! > 0 ? dy[i]! : x[i]! < 0 ? -dy[i]! : 0; return;
    case 'silu':
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        const s = 1 / (1 + Math.exp(-v));
        dx[i] = dy[i]! * s * (1 + v * (1 - s));
      }
      return;
    case 'sigmoid': for (let i = 0; i < n; i++) { const s = y[i]!; dx[i] = dy[i]! * s * (1 - s); } return;
    case 'relu': for (let i = 0; i < n; i++) dx[i] = x[i]! > 0 ? dy[i]! : 0; return;
    case 'tanh': for (let i = 0; i < n; i++) { const t = y[i]!; dx[i] = dy[i]! * (1 - t * t); } return;
  }
}
