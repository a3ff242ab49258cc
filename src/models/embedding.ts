import { ops, type Tensor } from '../tensor/index.js';
import { Module } from './module.js';

/** Token embedding table [vocab, dim]. */
export class Embedding extends Module {
  weight: Tensor;

  constructor(weight: Tensor) {
    super();
    this.weight = this.registerParam('weight', weight);
  }

  forward(ids: Tensor): Tensor {
    return ops.embedding(ids, this.weight);
  }
}
