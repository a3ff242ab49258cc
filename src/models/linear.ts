import { ops, type Tensor } from '../tensor/index.js';
import type { ForwardContext } from './forward-context.js';
import { Module } from './module.js';
import type { WeightSource } from './weight-source.js';

/** What every linear-like layer offers (plain, LoRA-wrapped, 4-bit quantised, Mo-LoRA). */
export interface LinearLike extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  forward(x: Tensor, ctx?: ForwardContext): Tensor;
}

/** y = x W^T (+ b) with W [out, in] stored as `weight` (and `bias`), as torch.nn.Linear. */
export class Linear extends Module implements LinearLike {
  weight: Tensor;
  bias: Tensor | null;

  constructor(weight: Tensor, bias: Tensor | null = null) {
    super();
    if (weight.rank !== 2) throw new Error(`Linear: weight${weight.name ? ` ${weight.name}` : ''} must be 2-D, got [${weight.shape.join(', ')}]`);
    this.weight = this.registerParam('weight', weight);
    this.bias = bias ? this.registerParam('bias', bias) : null;
  }

  get inFeatures(): number {
    return this.weight.shape[1]!;
  }

  get outFeatures(): number {
    return this.weight.shape[0]!;
  }

  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export function isLinearLike(m: Module): m is LinearLike {
  const l = m as Partial<LinearLike>;
  return typeof l.forward === 'function' && typeof l.inFeatures === 'number' && typeof l.outFeatures === 'number';
}

/** A linear [out, in] (with a bias when asked) read from a weight source under `name` (`name.weight`, `name.bias`). */
export function sourceLinear(src: WeightSource, name: string, out: number, inF: number, bias = false): Linear {
  const w = src.get(`${name}.weight`, [out, inF], { type: 'linear', fanIn: inF });
  return new Linear(w, bias ? src.get(`${name}.bias`, [out], { type: 'linear-bias' }) : null);
}
