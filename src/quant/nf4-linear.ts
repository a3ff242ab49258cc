/**
 * A frozen 4-bit linear layer (QLoRA's `Linear4bit`): the weight is stored NF4 (nf4.ts) and
 * multiplied tile by tile without ever holding the float matrix. It is a LinearLike, so LoRA and
 * Mo-LoRA wrap it exactly as they wrap a float Linear; gradients flow to the input, never to the
 * weight. The float bias, if any, stays a (trainable or frozen) parameter named `bias`.
 */
import type { ForwardContext } from '../models/forward-context.js';
import { Linear, type LinearLike } from '../models/linear.js';
import { Module } from '../models/module.js';
import { Tensor } from '../tensor/index.js';
import { dequantizeNf4, nf4StorageBytes, quantizeNf4, type Nf4Weight, type QuantizeNf4Options } from './nf4.js';
import { nf4GroupedLinear } from './nf4-grouped-linear-op.js';
import { nf4Linear } from './nf4-linear-op.js';
import { registerGroupedLinearRunner } from '../models/grouped-linears.js';

export class Nf4Linear extends Module implements LinearLike {
  /** The packed weight (`<path>.weight` on disk); deliberately not named `weight` (it is not a Tensor). */
  readonly qweight: Nf4Weight;
  bias: Tensor | null;
  /** Hugging Face key of the module (for error messages). */
  name: string | undefined;

  constructor(qweight: Nf4Weight, bias: Tensor | null = null, name?: string) {
    super();
    if (qweight.shape.length !== 2) throw new Error(`Nf4Linear${name ? ` ${name}` : ''}: weight must be 2-D, got [${qweight.shape.join(', ')}]`);
    this.qweight = qweight;
    this.name = name;
    this.bias = bias ? this.registerParam('bias', bias) : null;
  }

  /** Quantises a float Linear (its weight can then be dropped). */
  static fromLinear(lin: Linear, opts: QuantizeNf4Options = {}): Nf4Linear {
    const w = lin.weight;
    const name = opts.name ?? w.name?.replace(/\.weight$/, '');
    const q = quantizeNf4(w.f, w.shape, { ...opts, name: w.name ?? name });
    return new Nf4Linear(q, lin.bias, name);
  }

  override holdsNonParameterState(): boolean {
    return true;
  }

  get inFeatures(): number {
    return this.qweight.shape[1]!;
  }

  get outFeatures(): number {
    return this.qweight.shape[0]!;
  }

  forward(x: Tensor, _ctx?: ForwardContext): Tensor {
    return nf4Linear(x, this.qweight, this.bias, this.name);
  }

  /** The dequantised weight as a float32 [out, in] array (merges and exports only). */
  dequantizedWeight(): Float32Array {
    return dequantizeNf4(this.qweight);
  }

  /** A float Linear with the dequantised weight (for merged exports). */
  toLinear(): Linear {
    const name = this.name ? `${this.name}.weight` : undefined;
    return new Linear(Tensor.param(this.dequantizedWeight(), this.qweight.shape, name), this.bias);
  }

  /** Bytes of the quantised weight in memory. */
  get storageBytes(): number {
    return nf4StorageBytes(this.qweight);
  }
}

/**
 * 4-bit experts of an MoE layer as one grouped product (models/grouped-linears.ts): bias-free
 * Nf4Linear layers of one shape and block format through nf4GroupedLinear.
 */
registerGroupedLinearRunner({
  name: 'nf4',
  accepts: (layers) => {
    const first = layers[0];
    if (!(first instanceof Nf4Linear)) return false;
    const q0 = first.qweight;
    return layers.every((l) => l instanceof Nf4Linear && l.bias === null && l.qweight.shape[0] === q0.shape[0]
      && l.qweight.shape[1] === q0.shape[1] && l.qweight.blockSize === q0.blockSize && (l.qweight.nested === null) === (q0.nested === null));
  },
  // dx = dy W reads no x; the weights are frozen
  keepsInput: () => false,
  run: (layers, x, offsets) => nf4GroupedLinear(x, layers.map((l) => (l as Nf4Linear).qweight), offsets),
});
