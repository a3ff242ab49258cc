/**
 * Mo-LoRA (AdaMoE on dense models, paper 004 §3.5 / §4.1): a linear with a router and n LoRA
 * experts, optionally with m null experts that cost nothing:
 *
 *   y = base(x) + scaling * sum_{e in routed(x)} g_e(x) B_e A_e dropout(x)
 *
 * The router is a linear [n + m, in] (randomly initialised as torch.nn.Linear); selection and gate
 * values come from the router machinery (src/routers): top-k without null experts, AdaMoE's
 * null-experts router with them (gates renormalised over the true experts in the top-k). As in
 * the MoE block only the routed (token, expert) pairs are computed, and every forward appends a
 * routing record (module = this linear's path) to ctx.routing, so load and balance losses work
 * as for MoE layers. B = 0 at creation, so the layer starts as its base.
 *
 * Keys: `<path>.weight` (base), `<path>.lora_router.weight` [n + m, in],
 * `<path>.lora_experts.E.lora_A.weight` [r, in], `<path>.lora_experts.E.lora_B.weight` [out, r].
 */
import { fillUniform, ops, Rng, Tensor } from '../tensor/index.js';
import type { ForwardContext } from '../models/forward-context.js';
import { Linear, type LinearLike } from '../models/linear.js';
import { Module, ModuleList } from '../models/module.js';
import type { Router } from '../routers/router.js';
import { checkLoraHyper, kaimingUniformA, linearDtype, loraScaling, zerosParam, type LoraHyper } from './lora-linear.js';
import { layerIndexOf } from './target-match.js';

/** One LoRA expert: B A with A [r, in], B [out, r]. */
export class LoraExpert extends Module {
  lora_A: Linear;
  lora_B: Linear;

  constructor(a: Tensor, b: Tensor) {
    super();
    this.lora_A = this.registerModule('lora_A', new Linear(a));
    this.lora_B = this.registerModule('lora_B', new Linear(b));
  }

  forward(x: Tensor): Tensor {
    return ops.linear(ops.linear(x, this.lora_A.weight), this.lora_B.weight);
  }
}

export interface MoLoraHyper extends LoraHyper {
  /** True LoRA experts n. */
  experts: number;
  /** Null experts m (zero mapping: they add nothing and cost nothing). */
  nullExperts: number;
  topK: number;
}

/** A router weight [rows, in] as torch.nn.Linear initialises it: U(-1/sqrt(in), 1/sqrt(in)). */
export function routerInit(rows: number, inFeatures: number, rng: Rng, dtype: 'float32' | 'float64', name?: string): Tensor {
  const data = dtype === 'float64' ? new Float64Array(rows * inFeatures) : new Float32Array(rows * inFeatures);
  fillUniform(data, 1 / Math.sqrt(inFeatures), rng);
  return Tensor.param(data, [rows, inFeatures], name);
}

export class MoLoraLinear extends Module implements LinearLike {
  readonly base: LinearLike;
  lora_router: Linear;
  lora_experts: ModuleList<LoraExpert>;
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly rslora: boolean;
  readonly scaling: number;
  readonly topK: number;
  /** Decoder layer index read from the path (-1 when the path has none). */
  readonly layerIndex: number;

  constructor(base: LinearLike, routerWeight: Tensor, experts: LoraExpert[], public router: Router, hyper: LoraHyper & { topK: number },
    /** Module path (the `module` of the routing records). */
    readonly path: string) {
    super();
    checkLoraHyper(hyper, `Mo-LoRA on ${path}`);
    if (experts.length === 0) throw new Error(`Mo-LoRA on ${path}: no LoRA experts`);
    const layout = router.layoutFor(experts.length);
    if (routerWeight.rank !== 2 || routerWeight.shape[0] !== layout.rows || routerWeight.shape[1] !== base.inFeatures) {
      throw new Error(`Mo-LoRA on ${path}: lora_router has shape [${routerWeight.shape.join(', ')}], expected [${layout.rows}, ${base.inFeatures}] (router '${router.spec.name}' over ${experts.length} experts)`);
    }
    experts.forEach((e, i) => {
      const a = e.lora_A.weight;
      const b = e.lora_B.weight;
      if (a.shape[0] !== hyper.r || a.shape[1] !== base.inFeatures || b.shape[0] !== base.outFeatures || b.shape[1] !== hyper.r) {
        throw new Error(`Mo-LoRA on ${path}: expert ${i} has A [${a.shape.join(', ')}] and B [${b.shape.join(', ')}], expected [${hyper.r}, ${base.inFeatures}] and [${base.outFeatures}, ${hyper.r}]`);
      }
    });
    this.base = base;
    this.r = hyper.r;
    this.alpha = hyper.alpha;
    this.dropout = hyper.dropout ?? 0;
    this.rslora = hyper.rslora ?? false;
    this.scaling = loraScaling(hyper);
    this.topK = hyper.topK;
    this.layerIndex = layerIndexOf(path) ?? -1;
    this.lora_router = this.registerModule('lora_router', new Linear(routerWeight));
    this.lora_experts = this.registerModule('lora_experts', new ModuleList(experts));
  }

