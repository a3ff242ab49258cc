/**
 * LoRA (Hu et al. 2021) on any linear-like layer:
 *
 *   y = base(x) + scaling * B A dropout(x),   scaling = alpha / r  (alpha / sqrt(r) with rsLoRA)
 *
 * A [r, in] is Kaiming-uniform with a = sqrt(5) (U(-1/sqrt(in), 1/sqrt(in)), as PEFT initialises
 * it), B [out, r] is zero, so a fresh adapter leaves the layer's function unchanged. The wrapper is
 * transparent for names: the base keeps its own keys (`<path>.weight`) and the adapter adds
 * `<path>.lora_A.weight` and `<path>.lora_B.weight` (PEFT's names without the adapter name), so a
 * model with LoRA still saves and loads its base under the Hugging Face keys.
 */
import { fillUniform, noGrad, ops, Tensor, withScope, type Rng } from '../tensor/index.js';
import type { ForwardContext } from '../models/forward-context.js';
import { groupedLinearRunner, registerGroupedLinearRunner } from '../models/grouped-linears.js';
import { Linear, type LinearLike } from '../models/linear.js';
import { Module } from '../models/module.js';

export interface LoraHyper {
  r: number;
  alpha: number;
  /** Dropout probability on the LoRA input (training only). */
  dropout?: number;
  /** Rank-stabilised scaling alpha / sqrt(r) instead of alpha / r (PEFT's use_rslora). */
  rslora?: boolean;
}

/** The LoRA scale factor for these hyper-parameters. */
export function loraScaling(h: LoraHyper): number {
  return h.rslora ? h.alpha / Math.sqrt(h.r) : h.alpha / h.r;
}

/** Checks r, alpha and dropout; `where` prefixes the one-line error. */
export function checkLoraHyper(h: LoraHyper, where: string): void {
  if (!Number.isInteger(h.r) || h.r < 1) throw new Error(`${where}: r must be a positive integer, got ${h.r}`);
  if (!(Number.isFinite(h.alpha) && h.alpha > 0)) throw new Error(`${where}: alpha must be a positive number, got ${h.alpha}`);
  const p = h.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new Error(`${where}: dropout must be in [0, 1), got ${p}`);
}

/** The float dtype of a linear's weight (float32 unless the base holds a float64 `weight`). */
export function linearDtype(base: LinearLike): 'float32' | 'float64' {
  const w = base.localParams().get('weight');
  return w && w.dtype === 'float64' ? 'float64' : 'float32';
}

/** A [r, in] drawn as torch's kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(in), 1/sqrt(in)). */
export function kaimingUniformA(r: number, inFeatures: number, rng: Rng, dtype: 'float32' | 'float64', name?: string): Tensor {
  const data = dtype === 'float64' ? new Float64Array(r * inFeatures) : new Float32Array(r * inFeatures);
  // gain sqrt(2 / (1 + a^2)) = sqrt(1/3), std = gain / sqrt(fan_in), bound = sqrt(3) * std = 1 / sqrt(fan_in)
  fillUniform(data, 1 / Math.sqrt(inFeatures), rng);
  return Tensor.param(data, [r, inFeatures], name);
}

export function zerosParam(shape: number[], dtype: 'float32' | 'float64', name?: string): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.param(dtype === 'float64' ? new Float64Array(n) : new Float32Array(n), shape, name);
}

export class LoraLinear extends Module implements LinearLike {
  readonly base: LinearLike;
  lora_A: Linear;
  lora_B: Linear;
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly rslora: boolean;
  readonly scaling: number;
  /** True while scaling * B A is folded into the base weight (forward then runs the base only). */
  merged = false;

  /** Wraps `base` with given A [r, in] and B [out, r] (see `LoraLinear.create` for a fresh adapter). */
  constructor(base: LinearLike, a: Tensor, b: Tensor, hyper: LoraHyper) {
    super();
    checkLoraHyper(hyper, 'LoRA');
    const r = hyper.r;
    if (a.rank !== 2 || a.shape[0] !== r || a.shape[1] !== base.inFeatures) {
      throw new Error(`LoRA: lora_A${a.name ? ` ${a.name}` : ''} has shape [${a.shape.join(', ')}], expected [${r}, ${base.inFeatures}]`);
    }
    if (b.rank !== 2 || b.shape[0] !== base.outFeatures || b.shape[1] !== r) {
      throw new Error(`LoRA: lora_B${b.name ? ` ${b.name}` : ''} has shape [${b.shape.join(', ')}], expected [${base.outFeatures}, ${r}]`);
    }
    this.base = base;
    this.r = r;
    this.alpha = hyper.alpha;
    this.dropout = hyper.dropout ?? 0;
    this.rslora = hyper.rslora ?? false;
    this.scaling = loraScaling(hyper);
    this.lora_A = this.registerModule('lora_A', new Linear(a));
    this.lora_B = this.registerModule('lora_B', new Linear(b));
  }

