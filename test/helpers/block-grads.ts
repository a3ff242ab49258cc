/**
 * One training forward of a MoE block on a seeded [rows, D] input and the backward of <y, sin(i)>: the output
 * and the gradients of the input and of `params` (by name; [] where none arrived). The grouped-vs-per-expert
 * tests run it on both paths and compare.
 */
import { ForwardContext } from '../../src/models/forward-context.js';
import type { SparseMoeBlock } from '../../src/models/moe-block.js';
import { backward, gradOf, ops, Rng, Tensor, withScope, zeroGrad } from '../../src/tensor/index.js';

export function blockOutputAndGrads(block: SparseMoeBlock, rows: number, D: number, params: readonly [string, Tensor][]): { y: number[]; grads: Map<string, number[]> } {
  const rng = new Rng(1);
  const x = new Tensor(Float32Array.from({ length: rows * D }, () => rng.normal()), [rows, D], true);
  zeroGrad([x, ...params.map(([, p]) => p)]);
  const y = withScope(() => {
    const out = block.forward(x, new ForwardContext(true));
    const proj = new Tensor(Float32Array.from({ length: out.size }, (_, i) => Math.sin(i)), out.shape);
    backward(ops.sum(ops.mul(out, proj)));
    return out.toArray();
  });
  const grads = new Map<string, number[]>([['x', gradOf(x)!.toArray()]]);
  for (const [n, p] of params) grads.set(n, gradOf(p)?.toArray() ?? []);
  return { y, grads };
}
