import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat, lastDim } from './shape-utils.js';

/**
 * y = x W^T (+ b), as torch.nn.functional.linear: x [..., K], W [N, K], b [N] -> y [..., N].
 * Backward: dx = dy W, dW += dy^T x, db += sum(dy) — written by the GEMM with beta so gradients
 * accumulate without an extra pass.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  assertFloat('linear', x, w);
  const K = lastDim(x);
  if (w.rank !== 2 || w.shape[1] !== K) {
    throw new Error(`linear: weight${w.name ? ` ${w.name}` : ''} has shape ${shapeStr(w.shape)}, expected [N, ${K}] for input ${shapeStr(x.shape)}`);
  }
  const N = w.shape[0]!;
  const M = K === 0 ? 0 : x.size / K;
  if (bias && (bias.rank !== 1 || bias.shape[0] !== N)) throw new Error(`linear: bias has shape ${shapeStr(bias.shape)}, expected [${N}]`);
  const k = kernelsFor(x, w);
  const y = Tensor.empty([...x.shape.slice(0, -1), N], x.dtype);
  k.gemm(false, true, M, N, K, 1, x.f, w.f, 0, y.f);
  if (bias) k.binary('add', y.f, [M, N], bias.f, [N], y.f, [M, N]);
  const inputs = bias ? [x, w, bias] : [x, w];
  record('linear', inputs, [y], ([dy], ctx) => {
    if (!dy) return;
    const tx = ctx.target(0);
    if (tx) k.gemm(false, false, M, K, N, 1, dy.f, w.f, tx.beta, tx.data);
    const tw = ctx.target(1);
    if (tw) k.gemm(true, false, N, K, M, 1, dy.f, x.f, tw.beta, tw.data);
    if (bias) ctx.write(2, (out) => k.reduce('sum', dy.f, 1, M, N, out));
  });
  return y;
}

/**
 * C = op(A) op(B) for 2-D tensors (op = transpose when the flag is set).
 */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  assertFloat('matmul', a, b);
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`matmul: expected 2-D tensors, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const [M, K] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [K2, N] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (K !== K2) throw new Error(`matmul: inner dims differ: ${shapeStr(a.shape)}${transA ? 'ᵀ' : ''} x ${shapeStr(b.shape)}${transB ? 'ᵀ' : ''}`);
  const k = kernelsFor(a, b);
  const c = Tensor.empty([M, N], a.dtype);
  k.gemm(transA, transB, M, N, K, 1, a.f, b.f, 0, c.f);
  record('matmul', [a, b], [c], ([dc], ctx) => {
    if (!dc) return;
    const ta = ctx.target(0);
    // dA = dC op(B)^T (stored transposed when transA)
    if (ta) {
      if (!transA) k.gemm(false, !transB, M, K, N, 1, dc.f, b.f, ta.beta, ta.data);
      else k.gemm(transB, true, K, M, N, 1, b.f, dc.f, ta.beta, ta.data);
    }
    const tb = ctx.target(1);
    // dB = op(A)^T dC (stored transposed when transB)
    if (tb) {
      if (!transB) k.gemm(!transA, false, K, N, M, 1, a.f, dc.f, tb.beta, tb.data);
      else k.gemm(true, transA, N, K, M, 1, dc.f, a.f, tb.beta, tb.data);
    }
  });
  return c;
}
