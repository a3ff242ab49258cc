/**
 * A frozen 2-D weight kept as the checkpoint's bfloat16 bits (Bf16Linear, Bf16Embedding): QLoRA leaves
 * what it does not quantise in its 16-bit compute dtype (bitsandbytes / PEFT), half the bytes of a float32
 * copy. Not a Tensor: it never trains. Widening is exact (a bf16 value is a float32 value).
 */
import { bf16ArrayToFloat32 } from '../io/index.js';
import { Module } from '../models/module.js';
import { Tensor } from '../tensor/index.js';

export abstract class Bf16Frozen extends Module {
  /** The weight's bf16 bits (`<path>.weight` on disk). */
  readonly bits: Uint16Array;
  readonly shape: readonly [number, number];
  /** Hugging Face key of the module (for error messages). */
  name: string | undefined;

  /** `what` names the layer kind and the weight's role in the size error ("Bf16Linear", "weight"). */
  constructor(bits: Uint16Array, shape: readonly [number, number], name: string | undefined, what: [string, string]) {
    super();
    if (bits.length !== shape[0] * shape[1]) throw new Error(`${what[0]}${name ? ` ${name}` : ''}: ${bits.length} values do not make a [${shape.join(', ')}] ${what[1]}`);
    this.bits = bits;
    this.shape = shape;
    this.name = name;
  }

  override holdsNonParameterState(): boolean {
    return true;
  }

  /** The weight as float32 (saves, merges and exports). */
  floatWeight(): Float32Array {
    const out = new Float32Array(this.bits.length);
    bf16ArrayToFloat32(this.bits, out);
    return out;
  }

  /** The weight as a float32 parameter named `<name>.weight` (for the float module with the same values). */
  protected floatParam(): Tensor {
    return Tensor.param(this.floatWeight(), this.shape, this.name ? `${this.name}.weight` : undefined);
  }

  /** Bytes of the weight in memory. */
  get storageBytes(): number {
    return this.bits.byteLength;
  }
}
