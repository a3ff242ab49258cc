/**
 * Random initialisation for pretraining from scratch and for tests, as transformers'
 * `_init_weights` does: linear and embedding weights N(0, initializer_range^2), norms 1.
 * TC-MoE router rows: N(0, routerStd^2) with bias 0 / -1 / -10 for E^1 / E^-1 / E^0 (paper 000 A.2).
 */
import { fillNormal, Rng, Tensor } from '../tensor/index.js';
import type { ModelConfig } from './config.js';
import type { WeightSource } from './weight-source.js';

export interface InitOptions {
  seed: number;
  /** Std of linear and embedding weights (transformers' initializer_range, default 0.02). */
  std?: number;
  /** Std of router rows (default: std; TC-MoE uses 0.006). */
  routerStd?: number;
}

/** Bias of the ternary router rows: 0 for E^1, -1 for E^-1, -10 for E^0 (paper 000 A.2). */
export function ternaryBias(N: number, K: number): Float32Array {
  const b = new Float32Array(2 * N + K);
  for (let i = N; i < 2 * N; i++) b[i] = -1;
  for (let i = 2 * N; i < 2 * N + K; i++) b[i] = -10;
  return b;
}

export function randomSource(config: ModelConfig, opts: InitOptions): WeightSource {
  const rng = new Rng(opts.seed);
  const std = opts.std ?? (typeof config.raw['initializer_range'] === 'number' ? (config.raw['initializer_range'] as number) : 0.02);
  const routerStd = opts.routerStd ?? std;
  return {
    has: () => true,
    get(name, shape, kind) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      switch (kind.type) {
        case 'norm':
          data.fill(1);
          break;
        case 'router-bias':
          data.set(kind.init.subarray(0, n));
          break;
        case 'linear-bias':
          break;
        case 'router':
          fillNormal(data, routerStd, rng);
          break;
        default:
          fillNormal(data, std, rng);
      }
      return Tensor.param(data, shape, name);
    },
  };
}
