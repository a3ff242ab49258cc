/**
 * The sparse MoE FFN block (Mixtral's `block_sparse_moe`), for any router. It pays only for the
 * (token, true expert) pairs the router returns: the tokens of each expert are gathered, run
 * through that expert once, and the results are scatter-added back weighted by their gates. Null,
 * zero and dropped slots never reach an expert.
 */
import { ops, Rng, Tensor } from '../tensor/index.js';
import type { Router } from '../routers/router.js';
import type { ForwardContext } from './forward-context.js';
import type { LinearLike } from './linear.js';
import type { MixtralExpert } from './mlp.js';
import { Module, ModuleList } from './module.js';

export class SparseMoeBlock extends Module {
  /** Router rows of the true experts (and, for TC-MoE, the E^-1 and E^0 rows with a bias). */
  gate: LinearLike;
  /** AdaMoE: router rows of the null experts (m rows), or null. */
  gate2: LinearLike | null = null;
  experts: ModuleList<MixtralExpert>;

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

  /** Router logits [T, R]: gate rows, then gate2 rows. */
  routerLogits(x: Tensor, ctx?: ForwardContext): Tensor {
    const a = this.gate.forward(x, ctx);
    return this.gate2 ? ops.concat([a, this.gate2.forward(x, ctx)], 1) : a;
  }

  /** Checks the router reads exactly the rows this block has. */
  checkRouter(router: Router = this.router): void {
    const rows = this.gate.outFeatures + (this.gate2?.outFeatures ?? 0);
    const layout = router.layoutFor(this.numExperts);
    if (layout.rows !== rows) {
      throw new Error(`router '${router.spec.name}' reads ${layout.rows} router rows for ${this.numExperts} experts, but layer ${this.layerIndex} has ${rows} (gate ${this.gate.outFeatures}${this.gate2 ? ` + gate2 ${this.gate2.outFeatures}` : ''})`);
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
    });
    ctx?.routing.push({ layer: this.layerIndex, module: path, routing });

    const { tokens, expertOffsets: off } = routing;
    const parts: Tensor[] = [];
    for (let e = 0; e < this.numExperts; e++) {
      const lo = off[e]!;
      const hi = off[e + 1]!;
      if (hi === lo) continue;
      const xe = ops.gatherRows(flat, tokens.subarray(lo, hi));
      parts.push(this.experts.at(e).forward(xe, ctx));
    }
    let out: Tensor;
    if (parts.length === 0) out = Tensor.zeros([T, D], x.dtype);
    else {
      const ys = parts.length === 1 ? parts[0]! : ops.concat(parts, 0);
      out = ops.scatterAddRows(ys, tokens, T, routing.gates);
    }
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
