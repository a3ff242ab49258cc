import { ops, type Tensor } from '../tensor/index.js';
import { Module } from './module.js';

/** Llama RMSNorm (fp32): weight * x / sqrt(mean(x^2) + eps). */
export class RMSNorm extends Module {
  weight: Tensor;

  constructor(weight: Tensor, readonly eps: number) {
    super();
    this.weight = this.registerParam('weight', weight);
  }

  forward(x: Tensor): Tensor {
    return ops.rmsnorm(x, this.weight, this.eps);
  }
}
