import { ops, type Tensor } from '../tensor/index.js';
import type { ForwardContext } from './forward-context.js';
import { Module } from './module.js';

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