  /** Fresh experts (A Kaiming-uniform, B zero) and a fresh router on `base`. */
  static create(base: LinearLike, hyper: MoLoraHyper, router: Router, rng: Rng, path: string): MoLoraLinear {
    checkLoraHyper(hyper, `Mo-LoRA on ${path}`);
    const dtype = linearDtype(base);
    const rows = router.layoutFor(hyper.experts).rows;
    const rw = routerInit(rows, base.inFeatures, rng, dtype, `${path}.lora_router.weight`);
    const experts = Array.from({ length: hyper.experts }, (_, e) => new LoraExpert(
      kaimingUniformA(hyper.r, base.inFeatures, rng, dtype, `${path}.lora_experts.${e}.lora_A.weight`),
      zerosParam([base.outFeatures, hyper.r], dtype, `${path}.lora_experts.${e}.lora_B.weight`)));
    return new MoLoraLinear(base, rw, experts, router, { ...hyper }, path);
  }

  get inFeatures(): number {
    return this.base.inFeatures;
  }

  get outFeatures(): number {
    return this.base.outFeatures;
  }

  get numExperts(): number {
    return this.lora_experts.length;
  }

  /** Router rows beyond the true experts (null experts). */
  get nullExperts(): number {
    return this.lora_router.outFeatures - this.numExperts;
  }

  /** Router and expert parameters. */
  adapterParameters(): Tensor[] {
    const out = [this.lora_router.weight];
    for (const e of this.lora_experts.items) out.push(e.lora_A.weight, e.lora_B.weight);
    return out;
  }

  override namedParameters(prefix = ''): [string, Tensor][] {
    return [...this.base.namedParameters(prefix), ...super.namedParameters(prefix)];
  }

  override namedModules(prefix = ''): [string, Module][] {
    const own = super.namedModules(prefix);
    return [own[0]!, ...this.base.namedModules(prefix).slice(1), ...own.slice(1)];
  }

  /** Replaces the router weight and router (adding null experts to an existing Mo-LoRA layer). */
  setRouter(router: Router, routerWeight: Tensor): void {
    const rows = router.layoutFor(this.numExperts).rows;
    if (routerWeight.shape[0] !== rows || routerWeight.shape[1] !== this.inFeatures) {
      throw new Error(`Mo-LoRA on ${this.path}: lora_router has shape [${routerWeight.shape.join(', ')}], expected [${rows}, ${this.inFeatures}]`);
    }
    this.router = router;
    this.lora_router = this.registerModule('lora_router', new Linear(routerWeight));
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const y = this.base.forward(x, ctx);
    const inF = this.inFeatures;
    const T = x.size / inF;
    const flat = ops.reshape(x, [T, inF]);
    const logits = ops.linear(flat, this.lora_router.weight);
    const routing = this.router.route(logits, this.numExperts, {
      training: ctx?.training ?? false,
      rng: ctx?.rng ?? fallbackRng(),
      layer: this.layerIndex,
    });
    if (routing.identityWeights) throw new Error(`Mo-LoRA on ${this.path}: router '${this.router.spec.name}' maps null experts to the identity; Mo-LoRA null experts are zero mappings`);
    ctx?.routing.push({ layer: this.layerIndex, module: this.path, routing });
    const { tokens, expertOffsets: off } = routing;
    if (tokens.length === 0) return y;
    const xd = ctx?.training && this.dropout > 0 ? ops.dropout(flat, this.dropout, ctx.rng) : flat;
    const parts: Tensor[] = [];
    for (let e = 0; e < this.numExperts; e++) {
      const lo = off[e]!;
      const hi = off[e + 1]!;
      if (hi === lo) continue;
      parts.push(this.lora_experts.at(e).forward(ops.gatherRows(xd, tokens.subarray(lo, hi))));
    }
    const ys = parts.length === 1 ? parts[0]! : ops.concat(parts, 0);
    let delta = ops.scatterAddRows(ys, tokens, T, routing.gates);
    if (this.scaling !== 1) delta = ops.scale(delta, this.scaling);
    return ops.add(y, ops.reshape(delta, y.shape));
  }
}

let sharedRng: Rng | null = null;
function fallbackRng(): Rng {
  sharedRng ??= new Rng(0);
  return sharedRng;
}
