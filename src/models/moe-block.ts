/**
 * The sparse MoE FFN block (MegaBlocks' shape: router + experts + optional shared expert), for any
 * family and any router:
 *
 *   y = s * sum_{(t,e) routed} g_te E_e(x_t)  [+ identity-null weight * x]  [+ sigma(w_s x) * S(x)]
 *
 * - router rows: the family's router linear (`gate`) and moe-tune's extra row groups (`gate2` for
 *   AdaMoE null experts; ternary rows live in `gate` with a bias), see router-rows.ts;
 * - stacked experts (stacked-experts.ts): the only place expert compute happens; it pays only for
 *   the (token, true expert) pairs the router returns. Null, zero and dropped slots never reach it;
 * - s: the routed scaling factor (DeepSeek-V3 routed_scaling_factor; N for XMoE's gate_scale);
 * - an optional shared expert S every token runs, with an optional sigmoid gate (Qwen2-MoE).
 * The module names (`block_sparse_moe` / `mlp`, `gate`, `experts`, `shared_expert`, ...) come from
 * the family's layout, so tensor keys are the Hub's.
 */
import { ops, Rng, Tensor } from '../tensor/index.js';
import type { Router } from '../routers/router.js';
import type { ForwardContext } from './forward-context.js';
import { Linear, type LinearLike } from './linear.js';
import type { GatedMLP } from './mlp.js';
import { Module } from './module.js';
import { NULL_ROWS_MODULE } from './router-rows.js';
import { StackedExperts } from './stacked-experts.js';

/** The shared expert and its optional sigmoid gate, with their module names. */
export interface SharedExpertSlot {
  name: string;
  mlp: GatedMLP;
  gateName: string | null;
  gate: LinearLike | null;
}

export interface MoeBlockOptions {
  /** Module names of the router linear and the experts list (default `gate`, `experts`). */
  routerName?: string;
  expertsName?: string;
  shared?: SharedExpertSlot | null;
}

export class SparseMoeBlock extends Module {
  /** Router rows of the true experts (and, for TC-MoE, the E^-1 and E^0 rows with a bias). */
  gate: LinearLike;
  /** AdaMoE: router rows of the null experts (m rows), or null. */
  gate2: LinearLike | null = null;
  experts: StackedExperts;
  shared: SharedExpertSlot | null;
  readonly routerName: string;

  constructor(gate: LinearLike, experts: GatedMLP[] | StackedExperts, public router: Router, public layerIndex: number,
    /** Routed expert outputs are multiplied by this (1; N for a decomposed dense FFN; routed_scaling_factor). */
    public gateScale = 1, opts: MoeBlockOptions = {}) {
    super();
    this.routerName = opts.routerName ?? 'gate';
    this.gate = this.registerModule(this.routerName, gate);
    this.experts = this.registerModule(opts.expertsName ?? 'experts', experts instanceof StackedExperts ? experts : new StackedExperts(experts));
    this.shared = opts.shared ?? null;
    if (this.shared) {
      this.registerModule(this.shared.name, this.shared.mlp);
      if (this.shared.gateName && this.shared.gate) this.registerModule(this.shared.gateName, this.shared.gate);
    }
  }

  get numExperts(): number {
    return this.experts.length;
  }

  /** Run plain experts through grouped GEMMs (false: one expert at a time; same result). */
  get grouped(): boolean {
    return this.experts.grouped;
  }

  set grouped(v: boolean) {
    this.experts.grouped = v;
  }

  /**
   * The router's per-expert selection bias [N] (DeepSeek-V3 `gate.e_score_correction_bias`): a buffer without
   * gradient, registered under its Hub key (relative to this block) and passed to the router for choosing only.
   */
  selectionBias: Tensor | null = null;

  setSelectionBias(key: string, b: Tensor): void {
    if (b.size !== this.numExperts) throw new Error(`layer ${this.layerIndex}: selection bias '${key}' has ${b.size} values for ${this.numExperts} experts`);
    this.selectionBias = this.registerParam(key, b);
  }

