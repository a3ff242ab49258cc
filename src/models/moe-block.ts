/**
 * The sparse MoE FFN block (Mixtral's `block_sparse_moe`), for any router. It pays only for the
 * (token, true expert) pairs the router returns: the tokens of each expert are gathered, run
 * through that expert once, and the results are scatter-added back weighted by their gates. Null,
 * zero and dropped slots never reach an expert.
 */
import { ops, Rng, Tensor } from '../tensor/index.js';
import type { Router } from '../routers/router.js';
import type { ForwardContext } from './forward-context.js';
import { Linear, type LinearLike } from './linear.js';
import type { MixtralExpert } from './mlp.js';
import { Module, ModuleList } from './module.js';

export class SparseMoeBlock extends Module {
  /** Router rows of the true experts (and, for TC-MoE, the E^-1 and E^0 rows with a bias). */
  gate: LinearLike;
  /** AdaMoE: router rows of the null experts (m rows), or null. */
  gate2: LinearLike | null = null;
  experts: ModuleList<MixtralExpert>;
  /** Run plain experts through grouped GEMMs (false: one expert at a time; same result). */
  grouped = true;

  constructor(gate: LinearLike, experts: MixtralExpert[], public router: Router, public layerIndex: number,
    /** Expert outputs are multiplied by this (1; N for a decomposed dense FFN). */
    public gateScale = 1) {
    super();
    this.gate = this.registerModule('gate', gate);
    this.experts = this.registerModule('experts', new ModuleList(experts));
  }

  get numExperts(): number {
    return this.experts.length;
  }

  setGate2(g: LinearLike | null): void {
    this.gate2 = g;
    if (g) this.registerModule('gate2', g);
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

  /**
   * Expert outputs for the routed rows, in routing order ([P, D]). With plain float experts every
   * projection of all experts is one grouped GEMM over the tokens gathered once; experts wrapped by
   * LoRA or quantised run one by one through their own forward.
   */
  private runExperts(flat: Tensor, tokens: Int32Array, off: Int32Array, ctx?: ForwardContext): Tensor {
    const plain = this.grouped ? this.plainExpertWeights() : null;
    if (plain) {
      const xg = ops.gatherRows(flat, tokens);
      const [g, u] = ops.groupedLinearMany(xg, [plain.w1, plain.w3], off) as [Tensor, Tensor];
      return ops.groupedLinear(ops.swiglu(g, u), plain.w2, off);
    }
    const parts: Tensor[] = [];
    for (let e = 0; e < this.numExperts; e++) {
      const lo = off[e]!;
      const hi = off[e + 1]!;
      if (hi === lo) continue;
      parts.push(this.experts.at(e).forward(ops.gatherRows(flat, tokens.subarray(lo, hi)), ctx));
    }
    return parts.length === 1 ? parts[0]! : ops.concat(parts, 0);
  }

  /** The w1 / w2 / w3 weights of every expert when all are plain bias-free Linear layers. */
  private plainExpertWeights(): { w1: Tensor[]; w2: Tensor[]; w3: Tensor[] } | null {
    const w: { w1: Tensor[]; w2: Tensor[]; w3: Tensor[] } = { w1: [], w2: [], w3: [] };
    for (const e of this.experts.items) {
      for (const name of ['w1', 'w2', 'w3'] as const) {
        const lin = e[name];
        if (!(lin instanceof Linear) || lin.bias !== null) return null;
        w[name].push(lin.weight);
      }
    }
    return w;
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
    });
    ctx?.routing.push({ layer: this.layerIndex, module: path, routing });

    const { tokens, expertOffsets: off } = routing;
    let out: Tensor;
    if (tokens.length === 0) out = Tensor.zeros([T, D], x.dtype);
    else out = ops.scatterAddRows(this.runExperts(flat, tokens, off, ctx), tokens, T, routing.gates);
    if (this.gateScale !== 1) out = ops.scale(out, this.gateScale);
    if (routing.identityWeights) out = ops.add(out, ops.mul(flat, ops.reshape(routing.identityWeights, [T, 1])));
    return ops.reshape(out, x.shape);
  }
}

let sharedRng: Rng | null = null;
function fallbackRng(): Rng {
  sharedRng ??= new Rng(0);
  return sharedRng;
}
