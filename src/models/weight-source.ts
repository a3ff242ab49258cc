import type { Tensor } from '../tensor/index.js';

/**
 * Where a model's parameters come from while it is built: a checkpoint (load), a random
 * initialiser (pretraining, tests) or an existing model (conversions). `get` returns the tensor for
 * a Hugging Face key with exactly this shape or throws one clear error naming the key.
 */
export interface WeightSource {
  get(name: string, shape: readonly number[], kind: WeightKind): Tensor;
  has(name: string): boolean;
}

/** What a parameter is, for initialisers (the loader ignores it). */
export type WeightKind =
  | { type: 'embedding' }
  | { type: 'linear'; fanIn: number }
  | { type: 'norm' }
  | { type: 'router'; rowKind?: 'true' | 'negative' | 'zero' | 'null' }
  | { type: 'router-bias'; init: Float32Array }
  | { type: 'linear-bias' }
  | { type: 'lm-head'; fanIn: number };
