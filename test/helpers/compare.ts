import { expect } from 'vitest';
import type { CausalLM } from '../../src/models/causal-lm.js';
import type { ForwardContext } from '../../src/models/forward-context.js';
import { noGrad, withScope, type Tensor } from '../../src/tensor/index.js';

/** Largest absolute difference of two equally long arrays (asserts the lengths match). */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The model's logits for x as a plain array (no tape, pooled memory released). */
export function logits(model: CausalLM, x: Tensor, ctx?: ForwardContext): Float32Array {
  return withScope(() => noGrad(() => Float32Array.from(model.forward(x, { ctx }).f)));
}
