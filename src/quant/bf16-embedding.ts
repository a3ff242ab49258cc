/**
 * A frozen token embedding kept in the checkpoint's bfloat16 (QLoRA leaves the embeddings in its
 * 16-bit compute dtype): half the bytes of a float32 table (206 MB instead of 412 MB for the 6.9B
 * OLMoE-shaped model). The lookup widens the selected rows (exact: a bf16 value is a float32 value);
 * nothing flows back (the table is not a parameter).
 */
import { bf16ArrayToFloat32 } from '../io/index.js';
import { Embedding, type TokenEmbedding } from '../models/embedding.js';
import { Tensor } from '../tensor/index.js';
import { Bf16Frozen } from './bf16-frozen.js';

export class Bf16Embedding extends Bf16Frozen implements TokenEmbedding {
  /** `bits`: the table [vocab, dim]. */
  constructor(bits: Uint16Array, shape: readonly [number, number], name?: string) {
    super(bits, shape, name, ['Bf16Embedding', 'table']);
  }

  forward(ids: Tensor): Tensor {
    const idx = ids.i32;
    const [V, D] = this.shape;
    const out = Tensor.empty([...ids.shape, D], 'float32');
    const o = out.f as Float32Array;
    for (let i = 0; i < idx.length; i++) {
      const id = idx[i]!;
      if (id < 0 || id >= V) throw new Error(`embedding${this.name ? ` ${this.name}` : ''}: token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
      bf16ArrayToFloat32(this.bits.subarray(id * D, (id + 1) * D), o.subarray(i * D, (i + 1) * D));
    }
    return out;
  }

  /** A float Embedding with the same table (exact). */
  toEmbedding(): Embedding {
    return new Embedding(this.floatParam());
  }
}
