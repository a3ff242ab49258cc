/**
 * AdamW (decoupled weight decay, as torch.optim.AdamW) over a list of parameters, with its state
 * in persistent memory. The update is one fused kernel per parameter. Parameters that received no
 * gradient since the last zeroGrad are skipped, as torch skips params whose .grad is None.
 */
import { gradOf, kernelsFor, type FloatArray, type Tensor } from '../tensor/index.js';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface AdamWState {
  step: number;
  m: Record<string, Float32Array | Float64Array>;
  v: Record<string, Float32Array | Float64Array>;
  /** Per-parameter step counts (a parameter skipped on some steps has its own bias correction). */
  steps: Record<string, number>;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  weightDecay: number;
  lr: number;
  step = 0;
  private readonly m = new Map<string, FloatArray>();
  private readonly v = new Map<string, FloatArray>();
  private readonly steps = new Map<string, number>();

  constructor(readonly params: ReadonlyMap<string, Tensor>, opts: AdamWOptions) {
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
  }

  /**
   * One update. `gradScale` multiplies every gradient first (1 / accumulation steps, clipping).
   * `decay(name)` says whether a parameter gets weight decay (default: all).
   */
  update(gradScale = 1, decay: (name: string, p: Tensor) => boolean = () => true): void {
    this.step++;
    for (const [name, p] of this.params) {
      const g = gradOf(p);
      if (g === null) continue;
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        m = p.dtype === 'float64' ? new Float64Array(p.size) : new Float32Array(p.size);
        v = p.dtype === 'float64' ? new Float64Array(p.size) : new Float32Array(p.size);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const t = (this.steps.get(name) ?? 0) + 1;
      this.steps.set(name, t);
      const bc1 = 1 - Math.pow(this.beta1, t);
      const bc2 = 1 - Math.pow(this.beta2, t);
      const wd = decay(name, p) ? this.weightDecay : 0;
      kernelsFor(p).adamw(p.f, g.f, m, v, p.size, this.lr, this.beta1, this.beta2, this.eps, wd, bc1, bc2, gradScale);
    }
  }

  /** Global L2 norm of the current gradients (float64 accumulation). */
  gradNorm(): number {
    let s = 0;
    for (const p of this.params.values()) {
      const g = gradOf(p);
      if (g) s += kernelsFor(p).sumSquares(g.f, g.size);
    }
    return Math.sqrt(s);
  }

  state(): AdamWState {
    const m: AdamWState['m'] = {};
    const v: AdamWState['v'] = {};
    for (const [k, a] of this.m) m[k] = a;
    for (const [k, a] of this.v) v[k] = a;
    return { step: this.step, m, v, steps: Object.fromEntries(this.steps) };
  }

  loadState(s: AdamWState): void {
    this.step = s.step;
    this.m.clear();
    this.v.clear();
    this.steps.clear();
    for (const [k, a] of Object.entries(s.m)) {
      if (!this.params.has(k)) throw new Error(`optimizer state names parameter '${k}' that the model does not train`);
      this.m.set(k, a);
    }
    for (const [k, a] of Object.entries(s.v)) this.v.set(k, a);
    for (const [k, n] of Object.entries(s.steps)) this.steps.set(k, n);
  }
}

