import { ops, type Tensor } from '../tensor/index.js';
import { Module } from './module.js';

/**
 * What the decoder stack needs from its token embedding: ids [...] -> vectors [..., dim]. A float
 * table here; a frozen 16-bit one in src/quant (Bf16Embedding, QLoRA's untouched embeddings).
 */
export interface TokenEmbedding extends Module {
  forward(ids: Tensor): Tensor;
}

/** Token embedding table [vocab, dim]. */
export class Embedding extends Module implements TokenEmbedding {
  weight: Tensor;

  constructor(weight: Tensor) {
    super();
    this.weight = this.registerParam('weight', weight);
  }

  forward(ids: Tensor): Tensor {
    return ops.embedding(ids, this.weight);
  }
}
