/**
 * The plain TypeScript reference backend: readable loops, no tricks beyond the max trick and
 * float64 accumulation in reductions. It is the ground truth the native backend is tested against,
 * the fallback when the addon did not build, and the only backend for float64 (gradient checks).
 */
import type { Backend, BinaryOp, FloatArray, ReduceOp, UnaryOp } from '../../backend.js';
import { gemm } from './gemm.js';
import { binary } from './binary.js';
import { unary, unaryBackward } from './unary.js';
import { attentionBackward, attentionForward } from './attention.js';
import { crossEntropyBackward, crossEntropyForward } from './cross-entropy.js';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.js';
import { logSoftmaxBackward, logSoftmaxForward, softmaxBackward, softmaxForward } from './softmax.js';
import { gatherRowDot, gatherRows, scatterAddRows, scatterRows, scatterRowsBackward, takeAlongRows, takeAlongRowsBackward } from './indexing.js';
import { routeTopK, routeTopKBackward } from './routing.js';

export const jsBackend: Backend = {
  name: 'js',
  threads: 1,
  gemm,
  binary(op: BinaryOp, a, aShape, b, bShape, out, outShape) {
    binary(op, a, aShape, b, bShape, out, outShape);
  },
  unary(op: UnaryOp, x, out, n) {
    unary(op, x, out, n);
  },
  unaryBackward(op: UnaryOp, x, y, dy, dx, n) {
    unaryBackward(op, x, y, dy, dx, n);
  },
  axpby(alpha, x, beta, out, n) {
    if (beta === 0) for (let i = 0; i < n; i++) out[i] = alpha * x[i]!;
    else for (let i = 0; i < n; i++) out[i] = alpha * x[i]! + beta * out[i]!;
  },
  fill(out, value, n) {
    out.fill(value, 0, n);
  },
  reduce(op: ReduceOp, x, outer, axisLen, inner, out) {
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * axisLen * inner + i;
        let acc = op === 'sum' ? 0 : x[base]!;
        for (let a = 0; a < axisLen; a++) {
          const v = x[base + a * inner]!;
          if (op === 'sum') acc += v;
          else if (op === 'max') acc = v > acc || Number.isNaN(v) ? v : acc;
          else acc = v < acc || Number.isNaN(v) ? v : acc;
        }
        out[o * inner + i] = acc;
      }
    }
  },
  sumSquares(x, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
    return s;
  },
  rmsnormForward,
  rmsnormBackward,
  rope(x, cos, sin, B, T, H, Dh, inverse, out) {
    const half = Dh >> 1;
    const sign = inverse ? -1 : 1;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const tab = t * half;
        for (let h = 0; h < H; h++) {
          const base = ((b * T + t) * H + h) * Dh;
          for (let i = 0; i < half; i++) {
            const c = cos[tab + i]!;
            const s = sign * sin[tab + i]!;
            const x1 = x[base + i]!;
            const x2 = x[base + i + half]!;
            out[base + i] = x1 * c - x2 * s;
            out[base + i + half] = x2 * c + x1 * s;
          }
        }
      }
    }
  },
  attentionForward,
  attentionBackward,
  swigluForward(g, u, out, n) {
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      out[i] = (gi / (1 + Math.exp(-gi))) * u[i]!;
    }
  },
  swigluBackward(g, u, dout, dg, du, n) {
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      const sig = 1 / (1 + Math.exp(-gi));
      const silu = gi * sig;
      const d = dout[i]!;
      du[i] = d * silu;
      dg[i] = d * u[i]! * sig * (1 + gi * (1 - sig));
    }
  },
  softmaxForward,
  softmaxBackward,
  logSoftmaxForward,
  logSoftmaxBackward,
  crossEntropyForward,
  crossEntropyBackward,
  gatherRows,
  scatterAddRows,
  scatterRows,
  scatterRowsBackward,
  gatherRowDot,
  takeAlongRows,
  takeAlongRowsBackward,
  routeTopK,
  routeTopKBackward,
  adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gradScale) {
    const decay = 1 - lr * wd;
    for (let i = 0; i < n; i++) {
      const gi = g[i]! * gradScale;
      const mi = b1 * m[i]! + (1 - b1) * gi;
      const vi = b2 * v[i]! + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i]! * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
    }
  },
};

export type { FloatArray };
