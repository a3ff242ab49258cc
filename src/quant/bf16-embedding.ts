/**
 * A frozen token embedding kept in the checkpoint's bfloat16 (QLoRA leaves the embeddings in its
 * 16-bit compute dtype): half the bytes of a float32 table (206 MB instead of 412 MB for the 6.9B
 * OLMoE-shaped model). The lookup widens the selected rows (exact: a bf16 value is a float32 value);
 * nothing flows back (the table is not a parameter).
 */
import { bf16ArrayToFloat32 } from '../io/index.js';
import { Embedding, type TokenEmbedding } from '../models/embedding.js';
import { Module } from '../models/module.js';
import { Tensor } from '../tensor/index.js';

export class Bf16Embedding extends Module implements TokenEmbedding {
  /** The table's bf16 bits [vocab, dim] (`<path>.weight` on disk). */
  readonly bits: Uint16Array;
  readonly shape: readonly [number, number];
  name: string | undefined;

  constructor(bits: Uint16Array, shape: readonly [number, number], name?: string) {
    super();
    if (bits.length !== shape[0] * shape[1]) throw new Error(`Bf16Embedding${name ? ` ${name}` : ''}: ${bits.length} values do not make a [${shape.join(', ')}] table`);
    this.bits = bits;
    this.shape = shape;
    this.name = name;
  }

  override holdsNonParameterState(): boolean {
    return true;
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

  /** The table as float32 [vocab, dim] (saves and exports). */
  floatWeight(): Float32Array {
    const out = new Float32Array(this.bits.length);
    bf16ArrayToFloat32(this.bits, out);
    return out;
  }

  /** A float Embedding with the same table (exact). */
  toEmbedding(): Embedding {
    return new Embedding(Tensor.param(this.floatWeight(), this.shape, this.name ? `${this.name}.weight` : undefined));
  }

  /** Bytes of the table in memory. */
  get storageBytes(): number {
    return this.bits.byteLength;
  }
}
