/**
 * The differentiable op of a 4-bit linear layer: y = x W^T (+ b) with W an NF4 weight.
 * Backward: dx = dy W through the same tiled kernel, db = sum(dy). W is frozen: it is not a tensor
 * and never receives a gradient; only x (and so LoRA adapters and everything upstream) and the
 * optional float bias do.
 */
import { kernelsFor, record, Tensor } from '../tensor/index.js';
import { nf4Gemm } from './nf4-gemm.js';
import type { Nf4Weight } from './nf4.js';

export function nf4Linear(x: Tensor, w: Nf4Weight, bias: Tensor | null = null, name?: string): Tensor {
  if (x.dtype === 'int32') throw new Error(`nf4Linear${name ? ` ${name}` : ''}: input must be a float tensor`);
  const K = x.shape[x.rank - 1] ?? 0;
  if (w.shape.length !== 2 || w.shape[1] !== K) {
    throw new Error(`nf4Linear${name ? ` ${name}` : ''}: weight has shape [${w.shape.join(', ')}], expected [N, ${K}] for input [${x.shape.join(', ')}]`);
  }
  const N = w.shape[0]!;
  if (bias && (bias.rank !== 1 || bias.shape[0] !== N)) throw new Error(`nf4Linear${name ? ` ${name}` : ''}: bias has shape [${bias.shape.join(', ')}], expected [${N}]`);
  const M = K === 0 ? 0 : x.size / K;
  const y = Tensor.empty([...x.shape.slice(0, -1), N], x.dtype);
  nf4Gemm(true, M, N, K, x.f, w, 0, y.f);
  const k = kernelsFor(x);
  if (bias) k.binary('add', y.f, [M, N], bias.f, [N], y.f, [M, N]);
  record('nf4Linear', bias ? [x, bias] : [x], [y], ([dy], ctx) => {
    if (!dy) return;
    const tx = ctx.target(0);
    if (tx) nf4Gemm(false, M, N, K, dy.f, w, tx.beta, tx.data);
    if (bias) ctx.write(1, (out) => k.reduce('sum', dy.f, 1, M, N, out));
  });
  return y;
}
