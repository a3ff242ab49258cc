/**
 * A frozen linear layer whose weight stays in bfloat16 (the checkpoint's own bits): QLoRA keeps the
 * layers it does not quantise, the LM head above all, in the 16-bit compute dtype (bitsandbytes /
 * PEFT), not in float32. Half the bytes of a float copy (the 6.9B OLMoE-shaped model's head: 206 MB
 * instead of 412 MB); the product widens W panel by panel (bf16-linear-op.ts), exactly: a bf16
 * value is a float32 value. Like Nf4Linear it is a LinearLike that never receives a gradient.
 */
import type { ForwardContext } from '../models/forward-context.js';
import { Linear, type LinearLike } from '../models/linear.js';
import { float32ArrayToBf16 } from '../io/index.js';
import type { Tensor } from '../tensor/index.js';
import { Bf16Frozen } from './bf16-frozen.js';
import { bf16Linear } from './bf16-linear-op.js';

export class Bf16Linear extends Bf16Frozen implements LinearLike {
  /** `bits`: the weight [out, in]. */
  constructor(bits: Uint16Array, shape: readonly [number, number], name?: string) {
    super(bits, shape, name, ['Bf16Linear', 'weight']);
  }

  /**
   * The same layer in bf16 when every weight value is a bf16 value (a bf16 checkpoint read into
   * float32), else null (nothing would be lost, or nothing is done). Bias-free layers only.
   */
  static fromLinear(lin: Linear, name?: string): Bf16Linear | null {
    if (lin.bias !== null || lin.weight.dtype !== 'float32') return null;
    const w = lin.weight.f as Float32Array;
    const u = new Uint32Array(w.buffer, w.byteOffset, w.length);
    for (let i = 0; i < u.length; i++) if ((u[i]! & 0xffff) !== 0) return null;
    const bits = new Uint16Array(w.length);
    float32ArrayToBf16(w, bits);
    return new Bf16Linear(bits, [lin.outFeatures, lin.inFeatures], name ?? lin.weight.name?.replace(/\.weight$/, ''));
  }

  get inFeatures(): number {
    return this.shape[1];
  }

  get outFeatures(): number {
    return this.shape[0];
  }

  forward(x: Tensor, _ctx?: ForwardContext): Tensor {
    return bf16Linear(x, this.bits, this.shape, this.name);
  }

  /** A float Linear with the same weight (exact). */
  toLinear(): Linear {
    return new Linear(this.floatParam());
  }
}