  setGate2(g: LinearLike | null): void {
    this.gate2 = g;
    if (g) this.registerModule(NULL_ROWS_MODULE, g);
  }

  protected override onChildReplaced(name: string, m: Module): void {
    if (name === this.routerName) this.gate = m as LinearLike;
    else if (name === NULL_ROWS_MODULE) this.gate2 = m as LinearLike;
    else if (this.shared && name === this.shared.name) this.shared.mlp = m as GatedMLP;
    else if (this.shared && name === this.shared.gateName) this.shared.gate = m as LinearLike;
  }

  /**
   * Router logits [T, R]: gate rows, then gate2 rows. When both are plain Linear layers their
   * weights (R x D, small) are stacked and multiplied once, instead of two skinny GEMMs and a
   * concatenation of their [T, rows] outputs.
   */
  routerLogits(x: Tensor, ctx?: ForwardContext): Tensor {
    const g = this.gate;
    const g2 = this.gate2;
    if (!g2) return g.forward(x, ctx);
    if (g instanceof Linear && g2 instanceof Linear) {
      const w = ops.concat([g.weight, g2.weight], 0);
      let b: Tensor | null = null;
      if (g.bias || g2.bias) {
        const zeros = (n: number): Tensor => Tensor.zeros([n], x.dtype);
        b = ops.concat([g.bias ?? zeros(g.outFeatures), g2.bias ?? zeros(g2.outFeatures)], 0);
      }
      return ops.linear(x, w, b);
    }
    return ops.concat([g.forward(x, ctx), g2.forward(x, ctx)], 1);
  }

  /** Checks the router reads exactly the rows this block has. */
  checkRouter(router: Router = this.router): void {
    const rows = this.gate.outFeatures + (this.gate2?.outFeatures ?? 0);
    const layout = router.layoutFor(this.numExperts);
    if (layout.rows !== rows) {
      throw new Error(`router '${router.spec.name}' reads ${layout.rows} router rows for ${this.numExperts} experts, but layer ${this.layerIndex} has ${rows} (gate ${this.gate.outFeatures}${this.gate2 ? ` + gate2 ${this.gate2.outFeatures}` : ''})`);
    }
    // a k beyond the experts it chooses from would silently run as top-(rows)
    const k = (router.spec as { k?: unknown }).k;
    if (typeof k === 'number' && k > layout.rows) {
      throw new Error(`router '${router.spec.name}': k = ${k} is more than the ${layout.rows} experts layer ${this.layerIndex} chooses from`);
    }
  }

  forward(x: Tensor, ctx?: ForwardContext, path = ''): Tensor {
    const D = x.shape[x.rank - 1]!;
    const T = x.size / D;
    const flat = ops.reshape(x, [T, D]);
    const logits = this.routerLogits(flat, ctx);
    const routing = this.router.route(logits, this.numExperts, {
      training: ctx?.training ?? false,
      rng: ctx?.rng ?? fallbackRng(),
      layer: this.layerIndex,
      selectionBias: this.selectionBias?.f as Float32Array | undefined,
    });
    ctx?.routing.push({ layer: this.layerIndex, module: path, routing });

    const { tokens, expertOffsets: off } = routing;
    let out: Tensor;
    if (tokens.length === 0) out = Tensor.zeros([T, D], x.dtype);
    else out = ops.scatterAddRows(this.experts.forward(flat, tokens, off, ctx), tokens, T, routing.gates);
    if (this.gateScale !== 1) out = ops.scale(out, this.gateScale);
    if (routing.identityWeights) out = ops.add(out, ops.mul(flat, ops.reshape(routing.identityWeights, [T, 1])));
    if (this.shared) {
      let s = this.shared.mlp.forward(flat, ctx);
      if (this.shared.gate) s = ops.mul(s, ops.sigmoid(this.shared.gate.forward(flat, ctx)));
      out = ops.add(out, s);
    }
    return ops.reshape(out, x.shape);
  }
}

let sharedRng: Rng | null = null;
function fallbackRng(): Rng {
  sharedRng ??= new Rng(0);
  return sharedRng;
}