  /** A fresh adapter on `base`: A Kaiming-uniform, B zero; `path` names the tensors. */
  static create(base: LinearLike, hyper: LoraHyper, rng: Rng, path = ''): LoraLinear {
    checkLoraHyper(hyper, path ? `LoRA on ${path}` : 'LoRA');
    const dtype = linearDtype(base);
    const pre = path ? `${path}.` : '';
    const a = kaimingUniformA(hyper.r, base.inFeatures, rng, dtype, `${pre}lora_A.weight`);
    const b = zerosParam([base.outFeatures, hyper.r], dtype, `${pre}lora_B.weight`);
    return new LoraLinear(base, a, b, hyper);
  }

  get inFeatures(): number {
    return this.base.inFeatures;
  }

  get outFeatures(): number {
    return this.base.outFeatures;
  }

  /** The adapter's own parameters (A then B). */
  adapterParameters(): Tensor[] {
    return [this.lora_A.weight, this.lora_B.weight];
  }

  // The base's parameters and sub-modules appear at this module's own level, so the wrapped linear
  // keeps its keys (`<path>.weight`) next to `<path>.lora_A.weight` / `<path>.lora_B.weight`.
  override namedParameters(prefix = ''): [string, Tensor][] {
    return [...this.base.namedParameters(prefix), ...super.namedParameters(prefix)];
  }

  override namedModules(prefix = ''): [string, Module][] {
    const own = super.namedModules(prefix);
    return [own[0]!, ...this.base.namedModules(prefix).slice(1), ...own.slice(1)];
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const y = this.base.forward(x, ctx);
    if (this.merged) return y;
    const xd = ctx?.training && this.dropout > 0 ? ops.dropout(x, this.dropout, ctx.rng) : x;
    // y + scaling * B A xd in one op, added onto the base's fresh output (no full-width delta or copy)
    return ops.loraAdd(y, xd, this.lora_A.weight, this.lora_B.weight, this.scaling, { inPlace: true });
  }

  /** The weight update scaling * B A [out, in] (a plain array of the weight's dtype). */
  deltaWeight(): Float32Array | Float64Array {
    return noGrad(() => withScope(() => {
      const d = ops.matmul(this.lora_B.weight, this.lora_A.weight);
      const out = d.f.slice();
      for (let i = 0; i < out.length; i++) out[i] = out[i]! * this.scaling;
      return out;
    }));
  }

  private baseWeight(what: string): Tensor {
    if (!(this.base instanceof Linear)) {
      throw new Error(`LoRA ${what}: the base layer is a ${this.base.constructor.name}, not a plain Linear (dequantise it first)`);
    }
    return this.base.weight;
  }

  /** Folds scaling * B A into the base weight (W += scaling B A); forward then runs the base only. */
  merge(): void {
    if (this.merged) return;
    const w = this.baseWeight('merge');
    addInto(w, this.deltaWeight(), 1);
    this.merged = true;
  }

  /** Undoes merge() (W -= scaling B A, exact up to float rounding). */
  unmerge(): void {
    if (!this.merged) return;
    const w = this.baseWeight('unmerge');
    addInto(w, this.deltaWeight(), -1);
    this.merged = false;
  }
}

function addInto(w: Tensor, d: ArrayLike<number>, sign: 1 | -1): void {
  const wf = w.f;
  for (let i = 0; i < wf.length; i++) wf[i] = wf[i]! + sign * d[i]!;
}

/**
 * LoRA-wrapped experts of an MoE layer as grouped products (models/grouped-linears.ts): the bases
 * through their own grouped runner (NF4 or float), then ops.groupedLoraAdd: all A products in one
 * grouped GEMM and all B products in another, added onto the bases' fresh output in place,
 * y = base + scaling * B (A x) per expert (no [rows, out] delta). Needs one r and scaling across
 * the set and no adapter merged. With dropout in training, one mask is drawn for the gathered rows
 * (the per-expert path draws one per expert: the same distribution, another random stream).
 */
registerGroupedLinearRunner({
  name: 'lora',
  accepts: (layers, ctx) => {
    const first = layers[0];
    if (!(first instanceof LoraLinear)) return false;
    if (!layers.every((l) => l instanceof LoraLinear && !l.merged && l.r === first.r && l.scaling === first.scaling && l.dropout === first.dropout)) return false;
    return groupedLinearRunner(layers.map((l) => (l as LoraLinear).base), ctx) !== null;
  },
  // the adapters compute x again when given `again`; the bases decide
  keepsInput: (layers, ctx) => {
    const bases = (layers as readonly LoraLinear[]).map((l) => l.base);
    return groupedLinearRunner(bases, ctx)!.keepsInput(bases, ctx);
  },
  run: (layers, x, offsets, ctx, again) => {
    const loras = layers as readonly LoraLinear[];
    const bases = loras.map((l) => l.base);
    const y = groupedLinearRunner(bases, ctx)!.run(bases, x, offsets, ctx, again);
    const first = loras[0]!;
    const xd = ctx?.training && first.dropout > 0 ? ops.dropout(x, first.dropout, ctx.rng) : x;
    return ops.groupedLoraAdd(y, xd, loras.map((l) => l.lora_A.weight), loras.map((l) => l.lora_B.weight), offsets, first.scaling,
      { inPlace: true, ...(again && xd === x ? { xAgain: again } : {}) });
  },
});
